"""A Redis store URL read strictly: every part means one thing or the URL is refused.

redis-py's own URL parser reads ``/abc`` as database 0, ``/0/1`` as database 1 and passes any
unknown query option to the connection as a keyword (a traceback at the first command). Here
every part is checked and the refusal is one line naming the part, with the password masked.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from urllib.parse import parse_qsl, unquote, urlsplit

#: The change feed keeps about this many events (XADD MAXLEN ~).
DEFAULT_EVENTS_MAXLEN = 100_000
DEFAULT_TIMEOUT = 5.0
#: Longest ``timeout`` accepted: past an hour it is a typo, not a setting.
MAX_TIMEOUT = 3600.0
#: ``?option`` names this store reads; the TLS ones only with ``rediss://``.
OPTIONS = ("prefix", "events_maxlen", "timeout")
TLS_OPTIONS = ("ssl_cert_reqs", "ssl_ca_certs", "ssl_certfile", "ssl_keyfile")
CERT_REQS = ("none", "optional", "required")
SCHEMES = {"redis": False, "rediss": True}


class BadRedisURL(ValueError):
    """One line: ``bad store URL <url, password masked>: <what is wrong>``."""

    def __init__(self, shown: str, why: str) -> None:
        super().__init__(f"bad store URL {shown}: {why}")


@dataclass(frozen=True)
class RedisURL:
    host: str
    port: int
    db: int
    tls: bool
    username: str | None
    password: str | None
    prefix: str
    events_maxlen: int
    #: Seconds any one store call may take, connecting included, before it fails as unavailable.
    timeout: float
    tls_options: dict[str, str] = field(default_factory=dict)

    @property
    def where(self) -> str:
        return f"Redis at {self.host}:{self.port}"


def masked(url: str) -> str:
    """The URL as it may be shown: a password in it becomes ``***``."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    user = parts.username or ""
    host = parts.netloc.rpartition("@")[2]
    return parts._replace(netloc=f"{user}:***@{host}").geturl()


class _Bad(Exception):
    """What is wrong with one part; :func:`parse` adds the URL."""


def parse(url: str) -> RedisURL:
    """Read ``redis[s]://[[user]:password@]host[:port][/db][?option=value&...]``."""
    try:
        return _parse(url)
    except _Bad as exc:
        raise BadRedisURL(masked(url), str(exc)) from None


def _parse(url: str) -> RedisURL:
    parts = urlsplit(url)
    if parts.scheme not in SCHEMES:
        raise _Bad("the scheme must be redis:// or rediss://")
    if parts.fragment or url.endswith("#"):
        raise _Bad("a store URL has no #fragment")
    try:
        port = parts.port or 6379
    except ValueError:
        raise _Bad("the port must be a number from 1 to 65535") from None
    if not parts.hostname:
        raise _Bad("the URL names no host (redis://localhost:6379/0 for this machine)")
    tls = SCHEMES[parts.scheme]
    options = _options(parts.query, tls)
    return RedisURL(
        host=parts.hostname,
        port=port,
        db=_db(parts.path),
        tls=tls,
        username=unquote(parts.username) if parts.username else None,
        password=unquote(parts.password) if parts.password is not None else None,
        prefix=_prefix(options.pop("prefix", "jobbers")),
        events_maxlen=_count(options.pop("events_maxlen", None)),
        timeout=_seconds(options.pop("timeout", None)),
        tls_options=options,
    )


def _options(query: str, tls: bool) -> dict[str, str]:
    known = OPTIONS + TLS_OPTIONS if tls else OPTIONS
    found: dict[str, str] = {}
    for key, value in parse_qsl(query, keep_blank_values=True):
        if key in TLS_OPTIONS and not tls:
            raise _Bad(f"option {key!r} is for rediss:// (TLS) only")
        if key not in known:
            raise _Bad(f"unknown option {key!r} (known: {', '.join(known)})")
        if key in found:
            raise _Bad(f"option {key!r} is given twice")
        found[key] = value
    if "ssl_cert_reqs" in found and found["ssl_cert_reqs"] not in CERT_REQS:
        raise _Bad(f"ssl_cert_reqs must be one of {', '.join(CERT_REQS)}")
    return found


def _db(path: str) -> int:
    number = path.removeprefix("/")
    if number == "":
        return 0
    if not (number.isascii() and number.isdigit()):
        raise _Bad(f"the path must be a database number such as /0, not {path!r}")
    if len(number) > 9:
        raise _Bad(f"database {number} is out of range")
    return int(number)


def _prefix(value: str) -> str:
    if not value or any(c in value for c in "{}: ") or not value.isprintable():
        raise _Bad(f"prefix {value!r} must be non-empty, printable, without {{}}: or spaces")
    return value


def _count(value: str | None) -> int:
    if value is None:
        return DEFAULT_EVENTS_MAXLEN
    if not (value.isascii() and value.isdigit()) or not 1 <= int(value) <= 10**9:
        raise _Bad(f"events_maxlen must be a whole number from 1 to 1000000000, not {value!r}")
    return int(value)


def _seconds(value: str | None) -> float:
    if value is None:
        return DEFAULT_TIMEOUT
    try:
        seconds = float(value)
    except ValueError:
        seconds = math.nan
    if not (math.isfinite(seconds) and 0 < seconds <= MAX_TIMEOUT):
        raise _Bad(f"timeout must be a number of seconds above 0, at most 3600, not {value!r}")
    return seconds
