"""The supervisor's exit wait: woken by the task process's exit, not by its timeout."""

from __future__ import annotations

import selectors
import subprocess
import sys
import time
from typing import Any

import pytest

from airflow_jobbers.worker import exitwait


def test_wait_exit_returns_when_the_process_exits_and_not_before() -> None:
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(0.5)"])
    try:
        assert not exitwait.wait_exit(proc.pid, 0.0)  # still running
        started = time.monotonic()
        assert exitwait.wait_exit(proc.pid, 30.0)
        assert time.monotonic() - started < 20  # woken by the exit, long before the timeout
        assert proc.poll() == 0  # not reaped by the wait: its parent still gets the code
    finally:
        proc.kill()
        proc.wait()


def test_the_patched_supervisor_wait_ends_with_the_process() -> None:
    supervisor_module = pytest.importorskip("airflow.sdk.execution_time.supervisor")
    assert exitwait.install()
    assert exitwait.install()  # once per process

    class Fake:
        """What ``_service_subprocess`` touches: every socket closed, the process exiting."""

        def __init__(self, proc: subprocess.Popen[bytes]) -> None:
            self.proc = proc
            self.pid = proc.pid
            self.selector = selectors.DefaultSelector()
            self._exit_code: int | None = None

        def _check_subprocess_exit(self, **_: Any) -> int | None:
            self._exit_code = self.proc.poll()
            return self._exit_code

    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(0.3)"])
    fake = Fake(proc)
    try:
        started = time.monotonic()
        code = supervisor_module.WatchedSubprocess._service_subprocess(fake, 30.0)
        assert code == 0
        assert time.monotonic() - started < 20  # not the 30 s an empty select would sleep
    finally:
        proc.kill()
        proc.wait()
