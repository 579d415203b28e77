"""Store files a process must refuse at start-up, each with the words its one line must hold."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from jobbers.store.sqlite.schema import SCHEMA, SCHEMA_VERSION


def missing_directory(tmp: Path) -> Path:
    return tmp / "no" / "such" / "dir" / "jobbers.db"


def not_a_database(tmp: Path) -> Path:
    path = tmp / "notes.db"
    path.write_bytes(b"these are my notes, not a database\n" * 200)
    return path


def older_schema(tmp: Path) -> Path:
    """An unversioned file whose tasks table lacks columns: what an older Jobbers left behind."""
    path = tmp / "old.db"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE tasks (id TEXT PRIMARY KEY, name TEXT, status TEXT)")
    conn.commit()
    conn.close()
    return path


def newer_schema(tmp: Path) -> Path:
    path = tmp / "new.db"
    conn = sqlite3.connect(path)
    conn.executescript(SCHEMA)
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    conn.commit()
    conn.close()
    return path


BAD_STORES: dict[str, tuple[Callable[[Path], Path], str]] = {
    "missing directory": (missing_directory, "does not exist"),
    "not a database": (not_a_database, "is not a Jobbers SQLite store"),
    "older schema": (older_schema, f"expects schema version {SCHEMA_VERSION}"),
    "newer schema": (
        newer_schema,
        f"has schema version {SCHEMA_VERSION + 1}, this Jobbers expects {SCHEMA_VERSION}",
    ),
}


def read_only_store(tmp: Path) -> Path:
    """A valid store file that the user running Jobbers may read but not write; ``tmp`` must be
    open to every user (see :func:`unprivileged`)."""
    path = tmp / "readonly.db"
    conn = sqlite3.connect(path)
    conn.executescript(SCHEMA)
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
    conn.commit()
    conn.close()
    path.chmod(0o444)
    return path


def unprivileged(command: list[str]) -> list[str]:
    """Root writes any file whatever its mode: run as ``nobody`` to meet a read-only file."""
    if os.geteuid() != 0:
        return command
    return ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", *command]


def run_jobbers(
    *args: str, cwd: Path, as_nobody: bool = False, timeout: float = 30.0
) -> subprocess.CompletedProcess[str]:
    """Run ``python -m jobbers`` to its end; ``as_nobody`` drops root (see :func:`unprivileged`)."""
    command = [sys.executable, "-m", "jobbers", *args]
    return subprocess.run(
        unprivileged(command) if as_nobody else command,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
