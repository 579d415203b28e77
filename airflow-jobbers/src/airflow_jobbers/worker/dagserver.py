"""DAG servers: forks of the fork server that each parsed one DAG file version once, and fork
the workloads of that version (``[jobbers] dag_parse_cache``; see ``dagcache`` for why).

The fork server keeps the DAG file's code out of its own long-lived process: a DAG server is
started for a version on its first workload, gets that version's workloads (the runner's
connection passed over a Unix socket pair, with the workload), and is retired when it has been
idle for a minute, when more than ``MAX_SERVERS`` versions are in use (least recently used
first), or as soon as a file its parse read has changed. A retired server forks nothing more,
waits for its running workloads and exits. A workload that cannot be handed over is forked by
the fork server itself, as without the cache.

Wire, fork server to DAG server: per workload, the 8-byte length and the workload, the
connection's descriptor attached to the first byte. DAG server to fork server: one line, the
JSON list of the file stamps its parse depends on (or empty: nothing cached, the DAG file's
own stamp alone so that a fixed file gets a new server).
"""

from __future__ import annotations

import contextlib
import gc
import json
import os
import selectors
import socket
import sys
import time
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from typing import Any

from airflow_jobbers import protocol
from airflow_jobbers.worker.childproc import die_with_parent
from airflow_jobbers.worker.forker import Forker, recv_exact

_NAME = "airflow-jobbers fork server"
MAX_SERVERS = 8
IDLE_SECONDS = 60.0
_SEND_TIMEOUT = 10.0

Route = Callable[[bytes], Hashable | None]
Warm = Callable[[Any], list[Any]]
Fresh = Callable[[list[Any]], bool]


@dataclass
class _Handle:
    """The fork server's view of one DAG server."""

    key: Hashable
    pid: int
    sock: socket.socket
    last_used: float
    stamps: list[Any] | None = None
    inbox: bytearray = field(default_factory=bytearray)


class DagServers:
    """The fork server's side: which DAG server takes which workload."""

    def __init__(self, route: Route, warm: Warm, fresh: Fresh) -> None:
        self.route = route
        self.warm = warm
        self.fresh = fresh
        self.handles: dict[Hashable, _Handle] = {}
        self._forker: Forker | None = None

    def attach(self, forker: Forker) -> None:
        """The fork server whose loop watches the DAG servers' sockets."""
        self._forker = forker

    def hand_over(self, conn: socket.socket, data: bytes) -> bool:
        """Pass the workload to its DAG server (started if needed); False when it has none
        or the hand-over failed (the caller then forks it as usual)."""
        try:
            key = self.route(data)
        except Exception:
            key = None
        if key is None:
            return False
        handle = self.handles.get(key)
        if handle is not None and handle.stamps is None:
            self.readable(handle.sock)  # its stamps may be waiting
            handle = self.handles.get(key)
        if handle is not None and handle.stamps is not None and not self.fresh(handle.stamps):
            self._drop(handle, "its files changed")
            handle = None
        if handle is None:
            if len(self.handles) >= MAX_SERVERS:
                oldest = min(self.handles.values(), key=lambda h: h.last_used)
                self._drop(oldest, "least recently used")
            handle = self._start(key, conn)
            if handle is None:
                return False
        message = len(data).to_bytes(protocol.FORK_LENGTH_BYTES, "big") + data
        try:
            handle.sock.settimeout(_SEND_TIMEOUT)
            sent = socket.send_fds(handle.sock, [message], [conn.fileno()])
            handle.sock.sendall(message[sent:])
        except OSError as exc:
            self._drop(handle, f"hand-over failed: {exc}")
            return False
        handle.last_used = time.monotonic()
        conn.close()
        return True

    def _start(self, key: Hashable, conn: socket.socket) -> _Handle | None:
        assert self._forker is not None
        try:
            mine, theirs = socket.socketpair()
        except OSError:
            return None
        pid = os.fork()
        if pid == 0:
            mine.close()
            conn.close()
            DagServer(theirs, self._forker).run(key, self.warm)  # never returns
        theirs.close()
        handle = _Handle(key=key, pid=pid, sock=mine, last_used=time.monotonic())
        self._forker.selector.register(mine, selectors.EVENT_READ)
        self.handles[key] = handle
        return handle

    def readable(self, sock: Any) -> None:
        """The stamps line of a DAG server, or its end."""
        handle = next((h for h in self.handles.values() if h.sock is sock), None)
        if handle is None:
            return
        try:
            handle.sock.settimeout(0.0)  # never wait here: a socket timeout would poll first
            chunk = handle.sock.recv(1 << 16)
        except BlockingIOError:
            return
        except OSError:
            chunk = b""
        if not chunk:
            self._drop(handle, "it exited")
            return
        handle.inbox += chunk
        if b"\n" in handle.inbox:
            line = bytes(handle.inbox).split(b"\n", 1)[0]
            try:
                handle.stamps = [tuple(s) for s in json.loads(line)]
            except ValueError:
                handle.stamps = []
            handle.inbox.clear()

    def tick(self, exited: list[int]) -> None:
        """After each loop: forget DAG servers that exited, retire idle ones."""
        now = time.monotonic()
        for handle in list(self.handles.values()):
            if handle.pid in exited:
                self._drop(handle, "it exited")
            elif now - handle.last_used >= IDLE_SECONDS:
                self._drop(handle, "idle")

    def _drop(self, handle: _Handle, why: str) -> None:
        """Close our end: the DAG server then forks nothing more and exits once idle."""
        print(
            f"airflow-jobbers fork server: DAG server {handle.pid} retired ({why})", file=sys.stderr
        )
        if self.handles.get(handle.key) is handle:
            del self.handles[handle.key]
        if self._forker is not None:
            with contextlib.suppress(KeyError, ValueError, OSError):
                self._forker.selector.unregister(handle.sock)
        handle.sock.close()

    def close_inherited(self) -> None:
        """In any fork of the fork server: the DAG servers' sockets are not its own."""
        for handle in self.handles.values():
            handle.sock.close()
        self.handles.clear()


class DagServer(Forker):
    """The DAG server process: parse once, then fork each workload handed over."""

    def __init__(self, sock: socket.socket, parent: Forker) -> None:
        parent.close_inherited()
        super().__init__()
        self.sock = sock
        self.closing = False

    def close_inherited(self) -> None:
        super().close_inherited()
        self.sock.close()

    def run(self, key: Any, warm: Warm) -> None:
        code = 0
        try:
            die_with_parent()
            stamps = warm(key)
            self.sock.sendall(json.dumps(stamps).encode() + b"\n")
            gc.collect()
            gc.freeze()
            self.selector.register(self.sock, selectors.EVENT_READ)
            while not (self.closing and not self.conns):
                for sel_key, _ in self.selector.select(timeout=1.0):
                    if sel_key.fileobj is self.sock:
                        self._receive()
                    else:
                        self.drain_wake()
                self.reap()
        except BaseException:
            import traceback

            traceback.print_exc()
            code = 1
        finally:
            os._exit(code)

    def _receive(self) -> None:
        header = b""
        fds: list[int] = []
        try:
            self.sock.settimeout(_SEND_TIMEOUT)
            while len(header) < protocol.FORK_LENGTH_BYTES:
                chunk, got, _flags, _addr = socket.recv_fds(
                    self.sock, protocol.FORK_LENGTH_BYTES - len(header), 1
                )
                fds += got
                if not chunk:
                    raise ConnectionError("closed")
                header += chunk
            data = recv_exact(self.sock, int.from_bytes(header, "big"))
        except (OSError, ConnectionError):
            for fd in fds:
                os.close(fd)
            self._stop()
            return
        if len(fds) != 1:
            for fd in fds:
                os.close(fd)
            self._stop()
            return
        self.fork_workload(socket.socket(fileno=fds[0]), data)

    def _stop(self) -> None:
        """Retired (or the fork server is gone): fork nothing more, finish what runs."""
        self.closing = True
        with contextlib.suppress(KeyError, ValueError):
            self.selector.unregister(self.sock)
