"""Prometheus scrapes ``/metrics`` (with the API token, like every route but ``/healthz``)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST

from jobbers.http.deps import StoreDep
from jobbers.http.requests import RequestMetrics
from jobbers.metrics import exposition

router = APIRouter(tags=["metrics"])


@router.get(
    "/metrics",
    response_class=Response,
    responses={
        200: {"content": {CONTENT_TYPE_LATEST.split(";")[0]: {"schema": {"type": "string"}}}}
    },
)
async def metrics(request: Request, store: StoreDep) -> Response:
    """Computed from the store at each scrape, so every Manager answers the same numbers;
    besides, this Manager's own HTTP requests."""
    requests: RequestMetrics | None = getattr(request.app.state, "requests", None)
    extra = list(requests.families()) if requests is not None else []
    return Response(await exposition(store, extra), media_type=CONTENT_TYPE_LATEST)
