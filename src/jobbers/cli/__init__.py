"""The ``jobbers`` command: a thin shell over the Manager, the worker and the client.

Each module registers its commands on the one Typer app of :mod:`jobbers.cli.options`.
"""

# Commands list in --help in the order their modules are imported.
# isort: off
from jobbers.cli import dags, processes, schedules, tables, tasks

# isort: on
from jobbers.cli.options import app

__all__ = ["app", "dags", "main", "processes", "schedules", "tables", "tasks"]


def main() -> None:
    """Console-script entry point."""
    app(prog_name="jobbers")
