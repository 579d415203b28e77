"""Jobbers processes on the fault suite's hosts: Managers and workers, each a real
``python -m jobbers`` process in its host's namespace, killed, paused and restarted by pid."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from .netns import Network, address

REPO = Path(__file__).resolve().parents[2]
TASKS = "tests.faults.fault_tasks"
MANAGER_PORT = 8000


@dataclass
class Proc:
    role: str
    host: str
    popen: subprocess.Popen[bytes]
    log: Path

    def kill(self) -> None:
        """kill -9, as a crashed host or an OOM kill does."""
        self.popen.send_signal(signal.SIGCONT)
        self.popen.send_signal(signal.SIGKILL)
        self.popen.wait(10)

    def pause(self) -> None:
        self.popen.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        self.popen.send_signal(signal.SIGCONT)

    def stop(self, timeout: float = 15.0) -> int | None:
        if self.popen.poll() is not None:
            return self.popen.returncode
        self.popen.send_signal(signal.SIGCONT)
        self.popen.send_signal(signal.SIGTERM)
        try:
            return self.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            return None


@dataclass
class Cluster:
    """Managers and workers against one store URL; ``journal`` is where bodies write."""

    net: Network
    store_url: str
    workdir: Path
    lease: float = 3.0
    concurrency: int = 16
    worker_hosts: tuple[str, ...] = ("w1", "w2", "w3")
    manager_hosts: tuple[str, ...] = ("m1", "m2")
    tasks: str = TASKS
    manager_tasks: str = ""
    procs: list[Proc] = field(default_factory=list)
    _starts: int = 0

    @property
    def journal_dir(self) -> Path:
        path = self.workdir / "journal"
        path.mkdir(parents=True, exist_ok=True)
        return path

    @property
    def manager_urls(self) -> list[str]:
        return [f"http://{address(h)}:{MANAGER_PORT}" for h in self.manager_hosts]

    def _spawn(self, role: str, host: str, args: list[str]) -> Proc:
        self._starts += 1
        log = self.workdir / f"{role}-{host}-{self._starts}.log"
        env = {
            "PATH": "/usr/bin:/bin",
            "PYTHONPATH": str(REPO),
            "JOBBERS_FAULT_JOURNAL": str(self.journal_dir / f"{host}-{self._starts}.jsonl"),
            "JOBBERS_STORE_URL": self.store_url,
        }
        command = [sys.executable, "-m", "jobbers", *args]
        popen = self.net.spawn(host, command, log=log, env=env, cwd=REPO)
        proc = Proc(role, host, popen, log)
        self.procs.append(proc)
        return proc

    def start_worker(self, host: str, tasks: str | None = None) -> Proc:
        return self._spawn(
            "worker",
            host,
            [
                "worker",
                "--tasks",
                tasks or self.tasks,
                "--lease",
                f"{self.lease:g}",
                "--concurrency",
                str(self.concurrency),
                "--poll-cap",
                "0.2",
                "--maintenance-interval",
                "0.25",
                "--grace",
                "1",
                "--store-wait",
                "60",
            ],
        )

    def start_manager(self, host: str) -> Proc:
        args = ["manager", "--host", address(host), "--port", str(MANAGER_PORT)]
        if self.manager_tasks:
            args += ["--tasks", self.manager_tasks]
        return self._spawn("manager", host, [*args, "--log-level", "WARNING"])

    def start(self) -> None:
        for host in self.manager_hosts:
            self.start_manager(host)
        for host in self.worker_hosts:
            self.start_worker(host)
        self.wait_managers()

    def wait_managers(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        for url in self.manager_urls:
            while True:
                try:
                    if httpx.get(f"{url}/healthz", timeout=2).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                if time.monotonic() > deadline:
                    raise AssertionError(f"Manager {url} not healthy within {timeout} s")
                time.sleep(0.1)

    def running(self, role: str, host: str) -> Proc:
        [proc] = [
            p for p in self.procs if p.role == role and p.host == host and p.popen.poll() is None
        ]
        return proc

    def last(self, role: str, host: str) -> Proc:
        """The latest process of ``role`` started on ``host``, running or not."""
        return [p for p in self.procs if p.role == role and p.host == host][-1]

    def stop(self) -> None:
        for proc in self.procs:
            if proc.popen.poll() is None:
                proc.popen.send_signal(signal.SIGCONT)
                proc.popen.send_signal(signal.SIGTERM)
        for proc in self.procs:
            try:
                proc.popen.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()

    def logs(self) -> str:
        return "\n".join(f"--- {p.log.name}\n{p.log.read_text()[-3000:]}" for p in self.procs)
