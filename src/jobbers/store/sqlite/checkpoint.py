"""WAL checkpoints on a thread of their own, so that a commit never waits for one.

By default the connection that commits past 1,000 WAL pages copies the WAL back into the database
file and fsyncs both, inline, while its caller waits. Here each store wakes a background thread
after a number of commits (or of changed rows) and that thread runs a PASSIVE checkpoint on its own
connection, which never blocks a writer. SQLite's own checkpoint stays as a backstop at a much
larger WAL size, for a writer that outpaces this thread. Durability is unchanged: a commit is in the
WAL when the call returns, whether or not it has been checkpointed yet.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from urllib.parse import quote

#: Wake the checkpointer after this many commits, or this many changed rows, since the last one.
EVERY_COMMITS = 64
EVERY_CHANGES = 2000
#: Least time between two background checkpoints.
MIN_INTERVAL = 0.02
#: WAL pages after which a committing connection checkpoints inline (SQLite's default: 1000).
BACKSTOP_PAGES = 10_000


class Checkpointer:
    def __init__(self, path: str) -> None:
        self._path = path
        self._commits = 0
        self._changes_at = 0
        self._wake = threading.Event()
        self._stopping = False
        self._thread: threading.Thread | None = None

    def committed(self, total_changes: int) -> None:
        """Called after each commit with the connection's ``total_changes``."""
        self._commits += 1
        if self._commits < EVERY_COMMITS and total_changes - self._changes_at < EVERY_CHANGES:
            return
        self._commits = 0
        self._changes_at = total_changes
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._run, name="jobbers-sqlite-checkpoint", daemon=True
            )
            self._thread.start()
        self._wake.set()

    def _run(self) -> None:
        conn: sqlite3.Connection | None = None
        try:
            while True:
                self._wake.wait()
                self._wake.clear()
                if self._stopping:
                    return
                try:
                    if conn is None:
                        conn = _connect(self._path)
                    conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
                except sqlite3.Error:
                    # Best effort: the file may be gone or locked; the backstop still holds.
                    if conn is not None:
                        conn.close()
                    conn = None
                time.sleep(MIN_INTERVAL)
        finally:
            if conn is not None:
                conn.close()

    def close(self) -> None:
        self._stopping = True
        self._wake.set()
        if self._thread is not None:
            self._thread.join(10)
            self._thread = None


def _connect(path: str) -> sqlite3.Connection:
    """Never creates the file: a store whose file was removed must not get an empty one."""
    return sqlite3.connect(
        f"file:{quote(path)}?mode=rw",
        uri=True,
        timeout=0,
        isolation_level=None,
        check_same_thread=False,
    )
