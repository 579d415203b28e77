"""``jobbers submit``, ``status`` and ``cancel``: one task, through the Manager or straight to a
store (``--store``)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Annotated, Any

import typer

from jobbers.cli.options import (
    DirectStoreOpt,
    TokenOpt,
    UrlOpt,
    app,
    fail,
    manager_client,
    open_checked,
    refusal,
)


def _print(data: Any) -> None:
    typer.echo(json.dumps(data, indent=2, sort_keys=False))


def _call(url: str, token: str | None, store_url: str | None, call: Callable[[Any], Any]) -> None:
    """Print the answer of one call, made on a Client (the Manager at ``url``) or, with
    ``store_url``, on an AsyncProducer (awaited): the same method name, the same answer."""
    if store_url is None:
        with manager_client(url, token) as client:
            _print(call(client))
        return

    async def main() -> Any:
        from jobbers.producer import AsyncProducer

        store = await open_checked(store_url)
        try:
            return await call(AsyncProducer(store))
        finally:
            await store.close()

    from jobbers.errors import APIError, JobbersError

    try:
        _print(asyncio.run(main()))
    except APIError as exc:
        raise fail(refusal(exc.status_code, exc.detail)) from None
    except (JobbersError, LookupError) as exc:
        raise fail(str(exc)) from None


def _task_id(task_id: str) -> str:
    """Refuse an id no task can have before it reaches a URL (``.`` would name the list route)."""
    from jobbers.ids import id_problem

    problem = id_problem(task_id)
    if problem is not None:
        raise fail(problem, 2)
    return task_id


def _kwargs(text: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise fail(f"--kwargs is not valid JSON: {exc}", 2) from exc
    if not isinstance(value, dict):
        raise fail("--kwargs must be a JSON object, e.g. '{\"x\": 1}'", 2)
    return value


@app.command()
def submit(
    name: Annotated[str, typer.Argument(help="Task name, e.g. add.")],
    kwargs: Annotated[
        str, typer.Option("--kwargs", help="Keyword arguments as a JSON object.")
    ] = "{}",
    queue: Annotated[str | None, typer.Option("--queue", help="Override the task's queue.")] = None,
    task_id: Annotated[
        str | None, typer.Option("--id", help="Your own id: resubmitting it is a no-op.")
    ] = None,
    url: UrlOpt = "http://127.0.0.1:8000",
    token: TokenOpt = None,
    store: DirectStoreOpt = None,
) -> None:
    """Submit a task and print it as JSON."""
    args = _kwargs(kwargs)
    if task_id is not None:
        _task_id(task_id)
    _call(url, token, store, lambda c: c.submit(name, args, queue=queue, id=task_id))


@app.command()
def status(
    task_id: Annotated[str, typer.Argument(help="The task's id.")],
    url: UrlOpt = "http://127.0.0.1:8000",
    token: TokenOpt = None,
    store: DirectStoreOpt = None,
) -> None:
    """Print a task: status, result or error, attempts."""
    _task_id(task_id)
    _call(url, token, store, lambda c: c.get(task_id))


@app.command()
def cancel(
    task_id: Annotated[str, typer.Argument(help="The task's id.")],
    url: UrlOpt = "http://127.0.0.1:8000",
    token: TokenOpt = None,
    store: DirectStoreOpt = None,
) -> None:
    """Cancel a task: at once if waiting, at its next await if running; print it."""
    _task_id(task_id)
    _call(url, token, store, lambda c: c.cancel(task_id))
