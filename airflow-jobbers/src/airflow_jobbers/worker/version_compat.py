"""Which Airflow this is, decided once (imported only where Airflow is installed)."""

from __future__ import annotations

from packaging.version import Version


def _airflow_base_version() -> Version:
    from airflow import __version__

    return Version(Version(__version__).base_version)


AIRFLOW_VERSION = _airflow_base_version()
#: 3.3 validates workloads with ``ExecutorWorkload`` and runs them with
#: ``BaseExecutor.run_workload``; 3.2 needs ``workloads.All`` and ``supervise``.
AIRFLOW_V_3_3_PLUS = Version("3.3.0") <= AIRFLOW_VERSION
