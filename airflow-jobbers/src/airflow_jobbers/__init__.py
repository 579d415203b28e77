"""Run Apache Airflow task instances on Jobbers.

``airflow_jobbers.executor.JobbersExecutor`` (built in ``scheduler/``) is the executor the
scheduler loads; ``airflow_jobbers.runner`` (built in ``worker/``) is the Jobbers task module
that workers load. Importing this package is cheap: it imports neither Airflow nor Jobbers.
"""

__version__ = "0.1.0"
