"""Parameters a task receives from providers instead of from its submission: ``Depends(provider)``.

A submission carries JSON; a database session, a client or a configured object cannot travel in
it. A task declares such a parameter with a provider as its default,
``def load(key: str, db: Session = Depends(open_session))``, and the worker calls the provider for
each attempt. Injected parameters are left out of the task's parameter schema, so a submission
that passes them is refused and one that omits them is not.

A provider is a function (sync or async) or a generator (sync or async) that yields once: what it
yields is injected, and the code after the ``yield`` runs after the task has ended, also when it
failed, timed out or was cancelled, in the reverse order of setup (the exception is thrown into the
generator, as with :func:`contextlib.contextmanager`). Providers may themselves take
``Depends(...)`` parameters. Within one attempt each provider runs once, however many parameters
ask for it. Sync providers run in a thread, like sync task bodies, so they may block.
:func:`jobbers.testing.override` swaps a provider for another in this process.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import inspect
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import Any

#: A provider: a function or generator function, sync or async, whose parameters may be
#: ``Depends(...)`` themselves.
Provider = Callable[..., Any]

#: Replacements installed by :func:`jobbers.testing.override`, by the provider they replace.
_OVERRIDES: dict[Provider, Provider] = {}


@dataclass(frozen=True, eq=False)
class Dependency:
    """The marker ``Depends(provider)`` returns; a parameter whose default is one is injected."""

    provider: Provider

    def __repr__(self) -> str:
        return f"Depends({getattr(self.provider, '__qualname__', self.provider)!r})"


def Depends(provider: Provider) -> Any:
    """Declare a task parameter filled by ``provider`` for each attempt (see the module's notes).

    Typed ``Any`` so that ``db: Session = Depends(open_session)`` type-checks."""
    if not callable(provider):
        raise TypeError(f"Depends() takes a callable provider, not {provider!r}")
    return Dependency(provider)


def injected_params(fn: Callable[..., Any]) -> dict[str, Dependency]:
    """The parameters of ``fn`` that a provider fills, by name (read once per function: a
    signature costs more than a small provider)."""
    try:
        return dict(_injected(fn))
    except TypeError:  # an unhashable callable
        return dict(_injected.__wrapped__(fn))


@functools.lru_cache(maxsize=1024)
def _injected(fn: Callable[..., Any]) -> tuple[tuple[str, Dependency], ...]:
    return tuple(
        (name, p.default)
        for name, p in inspect.signature(fn).parameters.items()
        if isinstance(p.default, Dependency)
    )


def set_override(provider: Provider, replacement: Provider | None) -> None:
    """Install (or with None remove) the replacement of ``provider`` in this process."""
    if replacement is None:
        _OVERRIDES.pop(provider, None)
    else:
        _OVERRIDES[provider] = replacement


def current_override(provider: Provider) -> Provider | None:
    return _OVERRIDES.get(provider)


class Resolver:
    """The providers of one attempt: each called once, torn down by :meth:`aclose`."""

    def __init__(self) -> None:
        self._stack = contextlib.AsyncExitStack()
        self._values: dict[Provider, Any] = {}

    async def resolve(self, params: Mapping[str, Dependency]) -> dict[str, Any]:
        """The value of each injected parameter, set up in declaration order."""
        return {name: await self._value(dep.provider, ()) for name, dep in params.items()}

    async def _value(self, provider: Provider, chain: tuple[Provider, ...]) -> Any:
        if provider in self._values:
            return self._values[provider]
        if provider in chain:
            raise TypeError(f"providers depend on each other in a circle: {provider!r}")
        fn = _OVERRIDES.get(provider, provider)
        kwargs = {
            name: await self._value(dep.provider, (*chain, provider))
            for name, dep in injected_params(fn).items()
        }
        value = await self._call(fn, kwargs)
        self._values[provider] = value
        return value

    async def _call(self, fn: Provider, kwargs: dict[str, Any]) -> Any:
        if inspect.isasyncgenfunction(fn):
            return await self._stack.enter_async_context(
                contextlib.asynccontextmanager(fn)(**kwargs)
            )
        if inspect.isgeneratorfunction(fn):
            manager = contextlib.contextmanager(fn)(**kwargs)
            value = await asyncio.to_thread(manager.__enter__)
            self._stack.push_async_exit(_ThreadedExit(manager))
            return value
        if inspect.iscoroutinefunction(fn):
            return await fn(**kwargs)
        return await asyncio.to_thread(fn, **kwargs)

    async def aclose(
        self,
        exc_type: type[BaseException] | None = None,
        exc: BaseException | None = None,
        tb: TracebackType | None = None,
    ) -> None:
        """Run every teardown, newest first; ``exc`` is thrown into generators that yielded."""
        await self._stack.__aexit__(exc_type, exc, tb)


class _ThreadedExit:
    """A sync generator's teardown, run in a thread like its setup."""

    def __init__(self, manager: contextlib.AbstractContextManager[Any]) -> None:
        self._manager = manager

    async def __call__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool | None:
        return await asyncio.to_thread(self._manager.__exit__, exc_type, exc, tb)
