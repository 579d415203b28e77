"""``/docs``: Swagger UI from the ``swagger-ui-bundle`` package, so the page works on a machine
with no way out to the internet (FastAPI's default page loads its script from a CDN)."""

from __future__ import annotations

from functools import cache
from importlib import resources
from importlib.resources.abc import Traversable

from fastapi import APIRouter
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse, Response

router = APIRouter(include_in_schema=False)

ASSETS = "/docs/static"
#: The only files served: the page needs no others (their source maps are left out).
FILES = {
    "swagger-ui-bundle.js": "text/javascript",
    "swagger-ui.css": "text/css",
    "favicon-32x32.png": "image/png",
}


@cache
def _vendor() -> Traversable:
    """The package names its folder after the Swagger UI version it ships: found, not assumed."""
    vendor = resources.files("swagger_ui_bundle").joinpath("vendor")
    (folder,) = [d for d in vendor.iterdir() if d.name.startswith("swagger-ui-")]
    return folder


@router.get("/docs")
async def docs() -> HTMLResponse:
    return get_swagger_ui_html(
        openapi_url="/openapi.json",
        title="Jobbers Manager: API",
        swagger_js_url=f"{ASSETS}/swagger-ui-bundle.js",
        swagger_css_url=f"{ASSETS}/swagger-ui.css",
        swagger_favicon_url=f"{ASSETS}/favicon-32x32.png",
        oauth2_redirect_url=None,
    )


@router.get(ASSETS + "/{name}")
async def docs_asset(name: str) -> Response:
    if name not in FILES:
        return Response(status_code=404)
    body = _vendor().joinpath(name).read_bytes()
    # The file changes only with the package version, which is in the folder name.
    return Response(body, media_type=FILES[name], headers={"cache-control": "max-age=86400"})
