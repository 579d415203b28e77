"""Liveness: open without a token so that probes need no secret."""

from __future__ import annotations

from fastapi import APIRouter

from jobbers.api.errors import JSONResponse
from jobbers.api.schemas import HealthOut

router = APIRouter(tags=["health"])


@router.get("/healthz", response_model=HealthOut)
async def healthz() -> JSONResponse:
    return JSONResponse({"status": "ok"})
