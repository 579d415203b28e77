"""Turning Airflow workloads into Jobbers submissions, and submitting a heartbeat's batch.

Imports no Airflow: workloads are read by attribute (``type``, ``ti``, ``callback``,
``model_dump_json``), so it is unit-tested with stand-ins and a real Manager.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from airflow_jobbers import protocol

#: The Manager API's priority range; an Airflow ``priority_weight`` outside it is clamped.
PRIORITY_MIN = -1_000_000
PRIORITY_MAX = 1_000_000
#: W3C Trace Context ``traceparent``, as the Manager accepts it.
TRACEPARENT = re.compile(r"^[0-9a-f]{2}-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$")
#: Namespace of callback job ids: one callback is one job id, however often it is submitted.
CALLBACK_NAMESPACE = uuid.UUID("6f0b7c64-5b7e-4c1a-9a49-0e2b1c5a7d31")


@dataclass(frozen=True)
class Submission:
    """One workload, ready to send: the Airflow key, the Jobbers id, the request body."""

    key: Any  # an Airflow TaskInstanceKey or CallbackKey
    job_id: str
    body: dict[str, Any]
    #: The job id is the scheduler's pre-assigned ``external_executor_id`` (already stored).
    preassigned: bool = False


def clamp_priority(weight: Any) -> int:
    """Airflow's ``priority_weight`` as a Jobbers priority: the same order, within range."""
    try:
        value = int(weight or 0)
    except (TypeError, ValueError):
        value = 0
    return max(PRIORITY_MIN, min(PRIORITY_MAX, value))


def callback_job_id(callback_id: Any) -> str:
    """The job id of an executor callback: derived from the callback's own id, so a submit
    retried after a timeout finds the job it already created instead of running it twice."""
    return str(uuid.uuid5(CALLBACK_NAMESPACE, str(callback_id)))


def traceparent_of(carrier: Any) -> str | None:
    """The W3C ``traceparent`` of a task instance's ``context_carrier`` (Airflow 3 keeps one
    per task instance, child of its DAG run's): the job's attempts become spans under it. A
    carrier without one, or with a malformed one, gives None (the job is still submitted)."""
    if not isinstance(carrier, dict):
        return None
    value = carrier.get("traceparent")
    if not isinstance(value, str) or not TRACEPARENT.match(value.strip().lower()):
        return None
    return value.strip().lower()


def queue_for(queue: str | None, default_queue: str) -> str:
    """Airflow's ``default`` queue (or none) is ``[jobbers] default_queue``."""
    if not queue or queue == "default":
        return default_queue
    return queue


def build(workload: Any, default_queue: str) -> Submission | None:
    """The submission for an ``ExecuteTask`` or ``ExecuteCallback``; None for other kinds.

    A task instance's job id is the scheduler's pre-assigned ``external_executor_id`` (a new
    UUID when the scheduler assigned none).
    """
    kind = getattr(workload, "type", None)
    trace: str | None = None
    if kind == "ExecuteTask":
        ti = workload.ti
        key: Any = ti.key
        trace = traceparent_of(getattr(ti, "context_carrier", None))
        preassigned = getattr(ti, "external_executor_id", None)
        job_id = str(preassigned or uuid.uuid4())
        queue = queue_for(ti.queue, default_queue)
        priority = clamp_priority(ti.priority_weight)
    elif kind == "ExecuteCallback":
        callback = workload.callback
        key = getattr(workload, "key", None) or callback.id
        job_id = callback_job_id(callback.id)
        data = callback.data or {}
        queue = queue_for(data.get("queue") if isinstance(data, dict) else None, default_queue)
        priority = 0
        preassigned = None
    else:
        return None
    body = {
        "name": protocol.TASK_NAME,
        "id": job_id,
        "queue": queue,
        "priority": priority,
        "kwargs": {protocol.WORKLOAD_KWARG: json.loads(workload.model_dump_json())},
    }
    if trace is not None:
        body["traceparent"] = trace
    return Submission(key, job_id, body, preassigned=bool(preassigned))


class SubmitClient(Protocol):
    def submit_many(self, tasks: Sequence[dict[str, Any]]) -> list[dict[str, Any]]: ...


@dataclass
class Submitter:
    """Sends a batch in one bulk call and tells the outcome of each submission:

    - ``accepted(sub)``: Jobbers has the job (also when its id was already taken: the id
      belongs to this very workload, so a retried submit is a no-op);
    - ``rejected(sub, reason)``: the Manager refused this workload for good;
    - ``unavailable(subs, why)``: the Manager could not be reached or failed; retry later.

    One refused workload refuses the whole bulk call, so the batch is then sent one by one.
    """

    accepted: Callable[[Submission], None]
    rejected: Callable[[Submission, str], None]
    unavailable: Callable[[list[Submission], str], None]

    def submit(self, client: SubmitClient, batch: list[Submission]) -> None:
        if not batch:
            return
        from jobbers import APIError

        try:
            client.submit_many([sub.body for sub in batch])
        except APIError as exc:
            if exc.status_code >= 500:
                self.unavailable(batch, f"Manager error {exc.status_code}")
                return
            for sub in batch:
                self._submit_one(client, sub)
            return
        except Exception as exc:
            self.unavailable(batch, type(exc).__name__)
            return
        for sub in batch:
            self.accepted(sub)

    def _submit_one(self, client: SubmitClient, sub: Submission) -> None:
        from jobbers import APIError

        try:
            client.submit_many([sub.body])
        except APIError as exc:
            if exc.status_code == 409:
                self.accepted(sub)
            elif exc.status_code >= 500:
                self.unavailable([sub], f"Manager error {exc.status_code}")
            else:
                detail = protocol.scrub(exc.detail)
                self.rejected(sub, f"Jobbers rejected the workload ({exc.status_code}): {detail}")
        except Exception as exc:
            self.unavailable([sub], type(exc).__name__)
        else:
            self.accepted(sub)
