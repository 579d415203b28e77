"""Opening a SQLite store: each unusable file is one StoreUnavailable line, a good one opens."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from jobbers.store.base import StoreIncompatible, StoreUnavailable
from jobbers.store.sqlite import SQLiteStore
from jobbers.store.sqlite_open import SCHEMA_VERSION
from jobbers.store.sqlite_steps import SCHEMA
from tests.cli.bad_stores import BAD_STORES

pytestmark = pytest.mark.anyio


@pytest.mark.parametrize("bad", sorted(BAD_STORES))
async def test_check_refuses_each_bad_store_with_one_line(bad: str, tmp_path: Path) -> None:
    make, words = BAD_STORES[bad]
    store = SQLiteStore(str(make(tmp_path)))
    try:
        with pytest.raises(StoreUnavailable) as raised:
            await store.check()
        assert words in str(raised.value)
        assert "\n" not in str(raised.value)
        # Any later call says the same instead of failing some other way.
        with pytest.raises(StoreUnavailable):
            await store.statuses(["x"])
    finally:
        await store.close()


@pytest.mark.parametrize("bad", ["older schema", "newer schema"])
async def test_another_schema_is_incompatible_not_a_passing_outage(
    bad: str, tmp_path: Path
) -> None:
    make, _ = BAD_STORES[bad]
    store = SQLiteStore(str(make(tmp_path)))
    try:
        with pytest.raises(StoreIncompatible):
            await store.check()
    finally:
        await store.close()


async def test_a_new_file_gets_the_schema_version(tmp_path: Path) -> None:
    path = tmp_path / "fresh.db"
    store = SQLiteStore(str(path))
    try:
        await store.check()
    finally:
        await store.close()
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    conn.close()


async def test_an_unversioned_file_with_the_current_schema_is_stamped_and_kept(
    tmp_path: Path,
) -> None:
    """Files written before the schema carried a version hold the current tables: keep them."""
    path = tmp_path / "unversioned.db"
    conn = sqlite3.connect(path)
    conn.executescript(SCHEMA)
    conn.execute("INSERT INTO queues (name) VALUES ('kept')")
    conn.commit()
    conn.close()
    store = SQLiteStore(str(path))
    try:
        await store.check()
        assert [s.config.name for s in await store.queue_stats()] == ["kept"]
    finally:
        await store.close()
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    conn.close()


async def test_check_fails_once_the_file_is_removed(tmp_path: Path) -> None:
    path = tmp_path / "gone.db"
    store = SQLiteStore(str(path))
    try:
        await store.check()
        path.unlink()
        with pytest.raises(StoreUnavailable, match="removed or replaced"):
            await store.check()
    finally:
        await store.close()


async def test_a_schema_changed_under_an_open_store_is_incompatible(tmp_path: Path) -> None:
    path = tmp_path / "changed.db"
    store = SQLiteStore(str(path))
    try:
        await store.check()
        other = sqlite3.connect(path)
        other.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
        other.close()
        with pytest.raises(StoreIncompatible, match=f"schema version {SCHEMA_VERSION + 1}"):
            await store.check()
    finally:
        await store.close()
