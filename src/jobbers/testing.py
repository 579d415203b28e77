"""Helpers for testing code that uses Jobbers: replacing a task's providers.

``override(provider, replacement)`` makes every task that depends on ``provider`` receive what
``replacement`` provides instead, in this process (a worker run in the test, or a worker process
that imports a module calling it). It takes effect at once and, used as a context manager, ends
with the block::

    with jobbers.testing.override(open_session, fake_session):
        ...
"""

from __future__ import annotations

from types import TracebackType

from jobbers.injection import Provider, current_override, set_override


class override:
    """Replace ``provider`` by ``replacement`` until :meth:`undo` (or the end of a ``with``)."""

    def __init__(self, provider: Provider, replacement: Provider) -> None:
        self._provider = provider
        self._previous = current_override(provider)
        set_override(provider, replacement)

    def undo(self) -> None:
        set_override(self._provider, self._previous)

    def __enter__(self) -> override:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.undo()


def clear_overrides() -> None:
    """Remove every override (between tests)."""
    from jobbers.injection import _OVERRIDES

    _OVERRIDES.clear()
