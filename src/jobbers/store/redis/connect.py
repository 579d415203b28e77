"""The two Redis clients a store talks through, built from a parsed URL: one for calls that may
safely run twice, tried once more when Redis closed the connection before answering (it
restarted while the connection sat in the pool), and one for calls that must not run twice
(a claim, an outcome, a cancel), never sent again. With Sentinels both follow the primary."""

from __future__ import annotations

from typing import Any

import redis.asyncio as aioredis
import redis.exceptions as rexc
from redis.asyncio.retry import Retry
from redis.asyncio.sentinel import Sentinel
from redis.backoff import NoBackoff

from jobbers.store.redis.url import RedisURL


def clients(found: RedisURL) -> tuple[aioredis.Redis, aioredis.Redis]:
    """``(retrying, once)``."""
    options: dict[str, Any] = {
        "db": found.db,
        "username": found.username,
        "password": found.password,
        "decode_responses": True,
        "socket_connect_timeout": found.timeout,
        # An answer that does not come within the timeout fails the call (the Manager answers
        # 503) rather than hanging it for as long as Redis stalls.
        "socket_timeout": found.timeout,
        "health_check_interval": 30,
    }
    retrying = Retry(NoBackoff(), 1, supported_errors=(rexc.ConnectionError,))
    once = Retry(NoBackoff(), 0)
    if found.sentinels:
        sentinel = Sentinel(
            found.sentinels,
            sentinel_kwargs={
                "password": found.sentinel_password,
                "socket_connect_timeout": found.timeout,
                "socket_timeout": found.timeout,
            },
        )
        return (
            sentinel.master_for(found.service, **options, retry=retrying),
            sentinel.master_for(found.service, **options, retry=once),
        )
    options.update(host=found.host, port=found.port)
    if found.tls:
        options.update(ssl=True, **found.tls_options)
    return aioredis.Redis(**options, retry=retrying), aioredis.Redis(**options, retry=once)
