"""The ``[jobbers]`` options, read one way: through Airflow's configuration, which takes
``AIRFLOW__JOBBERS__<NAME>`` environment variables before airflow.cfg.

The scheduler passes its team-aware ``conf``. A worker's options are resolved by
``airflow jobbers worker`` (Airflow's configuration is loaded there anyway) and handed to the
Jobbers worker it becomes as those same environment variables, so the worker's event loop
never imports Airflow's configuration (over a CPU second) to read three values.
"""

from __future__ import annotations

import os
from typing import Any

from airflow_jobbers.provider import OPTIONS, SECTION

#: Options read by workers (the runner and the fork server), not by the scheduler.
WORKER_OPTIONS = (
    "fork_server",
    "fork_server_preload",
    "dag_parse_cache",
    "kill_grace_period",
    "max_starting",
)
_TRUE = ("1", "true", "yes", "on")


def env_name(name: str) -> str:
    """Airflow's environment variable for a ``[jobbers]`` option."""
    return f"AIRFLOW__{SECTION.upper()}__{name.upper()}"


def option(name: str, conf: Any = None) -> str:
    """One option as a string: from ``conf`` (Airflow's, or an executor's team conf) or its
    default. Without ``conf``, its environment variable when set, else Airflow's conf."""
    default = str(OPTIONS[name]["default"])
    if conf is None:
        value = os.environ.get(env_name(name))
        if value is not None:
            return value
        from airflow.configuration import conf as airflow_conf

        conf = airflow_conf
    value = conf.get(SECTION, name, fallback=default)
    return default if value is None else str(value)


def as_bool(value: str) -> bool:
    return value.strip().lower() in _TRUE


def worker_environment(conf: Any = None) -> dict[str, str]:
    """The worker options as environment variables, resolved from Airflow's conf."""
    return {env_name(name): option(name, conf) for name in WORKER_OPTIONS}


def as_max_starting(value: str) -> int:
    """``[jobbers] max_starting`` as a number, or a ValueError that names the option."""
    try:
        limit = int(value.strip())
    except ValueError:
        limit = -1
    if limit < 0:
        raise ValueError(
            f"[jobbers] max_starting must be a whole number, 0 or more (0: no limit), not {value!r}"
        )
    return limit
