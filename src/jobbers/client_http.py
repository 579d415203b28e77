"""The blocking client's HTTP: keep-alive HTTP/1.1 over ``http.client``, one write per request.

httpx spends more CPU on each request than the Manager spends answering a submission, and its
HTTP/1.1 layer writes the headers and the body in separate sends, so the server wakes twice per
request. For the plain ``http://`` URLs a Manager is usually reached at, :class:`Client` uses
this pool instead; anything else (``https://``, a custom httpx transport) keeps httpx.

Connections are kept per pool and handed to one request at a time, so one client can be shared
by threads. An idle connection the server has closed meanwhile (its keep-alive timeout) is seen
before reuse, as a readable socket, and replaced.
"""

from __future__ import annotations

import http.client
import select
import threading
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlencode, urlsplit

#: Idle connections kept for reuse.
KEEP_IDLE = 10


class HTTPFailure(Exception):
    """The request could not be sent or its answer read (refused, reset, timed out, garbled)."""


def plain_http(url: str) -> bool:
    return urlsplit(url).scheme == "http"


def query_string(params: Mapping[str, Any]) -> str:
    """Parameters as httpx encodes them: booleans as ``true``/``false``, None as empty."""
    pairs = []
    for key, value in params.items():
        if value is True:
            value = "true"
        elif value is False:
            value = "false"
        elif value is None:
            value = ""
        pairs.append((key, str(value)))
    return urlencode(pairs)


class Pool:
    def __init__(self, url: str, headers: Mapping[str, str]) -> None:
        parts = urlsplit(url)
        self._host = parts.hostname or "127.0.0.1"
        self._port = parts.port or 80
        self._prefix = parts.path.rstrip("/")
        netloc = parts.netloc.rpartition("@")[2]
        self._headers = {"Host": netloc, **headers}
        self._idle: list[http.client.HTTPConnection] = []
        self._lock = threading.Lock()

    def request(
        self, method: str, target: str, body: bytes | None, timeout: float
    ) -> tuple[int, bytes]:
        """The status and body of the answer; :class:`HTTPFailure` when there is none."""
        headers = dict(self._headers)
        if body is not None:
            headers["Content-Type"] = "application/json"
        conn = self._checkout(timeout)
        try:
            conn.timeout = timeout
            if conn.sock is not None:
                conn.sock.settimeout(timeout)
            # endheaders() sends a bytes body in the same write as the headers.
            conn.request(method, self._prefix + target, body=body, headers=headers)
            response = conn.getresponse()
            data = response.read()
        except (OSError, http.client.HTTPException) as exc:
            conn.close()
            raise HTTPFailure(f"{type(exc).__name__}: {exc}") from exc
        if response.will_close:
            conn.close()
        else:
            self._checkin(conn)
        return response.status, data

    def _checkout(self, timeout: float) -> http.client.HTTPConnection:
        while True:
            with self._lock:
                conn = self._idle.pop() if self._idle else None
            if conn is None:
                return http.client.HTTPConnection(self._host, self._port, timeout=timeout)
            if _still_open(conn):
                return conn
            conn.close()

    def _checkin(self, conn: http.client.HTTPConnection) -> None:
        with self._lock:
            if len(self._idle) < KEEP_IDLE:
                self._idle.append(conn)
                return
        conn.close()

    def close(self) -> None:
        with self._lock:
            idle, self._idle = self._idle, []
        for conn in idle:
            conn.close()


def _still_open(conn: http.client.HTTPConnection) -> bool:
    """An idle keep-alive socket with something to read has been closed by the server (or holds
    garbage): either way it cannot carry the next request."""
    sock = conn.sock
    if sock is None:
        return False
    try:
        readable, _, _ = select.select([sock], [], [], 0)
    except (OSError, ValueError):
        return False
    return not readable
