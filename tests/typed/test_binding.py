"""A misspelt or missing argument is named in the caller's TypeError, before anything is sent."""

from __future__ import annotations

from typing import Any

import pytest

from jobbers.registry import TaskSpec, task
from jobbers.submitting import bind_kwargs


@task(name="binding.greet")
def greet(name: str, loud: bool = False) -> str:
    return name.upper() if loud else name


@task(name="binding.open")
def open_ended(name: str, **extra: Any) -> str:
    return name


def _problem(spec: TaskSpec[Any, Any], *args: Any, **kwargs: Any) -> str:
    with pytest.raises(TypeError) as caught:
        bind_kwargs(spec, args, kwargs)
    return str(caught.value)


def test_a_typo_names_the_unknown_keyword_and_the_missing_one() -> None:
    assert _problem(greet, nam="x") == (
        "binding.greet.submit(): unexpected keyword argument 'nam' (did you mean 'name'?);"
        " missing a required argument: 'name'"
    )


def test_an_unknown_keyword_beside_every_required_one() -> None:
    assert _problem(greet, "Ada", size=3) == (
        "binding.greet.submit(): unexpected keyword argument 'size'"
    )


def test_several_unknown_keywords_are_all_named() -> None:
    message = _problem(greet, nam="x", lod=True)
    assert "'nam' (did you mean 'name'?)" in message
    assert "'lod' (did you mean 'loud'?)" in message


def test_missing_and_too_many_keep_the_usual_words() -> None:
    assert _problem(greet) == "binding.greet.submit(): missing a required argument: 'name'"
    assert "too many positional arguments" in _problem(greet, "a", True, 3)


def test_a_task_taking_any_keyword_binds_unknown_ones() -> None:
    assert bind_kwargs(open_ended, (), {"name": "a", "nam": "x"}) == {"name": "a", "nam": "x"}
    assert "missing a required argument: 'name'" in _problem(open_ended, nam="x")


def test_the_submit_method_raises_the_same_before_sending() -> None:
    with pytest.raises(TypeError, match="unexpected keyword argument 'nam'"):
        greet.submit(nam="x")  # type: ignore[call-arg]
