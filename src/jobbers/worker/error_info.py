"""An exception a task body raised, as the :class:`ErrorInfo` the store keeps."""

from __future__ import annotations

import traceback

from jobbers.models import ErrorInfo
from jobbers.registry import error_base_names, error_type_name

#: Tracebacks beyond this are cut from the front: the innermost frames say what broke.
MAX_TRACEBACK = 16_000


def error_info(exc: BaseException) -> ErrorInfo:
    try:
        message = str(exc)
    except Exception:  # a broken __str__ must not lose the report
        message = f"<unprintable {type(exc).__name__}>"
    return ErrorInfo(error_type_name(exc), message, traceback_of(exc), error_base_names(exc))


def traceback_of(exc: BaseException) -> str:
    text = "".join(traceback.format_exception(exc))
    return text if len(text) <= MAX_TRACEBACK else "..." + text[-MAX_TRACEBACK:]
