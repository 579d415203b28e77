"""``airflow_jobbers.executor.JobbersExecutor``: the path airflow.cfg files name (kept stable)."""

from airflow_jobbers.scheduler.executor import JobbersExecutor

__all__ = ["JobbersExecutor"]
