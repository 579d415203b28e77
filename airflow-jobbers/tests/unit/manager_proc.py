"""A real Jobbers Manager (``jobbers manager --tasks airflow_jobbers.runner``) on a spare
loopback port and a fresh SQLite file, stopped by pid: the unit tests' ``manager_url`` fixture
and ``bench/sync_cost.py`` start it the same way."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

SRC = Path(__file__).resolve().parents[2] / "src"


def spare_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_manager(
    db: Path, log: Path, timeout: float, *extra: str
) -> tuple[subprocess.Popen[bytes], str]:
    """The Manager's process and URL once ``/healthz`` answers; its output goes to ``log``."""
    port = spare_port()
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(SRC), os.environ.get("PYTHONPATH", "")]),
    }
    args = ["manager", "--port", str(port), "--store", f"sqlite:///{db}"]
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "jobbers", *args, "--tasks", "airflow_jobbers.runner", *extra],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + timeout
        while True:
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the Manager did not come up:\n{log.read_text()}")
            try:
                if httpx.get(f"{url}/healthz", timeout=0.5).status_code == 200:
                    return proc, url
            except httpx.TransportError:
                pass
            time.sleep(0.05)
    except BaseException:
        stop(proc)
        raise


def stop(proc: subprocess.Popen[bytes]) -> None:
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(20)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5)
