"""One error shape for every failure, ``{"detail": ...}``, and a 4xx for every bad input.

Validation errors are reported without the offending input: it may hold a secret (a kwarg named
``token``), and echoing it back could also fail to encode (NaN, lone surrogates).
"""

from __future__ import annotations

import json
import logging
import math
import sys
from typing import Any

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException
from starlette.responses import JSONResponse as _StarletteJSON
from starlette.responses import Response

from jobbers.api.schemas import ErrorOut
from jobbers.errors import InvalidKwargs
from jobbers.intake.submission import MAX_KWARGS_DEPTH
from jobbers.present import REFUSALS, refusal, validation_details
from jobbers.store.base import StoreUnavailable

log = logging.getLogger("jobbers.api")


class JSONResponse(_StarletteJSON):
    """JSON encoded by orjson (several times faster than the standard library); what it cannot
    encode (a lone surrogate in a stored string) goes out as ASCII-only JSON instead, so any
    string a store holds can be sent. A NaN result becomes null either way."""

    def render(self, content: Any) -> bytes:
        try:
            return orjson.dumps(content)
        except (orjson.JSONEncodeError, TypeError):
            pass
        try:
            text = json.dumps(content, ensure_ascii=True, allow_nan=False, separators=(",", ":"))
        except ValueError:
            text = json.dumps(_finite(content), ensure_ascii=True, separators=(",", ":"))
        return text.encode("ascii")


def _finite(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value


def error(status: int, detail: Any) -> JSONResponse:
    return JSONResponse({"detail": detail}, status_code=status)


def responses(*codes: int, **extra: Any) -> dict[int | str, dict[str, Any]]:
    """OpenAPI entries for the errors a route can answer, so clients and schemathesis know them."""
    codes = (*codes, 503)  # the store does not answer
    if 422 in codes:
        codes = (*codes, 400)  # a body that is not UTF-8 JSON at all
    entries: dict[int | str, dict[str, Any]] = {code: {"model": ErrorOut} for code in codes}
    if "ok" in extra:
        entries[200] = extra["ok"]
    return entries


async def _validation(_: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    return error(422, validation_details(exc.errors()))


def _unparsable(cause: BaseException | None) -> str | None:
    """What is wrong with a body the JSON parser gave up on, and what to send instead."""
    if isinstance(cause, RecursionError):
        return (
            "the JSON body is nested too deeply to parse: nest at most"
            f" {MAX_KWARGS_DEPTH} levels (send deeper data as a string)"
        )
    if isinstance(cause, ValueError) and "digits" in str(cause):
        return (
            "the JSON body holds a number with too many digits to parse (the limit is"
            f" {sys.get_int_max_str_digits()} digits): send a number that long as a string"
        )
    return None


async def _refused(_: Request, exc: Exception) -> Response:
    answer = refusal(exc)
    assert answer is not None
    return error(*answer)


async def _http(_: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    detail = _unparsable(exc.__cause__) if exc.status_code == 400 else None
    response = error(exc.status_code, detail or exc.detail)
    if exc.headers:
        response.headers.update(exc.headers)
    return response


async def _unavailable(request: Request, exc: Exception) -> Response:
    log.warning("store unavailable on %s %s: %s", request.method, request.url.path, exc)
    return error(503, str(exc))


def unexpected(method: str, path: str) -> JSONResponse:
    """The answer to a bug: logged with its traceback (call it while handling the exception)."""
    log.exception("unhandled error on %s %s", method, path)
    return error(500, "internal error; the Manager's log has the details")


async def _unexpected(request: Request, exc: Exception) -> Response:
    return unexpected(request.method, request.url.path)


def install(app: FastAPI) -> None:
    app.add_exception_handler(RequestValidationError, _validation)
    app.add_exception_handler(HTTPException, _http)
    refused: list[type[Exception]] = [InvalidKwargs, *(kind for kind, _ in REFUSALS)]
    for kind in refused:
        app.add_exception_handler(kind, _refused)
    app.add_exception_handler(StoreUnavailable, _unavailable)
    app.add_exception_handler(Exception, _unexpected)
