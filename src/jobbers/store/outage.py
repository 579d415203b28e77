"""One log line when a process loses its store, one when it is back.

Every loop of a worker (claiming, lease renewal, reporting, maintenance) meets the same outage;
they share one :class:`Outage` per store object, so an outage costs two lines, not one per
retry per loop.
"""

from __future__ import annotations

import logging
import weakref

from jobbers.store.base import Store, StoreUnavailable

log = logging.getLogger("jobbers.store")

_OUTAGES: weakref.WeakKeyDictionary[object, Outage] = weakref.WeakKeyDictionary()


class Outage:
    def __init__(self) -> None:
        self.down_since: StoreUnavailable | None = None

    def down(self, who: str, exc: StoreUnavailable) -> None:
        if self.down_since is None:
            self.down_since = exc
            log.warning("%s: %s; retrying until it is back", who, exc)

    def up(self, who: str) -> None:
        if self.down_since is not None:
            self.down_since = None
            log.warning("%s: the store is reachable again", who)


def outage(store: Store) -> Outage:
    """The outage tracker shared by every user of this store object."""
    found = _OUTAGES.get(store)
    if found is None:
        found = _OUTAGES[store] = Outage()
    return found
