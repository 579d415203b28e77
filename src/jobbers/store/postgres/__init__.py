"""The PostgreSQL store: see :mod:`jobbers.store.postgres.store`."""

from jobbers.store.postgres.store import PostgresStore

__all__ = ["PostgresStore"]
