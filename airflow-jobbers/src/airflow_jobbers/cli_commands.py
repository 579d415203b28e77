"""Implementations of ``airflow jobbers worker|manager|status`` (imported only when run)."""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from typing import Any

from airflow_jobbers import config, protocol
from airflow_jobbers.worker.childproc import die_with_parent

RUNNER_MODULE = "airflow_jobbers.runner"


def _conf(name: str) -> str:
    from airflow.configuration import conf

    return config.option(name, conf)


def _start_log_server() -> subprocess.Popen[bytes]:
    """Airflow's log server, as ``airflow celery worker`` runs it: the API server reads a
    running task's log from ``http://<ti.hostname>:[logging] worker_log_server_port``."""
    code = "from airflow.utils.serve_logs.core import serve_logs; serve_logs()"
    return subprocess.Popen([sys.executable, "-c", code], preexec_fn=die_with_parent)


def worker(args: argparse.Namespace) -> None:
    """Replace this process with a Jobbers worker that has the Airflow runner loaded.

    The worker keeps this PID (exec), so a process supervisor sees one process; the log
    server child dies with it. The worker's ``[jobbers]`` options are resolved here, through
    Airflow's configuration, and reach the worker as ``AIRFLOW__JOBBERS__*`` variables.
    """
    from airflow.configuration import conf

    options = config.worker_environment(conf)
    try:
        config.as_max_starting(options[config.env_name("max_starting")])
    except ValueError as exc:
        raise SystemExit(f"airflow jobbers worker: {exc}") from None
    os.environ.update(options)
    queues = args.queues or _conf("default_queue")
    if not args.skip_serve_logs:
        _start_log_server()
    command = [
        sys.executable,
        "-m",
        "jobbers",
        "worker",
        "--tasks",
        RUNNER_MODULE,
        "--queues",
        queues,
        "--concurrency",
        str(args.concurrency),
        "--lease",
        str(args.lease),
    ]
    if args.store:
        command += ["--store", args.store]
    sys.stdout.flush()
    sys.stderr.flush()
    os.execv(command[0], command)


def manager(args: argparse.Namespace) -> None:
    """Serve the Jobbers Manager API with the Airflow runner task registered."""
    import asyncio

    asyncio.run(
        _serve_manager(args.host, args.port, args.store or os.environ.get("JOBBERS_STORE_URL"))
    )


async def _serve_manager(host: str, port: int, store_url: str | None) -> None:
    import uvicorn
    from jobbers.manager import create_app
    from jobbers.registry import load_modules
    from jobbers.store import DEFAULT_STORE_URL, open_store

    load_modules([RUNNER_MODULE])
    store = open_store(store_url or DEFAULT_STORE_URL)
    try:
        app = create_app(store, token=os.environ.get("JOBBERS_API_TOKEN") or None)
        config = uvicorn.Config(app, host=host, port=port, log_level="info")
        await uvicorn.Server(config).serve()
    finally:
        await store.close()


def collect_status() -> dict[str, Any]:
    """The executor's view of Jobbers: Manager health, workers and Airflow jobs per status."""
    from jobbers import Client

    url = _conf("manager_url")
    report: dict[str, Any] = {"manager_url": url, "task": protocol.TASK_NAME}
    client = Client(
        url=url, token=_conf("auth_token") or None, timeout=float(_conf("request_timeout"))
    )
    try:
        try:
            report["health"] = client.healthz()
        except Exception as exc:
            report["health"] = {"status": "unreachable", "error": f"{type(exc).__name__}: {exc}"}
            return report
        jobs: dict[str, int | str] = {}
        for status in ("submitted", "scheduled", "started", "stalled"):
            try:
                page = client.list_tasks(status=status, name=protocol.TASK_NAME, limit=1000)
                count = len(page.get("tasks") or [])
                jobs[status] = f"{count}+" if page.get("cursor") else count
            except Exception as exc:
                jobs[status] = f"error: {type(exc).__name__}"
        report["jobs"] = jobs
        try:
            report["workers"] = client.workers()
        except Exception as exc:
            report["workers"] = f"error: {type(exc).__name__}"
    finally:
        client.close()
    return report


def status(args: argparse.Namespace) -> None:
    """Print ``collect_status()``; exit 1 when the Manager is unreachable."""
    report = collect_status()
    if args.output == "json":
        print(json.dumps(report, indent=2, default=str))
    else:
        health = report.get("health", {})
        print(f"Manager   {report['manager_url']}  {health.get('status', '?')}")
        if "error" in health:
            print(f"          {health['error']}")
        for name, count in (report.get("jobs") or {}).items():
            print(f"{name:<10}{count}")
        workers = report.get("workers")
        if isinstance(workers, list):
            print(f"workers   {len(workers)}")
            for item in workers:
                queues = ",".join(item.get("queues") or [])
                busy = f"{item.get('running')}/{item.get('slots')}"
                print(f"  {item.get('id')}  queues={queues}  running/slots={busy}")
        elif workers is not None:
            print(f"workers   {workers}")
    if report.get("health", {}).get("status") == "unreachable":
        sys.exit(1)
