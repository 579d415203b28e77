"""A store seen through a link that can be cut: while cut, every call fails as a partition
makes it fail (unreachable), without reaching the store; ``lose_answers`` makes the named calls
run in the store and then fail as if their answer had been lost on the way back."""

from __future__ import annotations

from typing import Any

from jobbers.store.base import Store, StoreUnreachable

#: Calls that never touch the link: waiting for a change is local in effect (it times out).
LOCAL = frozenset({"close", "wait_for_change", "wait_for_cancel"})


class CutStore:
    def __init__(self, store: Store) -> None:
        self._store = store
        self.cut = False
        self.lose_answers: dict[str, int] = {}
        self.calls: dict[str, int] = {}

    def __getattr__(self, name: str) -> Any:
        target = getattr(self._store, name)
        if name.startswith("_") or not callable(target) or name in LOCAL:
            return target

        async def call(*args: Any, **kwargs: Any) -> Any:
            self.calls[name] = self.calls.get(name, 0) + 1
            if self.cut:
                raise StoreUnreachable("the link to the store is cut")
            result = await target(*args, **kwargs)
            if self.lose_answers.get(name, 0) > 0:
                self.lose_answers[name] -= 1
                raise StoreUnreachable(f"the answer to {name} was lost")
            return result

        return call
