"""A task's parameters as a JSON Schema, and kwargs checked against it before anything is stored.

Workers register the schema with the task's definition, so a Manager without the task's code still
refuses ``{"nam": "Bob"}`` for ``greet(name: str)`` at submit time instead of letting it fail on
every attempt. Problems name the parameter and the rule it breaks, never the submitted value: a
kwarg may hold a secret.
"""

from __future__ import annotations

import inspect
import json
import typing
import warnings
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import jsonschema_rs
from pydantic import BaseModel, ConfigDict, TypeAdapter, create_model

from jobbers.errors import InvalidKwargs as InvalidKwargs  # where it was first defined

#: The error type of an attempt whose kwargs do not fit the function: never retried, since the
#: same kwargs fail the same way every time.
INVALID_ARGUMENTS = "InvalidArguments"

JSONSchema = dict[str, Any]


@dataclass(frozen=True)
class Problem:
    """One reason kwargs are refused: where (``loc`` below ``kwargs``), what, and a stable type."""

    loc: tuple[str | int, ...]
    msg: str
    type: str


def parameters_schema(
    fn: Callable[..., Any], skip: str | None = None, injected: Collection[str] = ()
) -> JSONSchema:
    """The keyword arguments ``fn`` accepts, as JSON Schema built by pydantic from its signature.

    ``skip`` is the parameter the worker fills in itself (the task context), ``injected`` those
    that providers fill (``Depends``): a submission may not pass any of them. An annotation pydantic
    cannot express in JSON Schema (a class of the application's own, say) accepts any value, as
    does a parameter without annotation; ``**kwargs`` lets unknown names through.
    """
    try:
        hints = typing.get_type_hints(fn)
    except Exception:  # unresolvable forward references: fall back to "any value"
        hints = {}
    fields: dict[str, Any] = {}
    open_ended = False
    for param in inspect.signature(fn).parameters.values():
        if (
            param.name == skip
            or param.name in injected
            or param.kind in (param.VAR_POSITIONAL, param.POSITIONAL_ONLY)
        ):
            continue
        if param.kind is param.VAR_KEYWORD:
            open_ended = True
            continue
        annotation = hints.get(param.name, Any)
        if not _expressible(annotation):
            annotation = Any
        default = ... if param.default is param.empty else param.default
        fields[param.name] = (annotation, default)
    config = ConfigDict(extra="allow" if open_ended else "forbid", arbitrary_types_allowed=True)
    model: type[BaseModel] = create_model("Parameters", __config__=config, **fields)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # defaults that are not JSON are left out of the schema
        schema = model.model_json_schema()
    schema.pop("title", None)
    for prop in schema.get("properties", {}).values():
        prop.pop("title", None)
    return schema


def _expressible(annotation: Any) -> bool:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            TypeAdapter(annotation).json_schema()
    except Exception:
        return False
    return True


@lru_cache(maxsize=1024)
def _cached_signature(fn: Callable[..., Any]) -> inspect.Signature:
    return inspect.signature(fn)


def _signature(fn: Callable[..., Any]) -> inspect.Signature:
    """A task's signature, computed once: inspecting it costs more than running a short task."""
    try:
        return _cached_signature(fn)
    except TypeError:  # an unhashable callable
        return inspect.signature(fn)


def binding_problem(fn: Callable[..., Any], kwargs: Mapping[str, Any]) -> str | None:
    """Why ``fn(**kwargs)`` cannot be called, naming every unexpected and missing parameter."""
    signature = _signature(fn)
    try:
        signature.bind(**kwargs)
    except TypeError as exc:
        params = signature.parameters
        open_ended = any(p.kind is p.VAR_KEYWORD for p in params.values())
        unexpected = [] if open_ended else sorted(set(kwargs) - set(params))
        missing = [
            name
            for name, p in params.items()
            if p.default is p.empty
            and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
            and name not in kwargs
        ]
        parts = [f"unexpected {', '.join(unexpected)}"] if unexpected else []
        parts += [f"missing {', '.join(missing)}"] if missing else []
        return "; ".join(parts) or str(exc)
    return None


@lru_cache(maxsize=1024)
def _validator(schema_text: str) -> Any:
    return jsonschema_rs.validator_for(json.loads(schema_text))


def compiled(schema: Mapping[str, Any]) -> Any:
    """The schema's validator, compiled once per distinct schema. Keep it where the schema is
    kept: finding it again costs an encoding of the schema."""
    return _validator(json.dumps(schema, sort_keys=True, separators=(",", ":")))


def check_kwargs(
    task: str, schema: Mapping[str, Any], kwargs: Mapping[str, Any], validator: Any = None
) -> list[Problem]:
    """Everything wrong with ``kwargs`` for ``task``; empty when they fit. ``validator``: the
    schema's, from :func:`compiled`, when the caller keeps it."""
    if validator is None:
        validator = compiled(schema)
    if validator.is_valid(kwargs):
        return []
    known = ", ".join(sorted(schema.get("properties", {}))) or "no keyword arguments"
    problems = []
    for error in validator.iter_errors(kwargs):
        problems.extend(_describe(task, known, error))
    return problems


def _describe(task: str, known: str, error: Any) -> list[Problem]:
    kind = error.kind
    path = tuple(error.instance_path)
    if isinstance(kind, jsonschema_rs.ValidationErrorKind.AdditionalProperties) and not path:
        return [
            Problem(
                (name,),
                f"unexpected keyword argument {name!r}: task {task!r} takes {known}",
                "unexpected_kwarg",
            )
            for name in kind.unexpected
        ]
    if isinstance(kind, jsonschema_rs.ValidationErrorKind.Required) and not path:
        name = str(kind.property)
        return [Problem((name,), f"missing keyword argument {name!r} of task {task!r}", "missing")]
    if isinstance(kind, jsonschema_rs.ValidationErrorKind.Type):
        rule = "expected " + " or ".join(str(t) for t in kind.types)
    else:
        rule = f"breaks the {error.schema_path[-1]!s} rule of its type"
    where = "".join(f"[{p!r}]" for p in path[1:])
    name = path[0] if path else "kwargs"
    return [Problem(path, f"keyword argument {name!r}{where} of task {task!r}: {rule}", "type")]
