"""Property-based API test: requests generated from /openapi.json never get a 5xx answer, and
documented responses match their schemas. Bounded: a few examples per operation."""

from __future__ import annotations

import asyncio
import tempfile
from pathlib import Path
from typing import Any

import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance

import jobbers.examples  # noqa: F401  (names schemathesis may hit)
from jobbers.manager import create_app
from jobbers.store import open_store

_DIR = tempfile.TemporaryDirectory(prefix="jobbers-schemathesis-")
_STORE = open_store(f"sqlite:///{Path(_DIR.name) / 'fuzz.db'}")
schema = schemathesis.openapi.from_asgi("/openapi.json", create_app(_STORE))


def teardown_module() -> None:
    asyncio.run(_STORE.close())
    _DIR.cleanup()


@schema.parametrize()
@settings(
    max_examples=25,
    deadline=None,
    derandomize=True,
    suppress_health_check=list(HealthCheck),
)
def test_no_server_errors(case: schemathesis.Case[Any]) -> None:
    _shorten_long_polls(case)
    response = case.call_and_validate(checks=[not_a_server_error, response_schema_conformance])
    assert response.status_code < 500


def _shorten_long_polls(case: schemathesis.Case[Any]) -> None:
    """A generated long poll of the feed would hold the test for up to a minute with nothing to
    show for it: keep its shape, shorten the wait (a bad value stays bad)."""
    wait = (case.query or {}).get("wait")
    if case.path == "/events" and isinstance(wait, int | float) and 0 < wait <= 60:
        case.query["wait"] = 0.01
