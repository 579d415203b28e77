"""Unknown query parameters are refused (422), as unknown body fields are.

FastAPI ignores query parameters a route does not declare, so ``GET /tasks?stauts=dead`` would
answer every task. This dependency, installed for every route, compares the query with what the
matched route declares and reports each stranger in the usual validation-error shape.
"""

from __future__ import annotations

from fastapi import Request
from fastapi.dependencies.models import Dependant
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute


def _declared(dependant: Dependant) -> set[str]:
    names = {param.alias for param in dependant.query_params}
    for sub in dependant.dependencies:
        names |= _declared(sub)
    return names


async def known_query_only(request: Request) -> None:
    route = request.scope.get("route")
    if not isinstance(route, APIRoute) or not request.query_params:
        return
    if not route.include_in_schema:  # the dashboard's pages: for browsers, not API clients
        return
    declared = _declared(route.dependant)
    unknown = sorted(set(request.query_params.keys()) - declared)
    if unknown:
        takes = ", ".join(sorted(declared)) or "none"
        raise RequestValidationError(
            [
                {
                    "loc": ("query", name),
                    "msg": f"unknown query parameter (this route takes: {takes})",
                    "type": "extra_forbidden",
                }
                for name in unknown
            ]
        )
