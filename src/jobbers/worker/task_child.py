"""The child process of a task declared ``isolate="process"``
(``python -m jobbers.worker.task_child``).

It reads one JSON request on stdin (the task's module and name, its kwargs, its context), runs the
body and writes JSON lines on its stdout: ``{"heartbeat": true}`` while the body beats, then one
``{"result": ...}`` or ``{"error": {...}}``. The body's own prints go to stderr, so they cannot
corrupt that protocol. It imports only what a body needs, so that starting it costs little more
than starting Python and importing the task's module; :mod:`jobbers.worker.isolated` is the
worker's side.
"""

from __future__ import annotations

import importlib
import json
import os
import sys
import time
from typing import IO, Any

from jobbers.current import CurrentTask, set_current
from jobbers.registry import TaskContext, get_task
from jobbers.worker import childproc
from jobbers.worker.error_info import error_info

#: Heartbeats sent up at most this often; more would only fill the pipe.
HEARTBEAT_EVERY = 0.2


class _ChildContext(TaskContext):
    def __init__(self, protocol: IO[str], *args: Any) -> None:
        super().__init__(*args)
        self._protocol = protocol
        self._sent = 0.0

    def heartbeat(self) -> None:
        super().heartbeat()
        now = time.monotonic()
        if now - self._sent >= HEARTBEAT_EVERY:
            self._sent = now
            self._protocol.write('{"heartbeat": true}\n')
            self._protocol.flush()


def main() -> None:
    """Read the request, run the body, write one answer line."""
    protocol = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)
    request = json.loads(sys.stdin.readline())
    childproc.die_with_parent(request["parent"])
    sys.path[:0] = [p for p in request["sys_path"] if p not in sys.path]
    try:
        importlib.import_module(request["module"])
        spec = get_task(request["name"])
        kwargs = dict(request["kwargs"])
        task_id, attempt = request["context"][:2]
        set_current(CurrentTask(task_id, attempt, request["name"]))  # asyncio.run copies it
        if spec.context_param is not None:
            kwargs[spec.context_param] = _ChildContext(protocol, *request["context"])
        if spec.is_async:
            import asyncio

            result = asyncio.run(spec.fn(**kwargs))
        else:
            result = spec.fn(**kwargs)
        line = json.dumps({"result": result}, allow_nan=False)
    except BaseException as exc:
        line = json.dumps({"error": error_info(exc).to_json()})
    protocol.write(line + "\n")
    protocol.flush()


if __name__ == "__main__":
    main()
