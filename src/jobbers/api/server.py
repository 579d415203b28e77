"""Serving the Manager inside an event loop that the caller owns (``jobbers dev`` shares it with
a worker).

uvicorn's own signal handling would swallow SIGTERM and re-raise it once the server stops, before
the worker has handed its tasks back; the caller installs its handlers instead and stops both.
"""

from __future__ import annotations

import contextlib
from collections.abc import Generator

import uvicorn
from fastapi import FastAPI


class ListenError(RuntimeError):
    """The Manager could not start listening (the port is taken, the host is unknown, ...)."""


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
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        log_level=log_level.lower(),
        log_config=None,  # uvicorn's lines go through the process's logging, JSON included
        lifespan="off",
        timeout_graceful_shutdown=5,
    )
    return EmbeddedServer(config)
