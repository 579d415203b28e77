"""Every malformed or unusable store URL, on every backend, stops every command with one line
naming the fault and exit code 1; a URL is never read as something it does not say."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from jobbers.cli import app
from jobbers.store.redis.url import BadRedisURL, parse

from ..conftest import RedisServer
from .test_bad_store import COMMANDS

runner = CliRunner()

#: URL (``{redis}`` is a live Redis's host:port) -> words its one line must hold.
BAD_URLS = {
    "redis://{redis}/abc": "the path must be a database number such as /0, not '/abc'",
    "redis://{redis}/-1": "the path must be a database number",
    "redis://{redis}/0/1": "the path must be a database number such as /0, not '/0/1'",
    "redis://{redis}/99": "has no database 99",
    "redis://{redis}/12345678901": "database 12345678901 is out of range",
    "redis://{redis}/0?bogus=1": "unknown option 'bogus'",
    "redis://{redis}/0?db=3": "unknown option 'db'",
    "redis://{redis}/0?prefix=a&prefix=b": "option 'prefix' is given twice",
    "redis://{redis}/0?timeout=abc": "timeout must be a number of seconds",
    "redis://{redis}/0?timeout=nan": "timeout must be a number of seconds",
    "redis://{redis}/0?timeout=0": "timeout must be a number of seconds",
    "redis://{redis}/0?events_maxlen=1e3": "events_maxlen must be a whole number",
    "redis://{redis}/0?ssl_cert_reqs=none": "is for rediss:// (TLS) only",
    "rediss://{redis}/0?ssl_cert_reqs=maybe": "ssl_cert_reqs must be one of",
    "redis://{redis}/0#top": "a store URL has no #fragment",
    "redis://:6379/0": "the URL names no host",
    "redis://127.0.0.1:99999/0": "the port must be a number from 1 to 65535",
    "redis://127.0.0.1:port/0": "the port must be a number from 1 to 65535",
    "sqlite:///jobbers.db?mode=ro": "takes no ?options or #fragment",
    "sqlite:///": "name a file",
    "sqlite://jobbers.db": "use sqlite:///relative.db",
    "mysql://127.0.0.1/jobbers": "unsupported store URL",
    "postgresql://127.0.0.1:5432/": "name one database",
    "postgresql://127.0.0.1:5432/a/b": "name one database",
    "postgresql://127.0.0.1:5432/x?bogus=1": "unknown option 'bogus'",
    "postgres://127.0.0.1:5432/x?schema=Bad-Name": "is not a lower-case identifier",
    "postgresql://127.0.0.1:99999/x": "bad store URL",
    "postgresql://127.0.0.1:5432/x#top": "takes no #fragment",
    "redis://{redis}/0?wait_replicas=many": "wait_replicas must be a whole number",
    "redis+sentinel://{redis}/": "name the primary's service after the Sentinels",
    "redis+sentinel://{redis},127.0.0.1:x/mymaster/0": "the port must be a number",
    "redis+sentinel://{redis}/mymaster/zero": "the path must be a database number",
    "redis+sentinel://{redis}/mymaster/0?sentinel_pass=x": "unknown option 'sentinel_pass'",
}


@pytest.mark.parametrize("command", sorted(COMMANDS))
@pytest.mark.parametrize("url", sorted(BAD_URLS))
def test_every_command_refuses_a_bad_store_url_in_one_line(
    command: str, url: str, redis_server: RedisServer
) -> None:
    args = [*COMMANDS[command], "--store", url.format(redis=f"127.0.0.1:{redis_server.port}")]
    result = runner.invoke(app, args)
    assert result.exit_code == 1, result.output
    [line] = result.stderr.strip().splitlines()
    assert line.startswith("jobbers: ")
    assert BAD_URLS[url] in line
    assert "Traceback" not in result.output


def test_a_password_is_never_shown() -> None:
    with pytest.raises(BadRedisURL) as refused:
        parse("redis://user:hunter2@cache:6379/abc")
    assert "hunter2" not in str(refused.value)
    assert "redis://user:***@cache:6379/abc" in str(refused.value)


def test_each_part_of_a_good_url_is_read_as_written() -> None:
    found = parse(
        "rediss://me:p%40ss@cache.internal:6380/7?prefix=prod&events_maxlen=500&timeout=2.5"
        "&ssl_cert_reqs=required&ssl_ca_certs=/etc/ca.pem"
    )
    assert (found.host, found.port, found.db, found.tls) == ("cache.internal", 6380, 7, True)
    assert (found.username, found.password) == ("me", "p@ss")
    assert (found.prefix, found.events_maxlen, found.timeout) == ("prod", 500, 2.5)
    assert found.tls_options == {"ssl_cert_reqs": "required", "ssl_ca_certs": "/etc/ca.pem"}


def test_the_defaults_of_a_bare_url() -> None:
    found = parse("redis://cache")
    assert (found.port, found.db, found.prefix, found.timeout) == (6379, 0, "jobbers", 5.0)
    assert (found.username, found.password, found.tls) == (None, None, False)
    assert parse("redis://cache/").db == 0


def test_a_sentinel_url_names_sentinels_a_service_and_a_database() -> None:
    found = parse(
        "redis+sentinel://:pw@s1:26380,s2,[::1]:26381/primary-a/3?prefix=p&wait_replicas=1"
        "&sentinel_password=sp"
    )
    assert found.sentinels == (("s1", 26380), ("s2", 26379), ("::1", 26381))
    assert (found.service, found.db, found.password) == ("primary-a", 3, "pw")
    assert (found.prefix, found.wait_replicas, found.sentinel_password) == ("p", 1, "sp")
    assert parse("redis+sentinel://s1/m").db == 0
