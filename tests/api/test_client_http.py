"""The blocking client's HTTP/1.1 pool: keep-alive reuse, a connection the server closed while
idle, and parameters encoded as httpx encodes them."""

from __future__ import annotations

import asyncio
import http.server
import threading
from collections.abc import Iterator

import httpx
import pytest

from jobbers.client import AsyncClient, Client, ManagerUnavailable
from jobbers.client_http import query_string


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def do_GET(self) -> None:
        self.server.peers.append(self.client_address[1])  # before the answer, which ends the test
        body = b'{"status": "ok"}'
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
        # Answer as keep-alive, then hang up anyway: what a server's idle timeout does.
        self.close_connection = self.server.hang_up

    def log_message(self, format: str, *args: object) -> None:
        pass


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, hang_up: bool) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.hang_up = hang_up
        self.peers: list[int] = []
        self.closed = threading.Event()

    def shutdown_request(self, request: object) -> None:
        super().shutdown_request(request)  # type: ignore[arg-type]
        self.closed.set()  # the socket is closed: its FIN is on its way


@pytest.fixture(params=[False, True], ids=["kept", "hung-up"])
def server(request: pytest.FixtureRequest) -> Iterator[_Server]:
    srv = _Server(hang_up=request.param)
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    yield srv
    srv.shutdown()
    srv.server_close()


def test_connections_are_reused_unless_the_server_hung_up(server: _Server) -> None:
    with Client(f"http://127.0.0.1:{server.server_address[1]}") as client:
        assert client.healthz() == {"status": "ok"}
        if server.hang_up:
            assert server.closed.wait(5)  # the server has closed the idle connection
        assert client.healthz() == {"status": "ok"}
    assert len(server.peers) == 2
    reused = server.peers[0] == server.peers[1]
    assert reused is not server.hang_up


@pytest.mark.anyio
async def test_async_connections_are_reused_unless_the_server_hung_up(server: _Server) -> None:
    async with AsyncClient(f"http://127.0.0.1:{server.server_address[1]}") as client:
        assert await client.healthz() == {"status": "ok"}
        if server.hang_up:
            assert await asyncio.to_thread(server.closed.wait, 5)
            await _until_eof_seen(client)
        assert await client.healthz() == {"status": "ok"}
    assert len(server.peers) == 2
    reused = server.peers[0] == server.peers[1]
    assert reused is not server.hang_up


async def _until_eof_seen(client: AsyncClient) -> None:
    """The event loop reads the server's FIN on its next turns; wait for that, not a time."""
    deadline = asyncio.get_running_loop().time() + 5
    pool = client._fast
    assert pool is not None
    while all(s.usable() for s in pool._idle):
        assert asyncio.get_running_loop().time() < deadline
        await asyncio.sleep(0)


def test_nothing_listening_is_manager_unavailable() -> None:
    with (
        socket_port() as port,
        Client(f"http://127.0.0.1:{port}", timeout=2) as client,
        pytest.raises(ManagerUnavailable),
    ):
        client.healthz()


class socket_port:
    """A port nothing listens on (bound, never listening, while in use)."""

    def __enter__(self) -> int:
        import socket

        self._sock = socket.socket()
        self._sock.bind(("127.0.0.1", 0))
        port: int = self._sock.getsockname()[1]
        return port

    def __exit__(self, *exc: object) -> None:
        self._sock.close()


@pytest.mark.anyio
async def test_async_nothing_listening_is_manager_unavailable() -> None:
    with socket_port() as port:
        async with AsyncClient(f"http://127.0.0.1:{port}", timeout=2) as client:
            with pytest.raises(ManagerUnavailable):
                await client.healthz()


@pytest.mark.parametrize(
    "params",
    [{"a": True, "b": False, "c": None}, {"limit": 5, "timeout": 1.5}, {"q": "a b&c/é"}],
)
def test_query_strings_match_httpx(params: dict[str, object]) -> None:
    expected = httpx.Request("GET", "http://x/", params=params).url.query.decode()  # type: ignore[arg-type]
    assert query_string(params) == expected
