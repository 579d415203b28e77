"""How Jobbers processes write their log: readable lines, or one JSON object per line for log
shippers. Lifecycle lines carry the task's id, name, queue, attempt and worker as fields
(``extra=task_fields(...)``), so a shipper can index them without parsing the message. Never
kwargs or results: they may hold secrets."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from typing import Any, Literal

from jobbers.models import TaskRecord

LogFormat = Literal["text", "json"]
FIELDS = ("task_id", "task_name", "queue", "attempt", "worker")


def task_fields(record: TaskRecord, worker: str, attempt: int | None = None) -> dict[str, Any]:
    return {
        "task_id": record.id,
        "task_name": record.name,
        "queue": record.queue,
        "attempt": record.attempt if attempt is None else attempt,
        "worker": worker,
    }


def log_task(
    logger: logging.Logger,
    level: int,
    event: str,
    record: TaskRecord,
    worker: str,
    attempt: int | None = None,
    detail: str = "",
) -> None:
    """One lifecycle line, the same words for every event so a reader can grep them."""
    fields = task_fields(record, worker, attempt)
    logger.log(
        level,
        "%s task %s %s queue %s attempt %d on worker %s%s",
        event,
        record.id,
        record.name,
        record.queue,
        fields["attempt"],
        worker,
        detail,
        extra=fields,
        stacklevel=2,
    )


class JSONFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for name in FIELDS:
            if hasattr(record, name):
                entry[name] = getattr(record, name)
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


def configure(level: str, fmt: LogFormat = "text") -> None:
    """Like ``logging.basicConfig``, a no-op when the root logger already has handlers (an
    application that embeds Jobbers keeps its own logging)."""
    handler = logging.StreamHandler()
    if fmt == "json":
        handler.setFormatter(JSONFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logging.basicConfig(level=level.upper(), handlers=[handler])
