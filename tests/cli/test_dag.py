"""``jobbers dag`` against a real ``jobbers dev`` process: submit a Mermaid file, follow the
run to its end, export it with statuses, list and cancel."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from jobbers.cli import app

from .conftest import DevServer, start_dev

runner = CliRunner()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevServer]:
    dev = start_dev(tmp_path_factory.mktemp("dag"), "--grace", "1")
    try:
        yield dev
    finally:
        assert dev.stop() == 0, dev.output()


def dag(server: DevServer, *args: str) -> str:
    result = runner.invoke(app, ["dag", *args, "--url", server.url])
    assert result.exit_code == 0, result.output
    return result.output


def until_ended(server: DevServer, run_id: str, deadline: float = 20.0) -> dict[str, Any]:
    start = time.monotonic()
    while time.monotonic() - start < deadline:
        run: dict[str, Any] = json.loads(dag(server, "status", run_id, "--json"))
        if run["status"] != "running":
            return run
        time.sleep(0.05)
    raise AssertionError(f"run {run_id} still running after {deadline} s")


def test_submit_a_mermaid_file_and_follow_the_run(server: DevServer, tmp_path: Path) -> None:
    diagram = tmp_path / "chain.mmd"
    diagram.write_text('flowchart TD\n  a["add(x=1, y=2)"] --> b["add(x=3, y=4)"]\n')
    run = json.loads(dag(server, "submit", str(diagram), "--name", "chain", "--json"))
    final = until_ended(server, run["id"])
    assert final["status"] == "completed"
    assert [n["result"] for n in final["nodes"]] == [3, 7]
    table = dag(server, "status", run["id"])
    assert "completed" in table
    exported = dag(server, "status", run["id"], "--mermaid")
    assert 'a["add(x=1, y=2){completed}"]' in exported
    again = tmp_path / "again.mmd"
    again.write_text(exported)
    second = json.loads(dag(server, "submit", str(again), "--json"))
    assert [n["task"] for n in second["nodes"]] == ["add", "add"]
    assert chain_listed(server, run["id"])


def chain_listed(server: DevServer, run_id: str) -> bool:
    page = json.loads(dag(server, "list", "--name", "chain", "--json"))
    return [r["id"] for r in page["runs"]] == [run_id]


def test_a_bad_graph_file_fails_naming_the_node(server: DevServer, tmp_path: Path) -> None:
    graph = tmp_path / "bad.json"
    nodes = [{"id": "a", "task": "add", "kwargs": {"x": 1}}]
    graph.write_text(json.dumps({"name": "bad", "nodes": nodes, "edges": []}))
    result = runner.invoke(app, ["dag", "submit", str(graph), "--url", server.url])
    assert result.exit_code == 1
    assert "node 'a'" in result.output
    assert "'y'" in result.output


def test_cancel_a_run(server: DevServer, tmp_path: Path) -> None:
    graph = tmp_path / "slow.json"
    nodes = [
        {"id": "nap", "task": "sleep", "kwargs": {"seconds": 30}},
        {"id": "then", "task": "add", "kwargs": {"x": 1, "y": 1}},
    ]
    graph.write_text(
        json.dumps({"name": "slow", "nodes": nodes, "edges": [{"from": "nap", "to": "then"}]})
    )
    run = json.loads(dag(server, "submit", str(graph), "--json"))
    out = dag(server, "cancel", run["id"])
    assert "cancelled (2 task(s) cancelled)" in out
    final = until_ended(server, run["id"])
    assert {n["status"] for n in final["nodes"]} == {"cancelled"}
