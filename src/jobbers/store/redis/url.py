"""A Redis store URL read strictly: every part means one thing or the URL is refused.

redis-py's own URL parser reads ``/abc`` as database 0, ``/0/1`` as database 1 and passes any
unknown query option to the connection as a keyword (a traceback at the first command). Here
every part is checked and the refusal is one line naming the part, with the password masked.

``redis+sentinel://[[user]:password@]host1:26379,host2:26379/service/db`` names Sentinels instead
of a server (the form of redis-py's ``Sentinel(...).master_for(service)``, written as a URL as
Django's and Dramatiq's Sentinel URLs write it): the client asks them for the primary of
``service`` and follows it when they fail it over.
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
OPTIONS = ("prefix", "events_maxlen", "timeout", "wait_replicas")
SENTINEL_OPTIONS = ("sentinel_password",)
TLS_OPTIONS = ("ssl_cert_reqs", "ssl_ca_certs", "ssl_certfile", "ssl_keyfile")
CERT_REQS = ("none", "optional", "required")
SCHEMES = {"redis": False, "rediss": True, "redis+sentinel": False}
SENTINEL = "redis+sentinel"
#: More replicas than this is a typo.
MAX_WAIT_REPLICAS = 16


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
    #: Sentinels (host, port) to ask for the primary of ``service``; empty for one server.
    sentinels: tuple[tuple[str, int], ...] = ()
    service: str = ""
    sentinel_password: str | None = None
    #: Replicas each submission must reach (Redis ``WAIT``) before it is answered; 0: none.
    wait_replicas: int = 0

    @property
    def where(self) -> str:
        if self.sentinels:
            found = ",".join(f"{h}:{p}" for h, p in self.sentinels)
            return f"Redis primary {self.service!r} (Sentinels {found})"
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
        raise _Bad("the scheme must be redis://, rediss:// or redis+sentinel://")
    if parts.scheme == SENTINEL:
        return _sentinel(url)
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
        wait_replicas=_replicas(options.pop("wait_replicas", None)),
        tls_options=options,
    )


def _sentinel(url: str) -> RedisURL:
    """``redis+sentinel://[[user]:password@]h1:p1,h2:p2/service[/db][?options]``."""
    parts = urlsplit(url)
    if parts.fragment or url.endswith("#"):
        raise _Bad("a store URL has no #fragment")
    userinfo, _, hostlist = parts.netloc.rpartition("@")
    user, colon, password = userinfo.partition(":")
    sentinels = tuple(_host_port(item, 26379) for item in hostlist.split(","))
    path = parts.path.removeprefix("/")
    service, _, db = path.partition("/")
    if not service:
        raise _Bad("name the primary's service after the Sentinels: .../mymaster/0")
    options = _options(parts.query, False, SENTINEL_OPTIONS)
    sentinel_password = options.pop("sentinel_password", None)
    return RedisURL(
        host=sentinels[0][0],
        port=sentinels[0][1],
        db=_db(db),
        tls=False,
        username=unquote(user) if user else None,
        password=unquote(password) if colon else None,
        prefix=_prefix(options.pop("prefix", "jobbers")),
        events_maxlen=_count(options.pop("events_maxlen", None)),
        timeout=_seconds(options.pop("timeout", None)),
        sentinels=sentinels,
        service=unquote(service),
        sentinel_password=sentinel_password,
        wait_replicas=_replicas(options.pop("wait_replicas", None)),
    )


def _host_port(item: str, default: int) -> tuple[str, int]:
    """``host``, ``host:port``, ``[v6]`` or ``[v6]:port``."""
    if item.startswith("["):
        host, _, rest = item[1:].partition("]")
        port = rest.removeprefix(":")
    else:
        host, _, port = item.partition(":")
    if not host:
        raise _Bad(f"Sentinel {item!r} names no host (host:26379)")
    if port == "":
        return host, default
    if not (port.isascii() and port.isdigit()) or not 1 <= int(port) <= 65535:
        raise _Bad(f"Sentinel {item!r}: the port must be a number from 1 to 65535")
    return host, int(port)


def _replicas(value: str | None) -> int:
    if value is None:
        return 0
    if not (value.isascii() and value.isdigit()) or int(value) > MAX_WAIT_REPLICAS:
        raise _Bad(f"wait_replicas must be a whole number from 0 to 16, not {value!r}")
    return int(value)


def _options(query: str, tls: bool, more: tuple[str, ...] = ()) -> dict[str, str]:
    known = (OPTIONS + TLS_OPTIONS if tls else OPTIONS) + more
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
