"""Let Airflow's supervisor notice its task process's exit as soon as it happens.

The supervisor waits in ``select`` on the task process's sockets and checks whether the process
has exited after each wake-up. A task process closes those sockets as it shuts down, a moment
before it is gone: the supervisor reads the end of each, finds the process still there, and its
next ``select`` has nothing left to watch, so it sleeps for the whole heartbeat interval
(``[workers] min_heartbeat_interval``, 5 s by default) before it looks again. Under load that
race is lost often, and the slot stays taken for the whole interval.

``install`` (in the workload process, before the supervisor starts) makes that one wait, the
one with no socket left, a wait on the process itself (a pidfd): same length at most, but it
ends when the process does. Everything else the supervisor does is untouched. Where the
supervisor lacks what this relies on (another Airflow version) or pidfds are unavailable,
nothing is changed.
"""

from __future__ import annotations

import os
import select
from typing import Any

from airflow_jobbers.worker.patching import Method, wrap_method

_MARK = "_jobbers_exit_wait"


def wait_exit(pid: int, timeout: float) -> bool:
    """Block until process ``pid`` exits (without reaping it) or ``timeout`` passes; True if it
    exited (or cannot be watched because it is already gone)."""
    try:
        fd = os.pidfd_open(pid)
    except ProcessLookupError:
        return True
    except OSError:
        return False
    try:
        ready, _, _ = select.select([fd], [], [], max(0.0, timeout))
        return bool(ready)
    finally:
        os.close(fd)


def install() -> bool:
    """Patch the supervisor's wait once per process; return whether it is patched."""
    if not hasattr(os, "pidfd_open"):
        return False
    try:
        from airflow.sdk.execution_time.supervisor import WatchedSubprocess
    except ImportError:
        return False

    def wrap(original: Method) -> Method:
        def service(self: Any, max_wait_time: float, *args: Any, **kwargs: Any) -> Any:
            if getattr(self, "_exit_code", 0) is None and _nothing_to_read(self):
                pid = getattr(self, "pid", None)
                if isinstance(pid, int) and wait_exit(pid, max_wait_time):
                    max_wait_time = 0
            return original(self, max_wait_time, *args, **kwargs)

        return service

    return wrap_method(WatchedSubprocess, "_service_subprocess", _MARK, wrap)


def _nothing_to_read(supervisor: Any) -> bool:
    selector = getattr(supervisor, "selector", None)
    if selector is None:
        return False
    try:
        return not selector.get_map()
    except Exception:
        return False
