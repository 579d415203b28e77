"""The fault suite's hosts: one network of namespaces for the whole session, made after removing
whatever a run that died left behind, and removed at the end even on failure. One run at a time
per machine (a lock file): the namespaces' names are fixed.

Each scenario's verdict is kept and the whole table printed at the end of the session (and
written to ``$JOBBERS_FAULT_RESULTS`` when set, as JSON lines).
"""

from __future__ import annotations

import fcntl
import json
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from .checker import Verdict
from .netns import Network, remove_leftovers, unavailable_reason

LOCK = Path("/tmp/jobbers-fault-suite.lock")
VERDICTS: list[Verdict] = []


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    reason = unavailable_reason()
    if reason is None:
        return
    for item in items:
        if Path(str(item.fspath)).parent == Path(__file__).parent:
            item.add_marker(pytest.mark.skip(reason=reason))


@pytest.fixture(scope="session")
def network() -> Iterator[Network]:
    with LOCK.open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        net = Network()
        try:
            net.create()
            yield net
        finally:
            remove_leftovers()


@pytest.fixture
def prefix() -> str:
    return f"f{uuid.uuid4().hex[:10]}"


@pytest.fixture
def verdicts() -> list[Verdict]:
    return VERDICTS


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if not VERDICTS:
        return
    write = terminalreporter.write_line
    write("")
    write("fault suite: " + " | ".join(COLUMNS))
    for verdict in VERDICTS:
        write(" | ".join(_cell(verdict.row()[c]) for c in COLUMNS))
    out = os.environ.get("JOBBERS_FAULT_RESULTS")
    if out:
        with open(out, "a") as f:
            for verdict in VERDICTS:
                f.write(json.dumps({**verdict.row(), "details": verdict.details}) + "\n")


COLUMNS = (
    "scenario",
    "backend",
    "injected",
    "tasks",
    "lost",
    "completed_twice",
    "late_accepted",
    "bodies_twice",
    "bodies_ended_twice",
    "unfinished",
    "recovery",
    "notes",
)


def _cell(value: object) -> str:
    if isinstance(value, float):
        return f"{value:.2f}"
    return "-" if value is None else str(value)
