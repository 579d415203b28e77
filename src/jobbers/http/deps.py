"""What the Manager's routes and pages get from the app: the store and the task catalog, set once
by ``create_app``.

Async on purpose: FastAPI runs a plain ``def`` dependency in a worker thread, a thread hop per
request for what is an attribute read.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from jobbers.intake import Catalog
from jobbers.store.base import Store


async def _store(request: Request) -> Store:
    store: Store = request.app.state.store
    return store


async def _catalog(request: Request) -> Catalog:
    catalog: Catalog = request.app.state.catalog
    return catalog


StoreDep = Annotated[Store, Depends(_store)]
CatalogDep = Annotated[Catalog, Depends(_catalog)]
