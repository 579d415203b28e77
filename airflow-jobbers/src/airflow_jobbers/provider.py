"""Provider metadata: Airflow discovers the executor, the CLI and the ``[jobbers]`` section here.

This module is imported by every ``airflow`` command, so it imports nothing heavy.
"""

from __future__ import annotations

from typing import Any

from airflow_jobbers import __version__

SECTION = "jobbers"

#: Every ``[jobbers]`` option, with its default. The executor reads them through ``self.conf``
#: with these same defaults as fallbacks, so this table is the one place they are defined.
OPTIONS: dict[str, dict[str, Any]] = {
    "manager_url": {
        "description": "Base URL of the Jobbers Manager API the executor submits to.",
        "type": "string",
        "example": "http://jobbers-manager:8000",
        "default": "http://127.0.0.1:8000",
    },
    "auth_token": {
        "description": "Bearer token for the Manager API (the Manager's JOBBERS_API_TOKEN).",
        "type": "string",
        "example": None,
        "default": "",
        "sensitive": True,
    },
    "default_queue": {
        "description": "Jobbers queue for task instances whose queue is unset or 'default'.",
        "type": "string",
        "example": "airflow",
        "default": "default",
    },
    "request_timeout": {
        "description": "Hard client timeout in seconds of one Manager API call from the scheduler.",
        "type": "float",
        "example": "5.0",
        "default": "5.0",
    },
    "sync_batch_size": {
        "description": "Events read from the change feed per call in sync().",
        "type": "integer",
        "example": "1000",
        "default": "1000",
    },
    "sync_max_pages": {
        "description": "Most change-feed calls made by one sync() (it catches up over heartbeats).",
        "type": "integer",
        "example": "5",
        "default": "5",
    },
    "sync_interval": {
        "description": (
            "Least seconds between two change-feed reads while it is caught up: the scheduler "
            "then gets finished tasks in fewer, larger batches (each costs it a scheduling "
            "pass) and can sleep between them. 0 reads it every heartbeat."
        ),
        "type": "float",
        "example": "1.0",
        "default": "1.0",
    },
    "full_wait": {
        "description": (
            "Longest seconds one sync() waits on the change feed for a job to end while every "
            "executor slot is taken (parallelism reached). Such a scheduler has nothing to "
            "queue and would sleep (scheduler_idle_sleep_time) before seeing a freed slot; "
            "waiting instead hands it each end as it happens. 0 never waits."
        ),
        "type": "float",
        "example": "1.0",
        "default": "1.0",
    },
    "submit_max_retries": {
        "description": (
            "Heartbeats a submission may fail on (Manager unreachable) before the task instance "
            "is failed. 0 keeps retrying until Airflow's task_queued_timeout revokes it."
        ),
        "type": "integer",
        "example": "0",
        "default": "0",
    },
    "reconcile_interval": {
        "description": (
            "Seconds between bulk status checks of every tracked job: a safety net under the "
            "change feed (for example after a change-feed gap). 0 disables it."
        ),
        "type": "float",
        "example": "60",
        "default": "60",
    },
    "fork_server": {
        "description": (
            "Workers run each workload in a fork of a process that imported Airflow's task "
            "machinery once (fast), instead of a fresh Python process (read by workers)."
        ),
        "type": "boolean",
        "example": "True",
        "default": "True",
    },
    "fork_server_preload": {
        "description": "Extra modules the fork server imports once (e.g. your operators).",
        "type": "string",
        "example": "airflow.providers.standard.operators.bash",
        "default": "",
    },
    "dag_parse_cache": {
        "description": (
            "Parse each DAG file version once per worker, in a fork of the fork server that "
            "then forks the task processes of that file, instead of once per task instance. "
            "The file's top-level code then runs once, outside any task: threads it starts "
            "are not in the task processes and connections it opens are shared by them "
            "(read by workers)."
        ),
        "type": "boolean",
        "example": "True",
        "default": "False",
    },
    "kill_grace_period": {
        "description": "Seconds a cancelled workload process gets after SIGTERM before SIGKILL.",
        "type": "float",
        "example": "10",
        "default": "10",
    },
    "max_starting": {
        "description": (
            "Task instances one worker may be starting at once: forked, and waiting for the "
            "API server to answer their start. A burst of starts can stall the API server "
            "(its database connection pool); 0 admits any number (read by workers)."
        ),
        "type": "integer",
        "example": "4",
        "default": "4",
    },
}


def get_provider_info() -> dict[str, Any]:
    """Return the provider description Airflow validates against its provider schema."""
    options: dict[str, dict[str, Any]] = {}
    for name, spec in OPTIONS.items():
        option = {"version_added": "0.1.0", **spec}
        options[name] = option
    return {
        "package-name": "airflow-jobbers",
        "name": "Jobbers",
        "description": "Run Airflow task instances on Jobbers workers (JobbersExecutor).",
        "versions": [__version__],
        "executors": ["airflow_jobbers.executor.JobbersExecutor"],
        "cli": ["airflow_jobbers.cli.get_cli_commands"],
        "config": {
            SECTION: {
                "description": "Settings of the JobbersExecutor and `airflow jobbers` commands.",
                "options": options,
            }
        },
    }
