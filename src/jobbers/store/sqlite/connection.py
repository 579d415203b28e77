"""Opening a SQLite store file and making sure it is one this code can use.

A store file carries its schema version in ``PRAGMA user_version``: a new file gets the current
version with its tables; a file of another version is refused with one line naming both versions
(or migrated, where a step in :data:`MIGRATIONS` exists). Every way a file can be unusable (its
directory missing, not a database, read-only, another schema) becomes a
:class:`~jobbers.store.base.StoreUnavailable` whose message an operator can act on, so that no
process starts, or keeps looping, on a store it cannot use.
"""

from __future__ import annotations

import os
import re
import sqlite3
import time
from collections.abc import Callable, Iterator
from typing import TypeVar

from jobbers.store.base import StoreIncompatible, StoreUnavailable
from jobbers.store.sqlite.counts import DROP_INSERT_TRIGGER
from jobbers.store.sqlite.schema import COUNT_TABLES, MIGRATIONS, SCHEMA, SCHEMA_VERSION

#: Longest pause between two tries for a lock another process holds.
LOCK_RETRY_MAX = 0.0005

T = TypeVar("T")
FileIdentity = tuple[int, int] | None


def _where(path: str) -> str:
    return os.path.abspath(path)


def is_file(path: str) -> bool:
    return path != ":memory:" and not path.startswith("file:")


def identity(path: str) -> FileIdentity:
    """Device and inode of the file: a store whose file was removed or replaced is not ours."""
    if not is_file(path):
        return None
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_dev, st.st_ino)


def unavailable(path: str, exc: BaseException) -> StoreUnavailable:
    """One operator line for a SQLite error that means the file cannot be used."""
    where = _where(path)
    text = str(exc).lower()
    if "readonly" in text or "read-only" in text:
        return StoreUnavailable(
            f"store file {where} is read-only: Jobbers writes to it and beside it"
            " (make the file and its directory writable, or point --store elsewhere)"
        )
    if "not a database" in text or "malformed" in text or "encrypted" in text:
        return StoreUnavailable(
            f"store file {where} is not a Jobbers SQLite store ({exc}): point --store at a"
            " Jobbers store or at a new file"
        )
    if "no such table" in text or "no such column" in text:
        return StoreIncompatible(
            f"store file {where} does not hold the schema this Jobbers expects ({exc});"
            f" it expects schema version {SCHEMA_VERSION}"
        )
    if "unable to open" in text or "disk i/o" in text:
        return StoreUnavailable(
            f"cannot open store file {where} ({exc}): check that it and its directory exist"
            " and are writable"
        )
    if "locked" in text or "busy" in text:
        return StoreUnavailable(f"store file {where} stayed locked by another process ({exc})")
    return StoreUnavailable(f"store file {where} is not usable: {exc}")


def locked(exc: sqlite3.OperationalError) -> bool:
    return getattr(exc, "sqlite_errorcode", None) == sqlite3.SQLITE_BUSY or "locked" in str(exc)


def patiently(call: Callable[[], T], patience: float) -> T:
    """``call()``, tried again every few hundred microseconds (at most :data:`LOCK_RETRY_MAX`)
    while another process holds the lock, for up to ``patience`` seconds.

    Store connections run with SQLite's own busy handler off: it sleeps 1, 2, 5, 10, 15, 20, 25,
    25, 25, 50, 50, then 100 ms between tries, so a writer that met the lock a few times in a row
    sleeps through the short gaps between another process's transactions (a prune's batches, a
    busy worker's claims) and waits far longer than the lock was held.
    """
    try:
        return call()
    except sqlite3.OperationalError as exc:
        if not locked(exc):
            raise
    deadline = time.monotonic() + patience
    pause = 0.0001
    while True:
        time.sleep(pause)
        pause = min(pause * 2, LOCK_RETRY_MAX)
        try:
            return call()
        except sqlite3.OperationalError as exc:
            if not locked(exc) or time.monotonic() >= deadline:
                raise


def _precheck(path: str) -> None:
    """Say plainly what SQLite would report as "unable to open database file"."""
    if not is_file(path):
        return
    where = _where(path)
    directory = os.path.dirname(where)
    if not os.path.isdir(directory):
        raise StoreUnavailable(
            f"store directory {directory} does not exist: create it or fix --store"
            f" (store file {where})"
        )
    if os.path.isdir(where):
        raise StoreUnavailable(f"store path {where} is a directory, not a SQLite file")
    if os.path.exists(where) and not os.access(where, os.R_OK | os.W_OK):
        raise unavailable(path, sqlite3.OperationalError("readonly database"))
    if not os.access(directory, os.W_OK | os.X_OK):
        raise StoreUnavailable(
            f"store directory {directory} is read-only: SQLite keeps its journal beside"
            f" {os.path.basename(where)} (make the directory writable)"
        )


def connect(path: str, busy_timeout: float) -> sqlite3.Connection:
    """Connect, switch to WAL and create or check the schema, retrying while another process does.

    Switching a new file to WAL takes an exclusive lock and SQLite answers "database is locked" at
    once, without its busy handler, when two processes open a new file together.
    """
    _precheck(path)
    deadline = time.monotonic() + busy_timeout
    while True:
        try:
            conn = sqlite3.connect(
                path, timeout=busy_timeout, isolation_level=None, check_same_thread=False
            )
        except sqlite3.Error as exc:
            raise unavailable(path, exc) from None
        try:
            conn.row_factory = sqlite3.Row
            if conn.execute("PRAGMA journal_mode").fetchone()[0].lower() != "wal":
                conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute(f"PRAGMA busy_timeout={int(busy_timeout * 1000)}")
            conn.execute("BEGIN IMMEDIATE")
            try:
                _prepare(conn, path)
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")
            return conn
        except sqlite3.OperationalError as exc:
            conn.close()
            if "locked" in str(exc) and time.monotonic() < deadline:
                time.sleep(0.01)
                continue
            raise unavailable(path, exc) from None
        except sqlite3.DatabaseError as exc:
            conn.close()
            raise unavailable(path, exc) from None
        except BaseException:
            conn.close()
            raise


def _columns(conn: sqlite3.Connection) -> dict[str, set[str]]:
    tables = [
        row[0]
        for row in conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
        )
    ]
    return {t: {row[1] for row in conn.execute(f'PRAGMA table_info("{t}")')} for t in tables}


def _expected_columns() -> dict[str, set[str]]:
    scratch = sqlite3.connect(":memory:")
    try:
        scratch.executescript(SCHEMA)
        return _columns(scratch)
    finally:
        scratch.close()


def _statements(script: str) -> Iterator[str]:
    """A script's statements, one by one, inside the caller's transaction (executescript would
    commit it); a trigger's body keeps its own semicolons."""
    pending = ""
    for part in script.split(";"):
        pending += part + ";"
        if sqlite3.complete_statement(pending):
            if pending.strip(" \n;"):
                yield pending
            pending = ""


def _create(conn: sqlite3.Connection) -> None:
    # An unversioned file may carry version 2's insert trigger, which would count inserts twice.
    for statement in _statements(SCHEMA + DROP_INSERT_TRIGGER):
        conn.execute(statement)
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")


def _prepare(conn: sqlite3.Connection, path: str) -> None:
    """Inside the opening transaction: create a new file's schema, accept the current one,
    migrate an older one where a step exists, refuse anything else."""
    found = int(conn.execute("PRAGMA user_version").fetchone()[0])
    if found == SCHEMA_VERSION:
        return
    where = _where(path)
    if found == 0:
        present = _columns(conn)
        if not present:
            _create(conn)
            return
        expected = _expected_columns()
        missing: list[str] = []
        for table, columns in sorted(expected.items()):
            if table not in present:
                missing.append(table)
            else:
                missing.extend(f"{table}.{c}" for c in sorted(columns - present[table]))
        if missing and set(missing) <= COUNT_TABLES:
            found = 1  # written before versions, with the version 1 tables: migrate below
        elif missing:
            shown = ", ".join(missing[:5])
            raise StoreIncompatible(
                f"store file {where} holds an older or foreign schema without a version"
                f" (missing {shown}); this Jobbers expects schema version {SCHEMA_VERSION}:"
                " point --store at a new file"
            )
        else:
            _create(conn)  # the unversioned schema is the current one: only the stamp is new
            return
    while found < SCHEMA_VERSION and found in MIGRATIONS:
        _migrate(conn, MIGRATIONS[found])
        found += 1
        conn.execute(f"PRAGMA user_version = {found}")
    if found != SCHEMA_VERSION:
        raise StoreIncompatible(mismatch(where, found))


#: ``ALTER TABLE t ADD COLUMN c ...``: run only when ``t`` lacks ``c``, so every step may run
#: again (SQLite has no ``ADD COLUMN IF NOT EXISTS``).
_ADD_COLUMN = re.compile(r"^\s*ALTER\s+TABLE\s+(\w+)\s+ADD\s+COLUMN\s+(\w+)", re.IGNORECASE)


def _migrate(conn: sqlite3.Connection, script: str) -> None:
    for statement in _statements(script):
        added = _ADD_COLUMN.match(statement)
        if added is not None:
            table, column = added.groups()
            have = {r[1] for r in conn.execute(f"PRAGMA table_info({table})")}
            if column in have:
                continue
        conn.execute(statement)


def mismatch(where: str, found: int) -> str:
    newer = "a newer" if found > SCHEMA_VERSION else "an older"
    return (
        f"store file {where} has schema version {found}, this Jobbers expects {SCHEMA_VERSION}"
        f" (it was written by {newer} Jobbers): run that version, or point --store at a new file"
    )


def verify(conn: sqlite3.Connection, path: str, opened: FileIdentity) -> None:
    """The store still answers, from the file it opened, with the schema this code expects."""
    if is_file(path) and identity(path) != opened:
        raise StoreUnavailable(
            f"store file {_where(path)} was removed or replaced while this process had it open"
        )
    try:
        found = int(conn.execute("PRAGMA user_version").fetchone()[0])
        conn.execute("SELECT 1 FROM tasks LIMIT 1").fetchall()
    except sqlite3.Error as exc:
        raise unavailable(path, exc) from None
    if found != SCHEMA_VERSION:
        raise StoreIncompatible(mismatch(_where(path), found))
