"""The Manager's HTTP API (FastAPI): routes, error answers and the submission fast path.
:func:`jobbers.manager.create_app` assembles it with the dashboard."""

from jobbers.api.app import create_api
from jobbers.api.fast_submit import FastSubmit

__all__ = ["FastSubmit", "create_api"]
