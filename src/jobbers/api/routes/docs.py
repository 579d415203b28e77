"""``/docs``: Swagger UI from the ``fastapi-offline`` package, so the page works on a machine with
no way out to the internet (FastAPI's default page loads its script from a CDN). Only the
package's files are used: its Swagger UI (5.x) draws the OpenAPI 3.1 schema FastAPI writes."""

from __future__ import annotations

from importlib import resources

from fastapi import APIRouter
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse, Response

router = APIRouter(include_in_schema=False)

ASSETS = "/docs/static"
#: The only files served: the page needs no others.
FILES = {
    "swagger-ui-bundle.js": "text/javascript",
    "swagger-ui.css": "text/css",
    "favicon.png": "image/png",
}


@router.get("/docs")
async def docs() -> HTMLResponse:
    return get_swagger_ui_html(
        openapi_url="/openapi.json",
        title="Jobbers Manager: API",
        swagger_js_url=f"{ASSETS}/swagger-ui-bundle.js",
        swagger_css_url=f"{ASSETS}/swagger-ui.css",
        swagger_favicon_url=f"{ASSETS}/favicon.png",
        oauth2_redirect_url=None,
        # Swagger UI would otherwise send the schema to an online validator for its badge.
        swagger_ui_parameters={"validatorUrl": None},
    )


@router.get(ASSETS + "/{name}")
async def docs_asset(name: str) -> Response:
    if name not in FILES:
        return Response(status_code=404)
    body = resources.files("fastapi_offline").joinpath("static", name).read_bytes()
    return Response(body, media_type=FILES[name], headers={"cache-control": "no-cache"})
