"""A task that waits on parents (a workflow node, a fan-out's collector) may name a kwarg that
receives their results: read from the store when its attempt starts, since the parents ended
before it was released."""

from __future__ import annotations

import dataclasses

from jobbers.models import JSON, TaskRecord
from jobbers.store.base import Store


async def with_inputs(store: Store, record: TaskRecord) -> TaskRecord:
    """The record with its ``inputs`` kwarg filled: a dict by parent node id, or a list in
    the children's order for a fan-out's collector (its edges have no keys)."""
    if record.inputs is None:
        return record
    found = await store.parent_results(record.id)
    value: JSON
    if all(key is None for key, _ in found):
        value = [result for _, result in found]
    else:
        value = {str(key): result for key, result in found}
    return dataclasses.replace(record, kwargs={**record.kwargs, record.inputs: value})
