"""The embedded SQLite store: one file shared by every process on one host."""

from jobbers.store.sqlite.store import SQLiteStore

__all__ = ["SQLiteStore"]
