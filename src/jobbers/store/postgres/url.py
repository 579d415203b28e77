"""``postgresql://`` store URLs, checked strictly: an option this backend does not know is an
error, not a server setting sent to PostgreSQL."""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import parse_qsl, urlsplit, urlunsplit

DEFAULT_SCHEMA = "jobbers"
#: Unquoted, lower-case identifiers only: the name goes into DDL, channel names and lock keys.
SCHEMA_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,39}$")
#: Options passed on to the driver as they are.
PASSED = frozenset({"sslmode", "connect_timeout"})


@dataclass(frozen=True)
class PostgresURL:
    #: What the driver connects with (``postgresql://`` and the passed options only).
    dsn: str
    schema: str
    #: host:port/database, for messages (never the password).
    where: str


def parse(url: str) -> PostgresURL:
    """Raise ValueError with one line for anything this backend would not use as written."""
    parts = urlsplit(url)
    if parts.scheme not in ("postgresql", "postgres"):
        raise ValueError(f"bad store URL: expected postgresql://, got {parts.scheme}://")
    if parts.fragment:
        raise ValueError("bad store URL: a postgresql:// URL takes no #fragment")
    database = parts.path.removeprefix("/")
    if not database or "/" in database:
        raise ValueError(
            "bad store URL: name one database: postgresql://user@host:5432/dbname?schema=jobbers"
        )
    schema = DEFAULT_SCHEMA
    passed: list[str] = []
    for key, value in parse_qsl(parts.query, keep_blank_values=True, strict_parsing=False):
        if key == "schema":
            if not SCHEMA_NAME.match(value):
                raise ValueError(
                    f"bad store URL: schema {value[:64]!r} is not a lower-case identifier"
                    " (letters, digits, _; up to 40)"
                )
            schema = value
        elif key in PASSED:
            passed.append(f"{key}={value}")
        else:
            raise ValueError(
                f"bad store URL: unknown option {key[:64]!r} (known: schema, "
                + ", ".join(sorted(PASSED))
                + ")"
            )
    try:
        port = parts.port
    except ValueError as exc:
        raise ValueError(f"bad store URL: {exc}") from None
    host = parts.hostname or "localhost"
    dsn = urlunsplit(("postgresql", parts.netloc, parts.path, "&".join(passed), ""))
    return PostgresURL(dsn, schema, f"PostgreSQL at {host}:{port or 5432}/{database}")
