"""Decode and run an Airflow workload (worker side; needs Airflow installed)."""

from __future__ import annotations

from functools import cache
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pydantic import TypeAdapter


class InvalidWorkload(ValueError):
    """The input is not an Airflow executor workload. The message never echoes the input."""


class DuplicateDelivery(Exception):
    """The task instance is already running elsewhere (Airflow's TaskAlreadyRunningError)."""


class CallbackFailed(Exception):
    """An executor callback raised (Airflow 3.2, where the executor's event decides its state)."""


@cache
def _adapter() -> TypeAdapter[Any]:
    from pydantic import TypeAdapter

    from airflow_jobbers.worker.version_compat import AIRFLOW_V_3_3_PLUS

    if AIRFLOW_V_3_3_PLUS:
        from airflow.executors.workloads import ExecutorWorkload

        return TypeAdapter(ExecutorWorkload)
    from airflow.executors.workloads import All

    return TypeAdapter(All)


def warm_up() -> None:
    """Build what every workload process would otherwise build again (in the fork server,
    before it forks): the workload validator and the Task Execution API client's TLS context
    (a cached value Airflow's client creates on first use, some milliseconds of CPU each)."""
    import contextlib

    from airflow_jobbers.worker import exitwait, startgate

    exitwait.install()
    startgate.install_marker()
    _adapter()
    with contextlib.suppress(Exception):
        from airflow.sdk.api import client

        client.Client._get_ssl_context_cached(client.API_SSL_CA_FILE_PATH, client.API_SSL_CERT_PATH)


def parse_workload(data: bytes | str | dict[str, Any]) -> Any:
    """Validate ``data`` as an ``ExecuteTask`` or ``ExecuteCallback`` workload.

    Raises InvalidWorkload whose message lists the failing fields but never their values
    (the input holds a bearer token).
    """
    from pydantic import ValidationError

    try:
        if isinstance(data, dict):
            workload = _adapter().validate_python(data)
        else:
            workload = _adapter().validate_json(data)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}"
            for err in exc.errors(include_input=False, include_url=False)[:10]
        )
        raise InvalidWorkload(f"not a valid Airflow workload: {problems}") from None
    kind = getattr(workload, "type", None)
    if kind not in ("ExecuteTask", "ExecuteCallback"):
        raise InvalidWorkload(f"workload type {kind!r} is not run by Jobbers")
    return workload


def run_workload(workload: Any) -> int:
    """Run a validated workload under Airflow's supervisor; return the task process's exit code.

    Raises DuplicateDelivery when the API server says this task instance already runs.
    """
    from airflow.sdk.exceptions import TaskAlreadyRunningError

    from airflow_jobbers.worker import exitwait, startgate
    from airflow_jobbers.worker.version_compat import AIRFLOW_V_3_3_PLUS

    exitwait.install()
    if getattr(workload, "type", None) == "ExecuteTask" and not startgate.install_marker():
        startgate.write_marker()  # cannot tell when it started: free the worker's slot now
    try:
        if AIRFLOW_V_3_3_PLUS:
            from airflow.executors.base_executor import BaseExecutor

            return int(BaseExecutor.run_workload(workload))
        return _run_pre_3_3(workload)
    except TaskAlreadyRunningError as exc:
        raise DuplicateDelivery(str(exc)) from None


def _run_pre_3_3(workload: Any) -> int:  # pragma: no cover - exercised on Airflow 3.2 only
    from airflow.configuration import conf
    from airflow.sdk.execution_time.supervisor import supervise

    if workload.type == "ExecuteCallback":
        return _run_callback_pre_3_3(workload)
    base_url = conf.get("api", "base_url", fallback="/")
    if not base_url or base_url.startswith("/"):
        base_url = f"http://localhost:8080{base_url}"
    server = conf.get(
        "core", "execution_api_server_url", fallback=f"{base_url.rstrip('/')}/execution/"
    )
    return int(
        supervise(
            ti=workload.ti,
            dag_rel_path=workload.dag_rel_path,
            bundle_info=workload.bundle_info,
            token=workload.token,
            server=server,
            log_path=workload.log_path,
        )
    )


def _run_callback_pre_3_3(workload: Any) -> int:  # pragma: no cover - Airflow 3.2 only
    """Airflow 3.2 runs a callback in the executor's own worker, not under a supervisor; the
    scheduler then takes the callback's state from the executor's event."""
    import logging

    from airflow.executors.workloads.callback import (  # type: ignore[attr-defined,unused-ignore]
        execute_callback_workload,
    )

    log = logging.getLogger("airflow_jobbers.callback")
    _import_from_bundle(workload.bundle_info)
    ok, error = execute_callback_workload(workload.callback, log)
    if not ok:
        raise CallbackFailed(error or "the callback failed")
    return 0


def _import_from_bundle(bundle_info: Any) -> None:  # pragma: no cover - Airflow 3.2 only
    """Make a callback defined beside its DAG importable, as 3.3's callback supervisor does."""
    import sys

    if bundle_info is None or not getattr(bundle_info, "name", None):
        return
    from airflow.dag_processing.bundles.manager import DagBundlesManager

    bundle = DagBundlesManager().get_bundle(name=bundle_info.name, version=bundle_info.version)
    bundle.initialize()
    path = str(bundle.path)
    if path not in sys.path:
        sys.path.append(path)
