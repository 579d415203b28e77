"""``airflow jobbers ...`` command definitions (loaded by every ``airflow`` command: keep light)."""

from __future__ import annotations

from typing import Any


def get_cli_commands() -> list[Any]:
    """The ``jobbers`` command group, published through the provider's ``cli`` entry."""
    from airflow.cli.cli_config import ActionCommand, Arg, GroupCommand, lazy_load_command

    queues = Arg(
        ("-q", "--queues"),
        help="Comma-separated Jobbers queues to take work from (default: [jobbers] default_queue)",
    )
    concurrency = Arg(
        ("-c", "--concurrency"), type=int, default=4, help="Workloads run at once (default 4)"
    )
    store = Arg(
        ("--store",),
        help="Jobbers store URL (sqlite:///path.db); default: JOBBERS_STORE_URL",
    )
    skip_serve_logs = Arg(
        ("-s", "--skip-serve-logs"),
        action="store_true",
        help="Don't start Airflow's log server (use it when remote logging is configured, or "
        "when another worker on this host already serves the log folder)",
    )
    lease = Arg(
        ("--lease",),
        type=float,
        default=30.0,
        help="Seconds a claimed workload stays owned without renewal: a dead worker's workloads "
        "are reported failed this long after it died (default 30)",
    )
    host = Arg(("--host",), default="127.0.0.1", help="Address the Manager listens on")
    port = Arg(("--port",), type=int, default=8000, help="Port the Manager listens on")
    output = Arg(
        ("-o", "--output"), choices=("table", "json"), default="table", help="Output format"
    )
    return [
        GroupCommand(
            name="jobbers",
            help="Jobbers executor: workers, Manager and status",
            subcommands=(
                ActionCommand(
                    name="worker",
                    help="Start a Jobbers worker that runs Airflow workloads (and serves logs)",
                    func=lazy_load_command("airflow_jobbers.cli_commands.worker"),
                    args=(queues, concurrency, store, skip_serve_logs, lease),
                ),
                ActionCommand(
                    name="manager",
                    help="Start a Jobbers Manager that accepts Airflow workloads",
                    func=lazy_load_command("airflow_jobbers.cli_commands.manager"),
                    args=(host, port, store),
                ),
                ActionCommand(
                    name="status",
                    help="Show the executor's view: Manager health, workers, jobs in flight",
                    func=lazy_load_command("airflow_jobbers.cli_commands.status"),
                    args=(output,),
                ),
            ),
        )
    ]
