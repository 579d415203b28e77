"""A task's JSON with what its attempts said: progress and log lines (only for one task: the
lines of a page of tasks would be too much to read on every listing)."""

from __future__ import annotations

from typing import Any

from jobbers.api.serialize import iso
from jobbers.store.base import AttemptNotes


def with_notes(body: dict[str, Any], notes: list[AttemptNotes]) -> dict[str, Any]:
    by_number = {n.attempt: n for n in notes}
    for attempt in body["attempts"]:
        note = by_number.get(attempt["number"])
        progress = None
        if note is not None and note.progress is not None:
            progress = {"fraction": note.progress, "message": note.message}
        attempt["progress"] = progress
        attempt["logs"] = [
            {"at": iso(line.at), "level": line.level, "message": line.message}
            for line in (note.lines if note else ())
        ]
    body["progress"] = body["attempts"][-1]["progress"] if body["attempts"] else None
    return body
