"""Stores: the contract lives in :mod:`jobbers.store.base`; :func:`open_store` picks a backend."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from jobbers.store.base import Store

DEFAULT_STORE_URL = "sqlite:///jobbers.db"


def shown(url: str) -> str:
    """A store URL as it may be printed or logged: a password in it becomes ``***``."""
    from urllib.parse import urlsplit

    try:
        parts = urlsplit(url)
        password = parts.password
    except ValueError:
        return url.split("://", 1)[0] + "://***"
    if password is None:
        return url
    user = parts.username or ""
    host = parts.netloc.rpartition("@")[2]
    return parts._replace(netloc=f"{user}:***@{host}").geturl()


def open_store(url: str, *, inline: bool = False) -> Store:
    """The one place a URL becomes a backend; a bad URL raises ValueError with one line.

    ``inline``: the caller's event loop does nothing but call this store (a blocking producer),
    so a backend that hands calls to a thread may run them on the calling thread instead."""
    if url.startswith("sqlite:///"):
        from jobbers.store.sqlite import SQLiteStore

        path = url.removeprefix("sqlite:///")
        if "?" in path or "#" in path:
            raise ValueError(
                f"bad store URL {url!r}: a sqlite:/// URL is a file path and takes no ?options"
                " or #fragment"
            )
        if not path:
            raise ValueError(f"bad store URL {url!r}: name a file: sqlite:///jobbers.db")
        return SQLiteStore(path, inline=inline)
    if url.startswith("sqlite://"):
        raise ValueError(f"bad store URL {url!r}: use sqlite:///relative.db or sqlite:////abs.db")
    if url.startswith(("redis://", "rediss://", "redis+sentinel://")):
        from jobbers.store.redis import RedisStore

        return RedisStore.from_url(url)
    if url.startswith(("postgresql://", "postgres://")):
        try:
            from jobbers.store.postgres import PostgresStore
        except ImportError as exc:
            raise ValueError(
                f"a PostgreSQL store needs asyncpg ({exc}): pip install 'jobbers[postgres]'"
            ) from None

        return PostgresStore.from_url(url)
    raise ValueError(
        f"unsupported store URL {url!r}: expected sqlite:///path.db, redis://host:port/db,"
        " rediss://host:port/db, redis+sentinel://host:26379,.../service/db or"
        " postgresql://user@host:5432/dbname?schema=jobbers"
    )
