"""``--tasks airflow_jobbers.runner``: the task module workers and Managers load (kept stable).

Importing it registers the runner task of :mod:`airflow_jobbers.worker.runner`.
"""

from airflow_jobbers.worker.runner import execute_workload

__all__ = ["execute_workload"]
