"""Serving the Manager inside an event loop that the caller owns (``jobbers dev`` shares it with
a worker).

uvicorn's own signal handling would swallow SIGTERM and re-raise it once the server stops, before
the worker has handed its tasks back; the caller installs its handlers instead and stops both.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
from collections.abc import Callable, Generator

import uvicorn
from fastapi import FastAPI

from jobbers.errors import ListenError


class EmbeddedServer(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield

    async def serve_or_raise(self) -> None:
        """Serve until :meth:`stop`; a failed start raises instead of exiting the process."""
        try:
            await self.serve()
        except SystemExit as exc:
            raise ListenError(
                f"could not listen on {self.config.host}:{self.config.port} (see the log above)"
            ) from exc

    def stop(self) -> None:
        self.should_exit = True


def embedded_server(app: FastAPI, host: str, port: int, log_level: str = "info") -> EmbeddedServer:
    """httptools parses HTTP where it is installed (several times faster than h11); one access
    log line per request is written only at debug level, since at thousands of requests a second
    the log costs more than the request."""
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        log_level=log_level.lower(),
        log_config=None,  # uvicorn's lines go through the process's logging, JSON included
        access_log=log_level.lower() == "debug",
        http="httptools" if _installed("httptools") else "h11",
        lifespan="off",
        timeout_graceful_shutdown=5,
    )
    return EmbeddedServer(config)


def loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop's event loop where it is installed: faster I/O for a serving process."""
    if not _installed("uvloop"):
        return None
    import uvloop

    return uvloop.new_event_loop


def _installed(module: str) -> bool:
    return importlib.util.find_spec(module) is not None
