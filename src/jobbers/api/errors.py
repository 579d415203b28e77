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
        codes = (*codes, 400, 415)  # a body that is not UTF-8 JSON at all, or not sent as JSON
    entries: dict[int | str, dict[str, Any]] = {code: {"model": ErrorOut} for code in codes}
    if "ok" in extra:
        entries[200] = extra["ok"]
    return entries


#: What every refusal of an unreadable body ends with: the fix, in the words a curl user types.
SEND_JSON = "send a JSON object with the header Content-Type: application/json"


async def _validation(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    errors = exc.errors()
    for problem in errors:
        if problem.get("type") == "json_invalid":
            return error(400, _invalid_json(problem, exc.body))
    content_type = request.headers.get("content-type")
    at_body = any(tuple(e.get("loc", ())) == ("body",) for e in errors)
    if at_body and not is_json_type(content_type) and await request.body():
        return error(415, _not_json_type(content_type))
    return error(422, validation_details(errors))


def is_json_type(content_type: str | None) -> bool:
    """``application/json`` or ``application/...+json``, parameters aside (as FastAPI reads it)."""
    if not content_type:
        return False
    kind = content_type.split(";", 1)[0].strip().lower()
    major, _, minor = kind.partition("/")
    return major == "application" and (minor == "json" or minor.endswith("+json"))


def _not_json_type(content_type: str | None) -> str:
    """A body sent as a form (curl's ``-d`` default) or without a type: never guessed to be JSON,
    so a page in a browser cannot post to the API without the CORS check a JSON type brings."""
    sent = (
        f"as {content_type.split(';', 1)[0].strip()}" if content_type else "without a Content-Type"
    )
    return f"the body was sent {sent}: {SEND_JSON} (curl: -H 'Content-Type: application/json')"


def _invalid_json(problem: dict[str, Any], body: Any) -> str:
    """Where the parser stopped, as line and column, and what to send."""
    reason = str((problem.get("ctx") or {}).get("error") or "unreadable")
    loc = tuple(problem.get("loc", ()))
    where = ""
    if len(loc) == 2 and isinstance(loc[1], int) and isinstance(body, str):
        pos = loc[1]
        line = body.count("\n", 0, pos) + 1
        column = pos - (body.rfind("\n", 0, pos) + 1) + 1
        where = f" at line {line}, column {column}"
    return f"the body is not valid JSON ({reason}{where}): {SEND_JSON}"


def _unparsable(cause: BaseException | None) -> str | None:
    """What is wrong with a body the JSON parser gave up on, and what to send instead."""
    if isinstance(cause, RecursionError):
        return (
            "the JSON body is nested too deeply to parse: nest at most"
            f" {MAX_KWARGS_DEPTH} levels (send deeper data as a string)"
        )
    if isinstance(cause, UnicodeDecodeError):
        return (
            f"the body is not UTF-8 (byte {cause.start} cannot be read): {SEND_JSON},"
            " encoded as UTF-8 (write other characters as \\uXXXX escapes)"
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
