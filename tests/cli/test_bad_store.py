"""A store that cannot be used is refused at start-up by every command: one line, exit 1."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from jobbers.cli import app

from .bad_stores import BAD_STORES, read_only_store, run_jobbers
from .conftest import start_dev

runner = CliRunner()

COMMANDS = {
    "manager": ["manager", "--port", "1"],
    "worker": ["worker", "--tasks", "jobbers.examples"],
    "dev": ["dev", "--port", "1"],
    "submit": ["submit", "add", "--kwargs", '{"x": 1, "y": 2}'],
    "status": ["status", "some-id"],
    "cancel": ["cancel", "some-id"],
}


@pytest.mark.parametrize("command", sorted(COMMANDS))
@pytest.mark.parametrize("bad", sorted(BAD_STORES))
def test_every_command_refuses_a_bad_store_in_one_line(
    command: str, bad: str, tmp_path: Path
) -> None:
    make, words = BAD_STORES[bad]
    url = f"sqlite:///{make(tmp_path)}"
    result = runner.invoke(app, [*COMMANDS[command], "--store", url])
    assert result.exit_code == 1, result.output
    [line] = result.stderr.strip().splitlines()
    assert line.startswith("jobbers: ")
    assert words in line
    assert "Traceback" not in result.output
    assert result.stdout == ""


@pytest.mark.parametrize("command", ["manager", "worker", "status"])
def test_a_process_refuses_an_older_schema_with_one_line_and_exit_1(
    command: str, tmp_path: Path
) -> None:
    """As a user starts it: a real process, its whole stderr read."""
    make, words = BAD_STORES["older schema"]
    url = f"sqlite:///{make(tmp_path)}"
    done = run_jobbers(*COMMANDS[command], "--store", url, cwd=tmp_path)
    assert done.returncode == 1, done.stderr
    [line] = done.stderr.strip().splitlines()
    assert line.startswith("jobbers: ")
    assert words in line


@pytest.fixture
def shared_dir() -> Iterator[Path]:
    """A directory outside pytest's private tmp, which another user could not enter."""
    path = Path(tempfile.mkdtemp(prefix="jobbers-ro-"))
    path.chmod(0o755)
    try:
        yield path
    finally:
        shutil.rmtree(path)


@pytest.mark.parametrize("command", ["manager", "worker", "status"])
def test_a_read_only_store_file_is_refused_with_one_line(command: str, shared_dir: Path) -> None:
    url = f"sqlite:///{read_only_store(shared_dir)}"
    done = run_jobbers(*COMMANDS[command], "--store", url, cwd=shared_dir, as_nobody=True)
    assert done.returncode == 1, done.stderr
    [line] = done.stderr.strip().splitlines()
    assert "is read-only" in line


def test_a_running_managers_healthz_turns_503_when_its_store_file_is_removed(
    tmp_path: Path,
) -> None:
    server = start_dev(tmp_path, "--store", f"sqlite:///{tmp_path / 'kept.db'}", command="manager")
    try:
        assert httpx.get(f"{server.url}/healthz", timeout=5).status_code == 200
        (tmp_path / "kept.db").unlink()
        answer = httpx.get(f"{server.url}/healthz", timeout=5)
        assert answer.status_code == 503
        assert "removed or replaced" in answer.json()["detail"]
    finally:
        assert server.stop() == 0, server.output()


def _closed_port() -> int:
    """A loopback port nothing listens on: bound, then released."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.parametrize("command", sorted(COMMANDS))
@pytest.mark.parametrize(
    ("url", "words"),
    [
        ("redis://127.0.0.1:{port}/0", "is unavailable"),
        ("redis://127.0.0.1:{port}/0?prefix=a:b", "bad store URL"),
        ("memcached://127.0.0.1:{port}", "unsupported store URL"),
        ("postgresql://postgres@127.0.0.1:{port}/jobbers", "is unavailable"),
        ("postgresql://postgres@127.0.0.1:5432/jobbers_no_such_db_{port}", "does not exist"),
        ("postgresql://jobbers_no_such_role@127.0.0.1:5432/postgres", "does not exist"),
    ],
    ids=["unreachable", "bad-prefix", "unknown-scheme", "pg-unreachable", "pg-no-db", "pg-no-role"],
)
def test_every_command_refuses_a_bad_or_unreachable_store_url_in_one_line(
    command: str, url: str, words: str
) -> None:
    """A worker waits for a store that does not answer only for ``--store-wait`` seconds."""
    args = [*COMMANDS[command], "--store", url.format(port=_closed_port())]
    if command == "worker":
        args += ["--store-wait", "0"]
    result = runner.invoke(app, args)
    assert result.exit_code == 1, result.output
    [line] = result.stderr.strip().splitlines()
    assert line.startswith("jobbers: ")
    assert words in line
    assert "Traceback" not in result.output
