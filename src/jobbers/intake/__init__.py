"""Getting a task in: a submission validated, built and stored the one way, whoever calls.

The Manager's routes and fast path, the producers and ``jobbers submit --store`` all go through
:func:`submit_one` and :func:`submit_bulk`; the task catalog is handed in, so the intake knows
neither the registry nor HTTP.
"""

from jobbers.intake.build import Catalog, TaskDefaults, build_task, build_tasks, dedupe
from jobbers.intake.submission import BulkSubmission, TaskSubmission
from jobbers.intake.submit import (
    Write,
    parse_bulk,
    parse_one,
    store_writer,
    submit_bulk,
    submit_one,
)

__all__ = [
    "BulkSubmission",
    "Catalog",
    "TaskDefaults",
    "TaskSubmission",
    "Write",
    "build_task",
    "build_tasks",
    "dedupe",
    "parse_bulk",
    "parse_one",
    "store_writer",
    "submit_bulk",
    "submit_one",
]
