"""The clients' HTTP: keep-alive HTTP/1.1 with one write per request.

httpx spends more CPU on each request than the Manager spends answering a submission, and its
HTTP/1.1 layer writes the headers and the body in separate sends, so the server wakes twice per
request. For the plain ``http://`` URLs a Manager is usually reached at, the clients use these
pools instead (``http.client`` for :class:`~jobbers.Client`, asyncio streams and httptools for
:class:`~jobbers.AsyncClient`); anything else (``https://``, a custom httpx transport) keeps httpx.

Connections are kept per pool and handed to one request at a time, so one client can be shared
by threads. An idle connection the server has closed meanwhile (its keep-alive timeout) is seen
before reuse, as a readable socket, and replaced.
"""

from __future__ import annotations

import asyncio
import http.client
import select
import threading
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlencode, urlsplit

import httptools

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


def _address(url: str) -> tuple[str, int, str, str]:
    """Host, port, path prefix and ``Host`` header (the netloc without credentials)."""
    parts = urlsplit(url)
    netloc = parts.netloc.rpartition("@")[2]
    return parts.hostname or "127.0.0.1", parts.port or 80, parts.path.rstrip("/"), netloc


class Pool:
    def __init__(self, url: str, headers: Mapping[str, str]) -> None:
        self._host, self._port, self._prefix, netloc = _address(url)
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


class _Answer:
    """httptools callbacks: collects one response."""

    def __init__(self) -> None:
        self.chunks: list[bytes] = []
        self.done = False
        self.keep_alive = False
        self.parser = httptools.HttpResponseParser(self)

    def on_body(self, body: bytes) -> None:
        self.chunks.append(body)

    def on_message_complete(self) -> None:
        self.done = True
        self.keep_alive = self.parser.should_keep_alive()


class _Stream:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    def usable(self) -> bool:
        """False once the server has closed it (or it failed)."""
        reader = self.reader
        return not (reader.at_eof() or reader.exception() or self.writer.is_closing())

    def close(self) -> None:
        self.writer.close()


class AsyncPool:
    """The asyncio twin of :class:`Pool`: requests written in one piece, answers parsed by
    httptools (the parser uvicorn uses)."""

    def __init__(self, url: str, headers: Mapping[str, str]) -> None:
        self._host, self._port, self._prefix, netloc = _address(url)
        fixed = {"Host": netloc, **headers}
        for name, value in fixed.items():
            if any(c in f"{name}{value}" for c in "\r\n\0"):
                raise ValueError(f"header {name!r} holds a line break or NUL")
        self._head = "".join(f"{k}: {v}\r\n" for k, v in fixed.items())
        self._idle: list[_Stream] = []

    async def request(
        self, method: str, target: str, body: bytes | None, timeout: float
    ) -> tuple[int, bytes]:
        head = f"{method} {self._prefix}{target} HTTP/1.1\r\n{self._head}"
        if body is not None:
            head += f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
        elif method in ("POST", "PUT", "PATCH"):
            head += "Content-Length: 0\r\n"
        payload = (head + "\r\n").encode("latin-1") + (body or b"")
        stream: _Stream | None = None
        try:
            async with asyncio.timeout(timeout):
                stream = await self._checkout()
                stream.writer.write(payload)
                answer = _Answer()
                while not answer.done:
                    data = await stream.reader.read(65536)
                    if not data:
                        raise ConnectionResetError("the server closed the connection")
                    answer.parser.feed_data(data)
        except (OSError, TimeoutError, httptools.HttpParserError) as exc:
            if stream is not None:
                stream.close()
            raise HTTPFailure(f"{type(exc).__name__}: {exc}") from exc
        except BaseException:
            if stream is not None:  # cancelled mid-request: the connection's state is unknown
                stream.close()
            raise
        if answer.keep_alive and len(self._idle) < KEEP_IDLE:
            self._idle.append(stream)
        else:
            stream.close()
        return answer.parser.get_status_code(), b"".join(answer.chunks)

    async def _checkout(self) -> _Stream:
        while self._idle:
            stream = self._idle.pop()
            if stream.usable():
                return stream
            stream.close()
        reader, writer = await asyncio.open_connection(self._host, self._port)
        return _Stream(reader, writer)

    async def close(self) -> None:
        idle, self._idle = self._idle, []
        for stream in idle:
            stream.close()
