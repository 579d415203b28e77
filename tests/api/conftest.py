"""An app on a real store (each backend in turn), called in-process through httpx's ASGI transport.

The test talks to the same store object, so it can assert what was (and was not) stored.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

import jobbers.examples  # noqa: F401  (registers add, sleep, fail, ...)
from jobbers.manager import create_app
from jobbers.store.base import Store

TOKEN = "s3cret-token"


def asgi_client(store: Store, token: str | None = None) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=create_app(store, token=token))
    return httpx.AsyncClient(transport=transport, base_url="http://jobbers.test")


@pytest.fixture
async def api(store: Store) -> AsyncIterator[httpx.AsyncClient]:
    async with asgi_client(store) as client:
        yield client
