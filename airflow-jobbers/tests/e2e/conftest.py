"""Session fixtures: one real Airflow 3.3.2 + Jobbers deployment per Jobbers store backend.

Each deployment is started once (it takes about a minute): PostgreSQL database, ``airflow db
migrate``, the API server, scheduler and dag-processor, the store's server (Redis only), a
Jobbers Manager and two workers on queue ``default``. Tests that need more (queue-specific
workers, a second scheduler) start and stop their own.

Every test runs on SQLite; tests marked ``redis`` run once more with Jobbers on a private
``redis-server``, and tests marked ``postgres`` once more with the Jobbers store in Airflow's own
metadata database (schema ``jobbers``). Pytest orders the tests by store, so one deployment is
stopped before the next starts. ``JOBBERS_E2E_STORES=redis`` (or ``sqlite,postgres``, ...) runs
only those backends.
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

from airflow_harness import STORES, Stack, ensure_venv, postgres_database


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "redis: runs with Jobbers on Redis as well as on SQLite")
    config.addinivalue_line(
        "markers",
        "postgres: runs with the Jobbers store in Airflow's PostgreSQL database as well",
    )


def _selected_stores() -> set[str]:
    raw = os.environ.get("JOBBERS_E2E_STORES", ",".join(STORES))
    wanted = {name.strip() for name in raw.split(",") if name.strip()}
    if not wanted or wanted - set(STORES):
        raise pytest.UsageError(f"JOBBERS_E2E_STORES={raw!r}: a comma list of {STORES}")
    return wanted


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "stack" not in metafunc.fixturenames:
        return
    marked = [s for s in STORES if s != "sqlite" and metafunc.definition.get_closest_marker(s)]
    stores = ["sqlite", *marked]
    metafunc.parametrize("jobbers_store", stores, indirect=True, scope="session")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    wanted = _selected_stores()
    keep, drop = [], []
    for item in items:
        callspec = getattr(item, "callspec", None)
        store = callspec.params.get("jobbers_store") if callspec else None
        (drop if store is not None and store not in wanted else keep).append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep


@pytest.fixture(scope="session")
def jobbers_store(request: pytest.FixtureRequest) -> str:
    """The Jobbers store backend of the deployment: ``sqlite``, ``redis`` or ``postgres``."""
    return str(request.param)


@pytest.fixture(scope="session")
def stack(jobbers_store: str) -> Iterator[Stack]:
    venv = ensure_venv()
    work = Path(tempfile.mkdtemp(prefix=f"airflow-jobbers-e2e-{jobbers_store}-"))
    keep = os.environ.get("JOBBERS_E2E_KEEP") == "1"
    with postgres_database() as db_name:
        s = Stack(venv=venv, work=work, db_name=db_name, store=jobbers_store)
        s.markers.mkdir(parents=True, exist_ok=True)
        try:
            migrate = s.run(s.bin("airflow"), "db", "migrate", timeout=300)
            assert migrate.returncode == 0, migrate.stdout[-3000:] + migrate.stderr[-3000:]
            s.start_store()
            s.start_manager()
            s.start("dag-processor", s.bin("airflow"), "dag-processor")
            s.start_api_server()
            s.start_scheduler()
            s.start_worker("worker-a", "default", concurrency=4, serve_logs=True)
            # worker-b parses each DAG file once (the opt-in cache): every test then also
            # runs task instances through DAG servers. It starts one task instance at a time
            # (max_starting 1): each start must free the slot when the API server answers.
            cache = {
                "AIRFLOW__JOBBERS__DAG_PARSE_CACHE": "True",
                "AIRFLOW__JOBBERS__MAX_STARTING": "1",
            }
            s.start_worker("worker-b", "default", concurrency=4, env=cache)
            yield s
        finally:
            s.close()
            s.stop_all()
            left = s.reap_leftovers()
            if left:
                print(f"\ne2e: killed {len(left)} leftover process(es): {left}")
            print(f"\ne2e logs in {work}" if keep else "")
            if not keep:
                shutil.rmtree(work, ignore_errors=True)
