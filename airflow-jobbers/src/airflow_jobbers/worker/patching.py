"""Wrapping one method of an Airflow class in the workload process, once per process.

The workload process changes two of the Task SDK's methods (``exitwait``, ``startgate``). Both
must do nothing where this Airflow lacks the method, and nothing more when installed twice.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

Method = Callable[..., Any]


def wrap_method(cls: type, name: str, mark: str, wrap: Callable[[Method], Method]) -> bool:
    """Replace ``cls.name`` with ``wrap(original)``, marked with ``mark`` so that a second call
    changes nothing; False, and nothing changed, where ``cls`` has no such method."""
    original = getattr(cls, name, None)
    if original is None:
        return False
    if getattr(original, mark, False):
        return True
    patched = functools.wraps(original)(wrap(original))
    setattr(patched, mark, True)
    setattr(cls, name, patched)
    return True
