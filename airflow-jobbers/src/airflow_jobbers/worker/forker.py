"""The single-threaded fork loop that the fork server (``zygote``) and each DAG server
(``dagserver``) run: both fork workloads the same way, so the loop lives here, below both.
"""

from __future__ import annotations

import contextlib
import os
import selectors
import signal
import socket
import sys
import traceback

from airflow_jobbers import protocol
from airflow_jobbers.worker.childproc import die_with_parent


def recv_exact(conn: socket.socket, size: int) -> bytes:
    chunks: list[bytes] = []
    while size:
        chunk = conn.recv(min(size, 1 << 20))
        if not chunk:
            raise ConnectionError("the runner closed the connection before sending the workload")
        chunks.append(chunk)
        size -= len(chunk)
    return b"".join(chunks)


class Forker:
    """A single-threaded selector loop that forks one process per workload, reaps them and
    sends each exit code back on the workload's connection. The fork server is one; each of
    its DAG servers (``dagserver``) is another."""

    def __init__(self) -> None:
        self.conns: dict[int, socket.socket] = {}
        self.wake_r, self.wake_w = os.pipe()
        os.set_blocking(self.wake_r, False)
        os.set_blocking(self.wake_w, False)
        signal.set_wakeup_fd(self.wake_w)
        signal.signal(signal.SIGCHLD, lambda *_: None)
        self.selector = selectors.DefaultSelector()
        self.selector.register(self.wake_r, selectors.EVENT_READ)

    def close_inherited(self) -> None:
        """In a fork: close what belongs to this loop (the fork then runs its own)."""
        self.selector.close()
        signal.set_wakeup_fd(-1)
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        os.close(self.wake_r)
        os.close(self.wake_w)
        for other in self.conns.values():
            other.close()
        self.conns.clear()

    def drain_wake(self) -> None:
        with contextlib.suppress(BlockingIOError):
            os.read(self.wake_r, 4096)

    def fork_workload(self, conn: socket.socket, data: bytes) -> None:
        """Fork the workload's process; if the fork fails, close the connection before any
        PID was said (the runner then falls back to a plain child) and keep serving."""
        try:
            pid = os.fork()
        except OSError as exc:
            print(f"airflow-jobbers fork server: cannot fork: {exc}", file=sys.stderr)
            conn.close()
            return
        if pid == 0:
            self._child(conn, data)  # never returns
        self.conns[pid] = conn

    def _child(self, conn: socket.socket, data: bytes) -> None:
        code = protocol.EXIT_ERROR
        try:
            self.close_inherited()
            os.setsid()
            die_with_parent()
            # Every process the supervisor forks (the task process) dies with it too.
            os.register_at_fork(after_in_child=die_with_parent)
            conn.settimeout(None)
            fd = conn.fileno()
            devnull = os.open(os.devnull, os.O_RDONLY)
            os.dup2(devnull, 0)
            os.dup2(fd, 1)
            os.dup2(fd, 2)
            conn.close()
            os.write(1, f"{protocol.FORK_PID_PREFIX}{os.getpid()}\n".encode())
            from airflow_jobbers.worker.child import run_bytes

            code = run_bytes(data)
        except BaseException:
            traceback.print_exc()
        finally:
            with contextlib.suppress(Exception):
                sys.stdout.flush()
                sys.stderr.flush()
            os._exit(code)

    def reap(self) -> list[int]:
        """Reap every exited child; send workloads' exit codes; return the other pids."""
        others: list[int] = []
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return others
            if pid == 0:
                return others
            conn = self.conns.pop(pid, None)
            if conn is None:
                others.append(pid)
                continue
            code = os.waitstatus_to_exitcode(status)
            with contextlib.suppress(OSError):
                conn.sendall(protocol.FORK_EXIT_PREFIX + str(code).encode() + b"\n")
            conn.close()
