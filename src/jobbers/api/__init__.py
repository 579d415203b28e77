"""The Manager API (FastAPI). ``create_app(store, token)`` is the one entry point."""

from jobbers.api.app import create_app

__all__ = ["create_app"]
