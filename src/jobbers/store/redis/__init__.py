"""The Redis store: Managers and workers on many hosts share one Redis."""

from jobbers.store.redis.store import RedisStore

__all__ = ["RedisStore"]
