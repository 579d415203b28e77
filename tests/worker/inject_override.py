"""Loaded by a worker after :mod:`inject_tasks`: replaces the tasks' provider with a fake, as a
test suite's worker would."""

from __future__ import annotations

from collections.abc import AsyncIterator

from jobbers.testing import override

from .inject_tasks import Resource, _record, resource


async def fake_resource() -> AsyncIterator[Resource]:
    res = Resource("fake")
    yield res
    _record(res, "teardown", None)


override(resource, fake_resource)
