"""Health: open without a token so that probes need no secret, and honest about the store."""

from __future__ import annotations

from fastapi import APIRouter

from jobbers.api.errors import JSONResponse, error, responses
from jobbers.api.schemas import HealthOut
from jobbers.http.deps import StoreDep
from jobbers.store.base import StoreUnavailable

router = APIRouter(tags=["health"])


@router.get("/healthz", response_model=HealthOut, responses=responses())
async def healthz(store: StoreDep) -> JSONResponse:
    """200 while the store answers with the schema this Manager expects, 503 (with the reason)
    when it does not: a Manager that cannot reach its store is not healthy."""
    try:
        await store.check()
    except StoreUnavailable as exc:
        return error(503, str(exc))
    return JSONResponse({"status": "ok"})
