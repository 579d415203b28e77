"""Celery's chord of N no-op tasks into one collector, on the Redis given (broker and result
backend), with one ``--pool solo`` worker process; prints one JSON line.

    python bench/peers/celery_chord.py redis://127.0.0.1:PORT 10000 [DEADLINE_S]

A chord that does not end within the deadline (default 300 s) is reported with ``total_s``
null; the worker is stopped either way.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

from celery import Celery, chord

URL = os.environ.get("BENCH_REDIS") or (sys.argv[1] if len(sys.argv) > 1 else "")
app = Celery("celery_chord", broker=URL, backend=URL)
app.conf.update(task_serializer="json", result_serializer="json", worker_hijack_root_logger=False)


@app.task(name="noop")
def noop() -> None:
    return None


@app.task(name="collect")
def collect(values: list[None]) -> int:
    return len(values)


def main() -> None:
    children = int(sys.argv[2])
    deadline = float(sys.argv[3]) if len(sys.argv) > 3 else 300.0
    env = {**os.environ, "BENCH_REDIS": URL, "PYTHONPATH": os.path.dirname(__file__)}
    worker = subprocess.Popen(
        [
            *(sys.executable, "-m", "celery", "-A", "celery_chord", "worker", "--pool", "solo"),
            *("--without-gossip", "--without-mingle", "--without-heartbeat", "-l", "WARNING"),
        ],
        env=env,
    )
    try:
        noop.delay().get(timeout=60)  # the worker is up
        started = time.time()
        result = chord(noop.s() for _ in range(children))(collect.s())
        try:
            count = result.get(timeout=deadline)
        except TimeoutError:
            print(json.dumps({"children": children, "total_s": None, "deadline_s": deadline}))
            return
        total = time.time() - started
    finally:
        worker.terminate()
        worker.wait(30)
    assert count == children
    print(json.dumps({"children": children, "total_s": total, "children_per_s": children / total}))


if __name__ == "__main__":
    main()
