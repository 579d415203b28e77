"""Session fixtures: one real Airflow 3.3.2 + Jobbers deployment shared by every e2e test.

Started once (it takes about a minute): PostgreSQL database, ``airflow db migrate``, the API
server, scheduler and dag-processor, a Jobbers Manager and two workers on queue ``default``.
Tests that need more (queue-specific workers, a second scheduler) start and stop their own.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from airflow_harness import Stack, ensure_venv, postgres_database


@pytest.fixture(scope="session")
def stack() -> Iterator[Stack]:
    venv = ensure_venv()
    work = Path(tempfile.mkdtemp(prefix="airflow-jobbers-e2e-"))
    keep = os.environ.get("JOBBERS_E2E_KEEP") == "1"
    with postgres_database() as db_name:
        s = Stack(venv=venv, work=work, db_name=db_name)
        s.markers.mkdir(parents=True, exist_ok=True)
        try:
            migrate = s.run(s.bin("airflow"), "db", "migrate", timeout=300)
            assert migrate.returncode == 0, migrate.stdout[-3000:] + migrate.stderr[-3000:]
            s.start_manager()
            s.start("dag-processor", s.bin("airflow"), "dag-processor")
            s.start_api_server()
            s.start_scheduler()
            s.start_worker("worker-a", "default", concurrency=4, serve_logs=True)
            s.start_worker("worker-b", "default", concurrency=4)
            yield s
        finally:
            if s._api is not None:
                s._api.close()
            if s._jobbers is not None:
                s._jobbers.close()
            s.stop_all()
            left = s.reap_leftovers()
            if left:
                print(f"\ne2e: killed {len(left)} leftover process(es): {left}")
            print(f"\ne2e logs in {work}" if keep else "")
            if not keep:
                shutil.rmtree(work, ignore_errors=True)
