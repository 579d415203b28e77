"""A real Jobbers Manager (``jobbers manager --tasks airflow_jobbers.runner``) on a spare
loopback port, for the executor's parts that talk to it; no Airflow needed."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from manager_proc import start_manager, stop


@pytest.fixture
def manager_url(tmp_path: Path) -> Iterator[str]:
    proc, url = start_manager(tmp_path / "jobbers.db", tmp_path / "manager.log", 30)
    try:
        yield url
    finally:
        stop(proc)
