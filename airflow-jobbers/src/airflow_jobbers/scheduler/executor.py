"""JobbersExecutor: Airflow's scheduler hands it workloads; Jobbers workers run them.

Data path: ``_process_workloads`` submits every batch in one ``POST /tasks/bulk`` whose task
ids are the scheduler's pre-assigned ``external_executor_id`` (so a resubmission is a no-op and
adoption after a crash is exact); ``sync`` reads the Manager's change feed from a cursor (one
call per heartbeat in the steady state) and reports into ``event_buffer``. Nothing here raises
into the scheduler loop, and no Manager outage loses a workload: unsubmitted workloads stay in
``queued_tasks`` and the feed is resumed from the last cursor.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from airflow.executors.base_executor import BaseExecutor
from airflow.models.taskinstancekey import TaskInstanceKey
from airflow.utils.state import TaskInstanceState

from airflow_jobbers import config, protocol
from airflow_jobbers.scheduler.feed import FeedReader
from airflow_jobbers.scheduler.jobtable import Job, JobTable
from airflow_jobbers.scheduler.submission import Submission, Submitter, build
from airflow_jobbers.states import TERMINAL, Action, action_for, action_for_result, describe

if TYPE_CHECKING:
    from airflow.executors.workloads import ExecutorWorkload
    from airflow.models.taskinstance import TaskInstance
    from jobbers import Client

_STATUS_CHUNK = 10_000
_WARN_EVERY = 30.0


class JobbersExecutor(BaseExecutor):
    """Run Airflow task instances (and executor callbacks) as Jobbers tasks."""

    supports_ad_hoc_ti_run: bool = True
    supports_callbacks: bool = True
    supports_multi_team: bool = True
    supports_connection_test: bool = False
    pre_assigns_external_executor_id = True
    is_local: bool = False
    is_production: bool = True
    serve_logs: bool = False
    sentry_integration: str = ""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.manager_url = self._opt("manager_url").rstrip("/")
        self.auth_token = self._opt("auth_token") or None
        self.default_queue = self._opt("default_queue")
        self.request_timeout = float(self._opt("request_timeout"))
        self.submit_max_retries = int(self._opt("submit_max_retries"))
        self.reconcile_interval = float(self._opt("reconcile_interval"))
        self.full_wait = max(0.0, float(self._opt("full_wait")))
        self._client: Client | None = None
        self._jobs = JobTable()
        self._feed = FeedReader(
            int(self._opt("sync_batch_size")),
            int(self._opt("sync_max_pages")),
            self._warn_text,
            min_interval=float(self._opt("sync_interval")),
        )
        self._submitter = Submitter(self._accepted, self._rejected, self._submit_failed)
        self._pending_cancels: set[str] = set()
        self._submit_failures: Counter[Any] = Counter()
        self._last_reconcile = time.monotonic()
        self._last_warning: dict[str, float] = {}

    # -- configuration and client ------------------------------------------------------------

    def _opt(self, name: str) -> str:
        return config.option(name, self.conf)

    def _get_client(self) -> Client:
        if self._client is None:
            from jobbers import Client

            self._client = Client(
                url=self.manager_url, token=self.auth_token, timeout=self.request_timeout
            )
        return self._client

    def _warn(self, topic: str, message: str, *args: Any) -> None:
        """Log a warning at most every 30 s per topic (an outage must not flood the log)."""
        now = time.monotonic()
        if now - self._last_warning.get(topic, -_WARN_EVERY) >= _WARN_EVERY:
            self._last_warning[topic] = now
            self.log.warning(message, *args)

    def _warn_text(self, topic: str, message: str) -> None:
        self._warn(topic, "%s", message)

    def start(self) -> None:
        """Open the Manager client and start the change feed at its end (never fails).

        Start-up comes before any submission or adoption, so no event of ours can precede the
        cursor taken here; adoption reads the past through a bulk status lookup instead. When
        the Manager does not answer, the feed is read from its beginning: slower, still exact.
        """
        client = self._get_client()
        try:
            client.healthz()
            self._feed.start_at_tail(client)
            self.log.info(
                "JobbersExecutor connected to the Jobbers Manager at %s (change feed at %s)",
                self.manager_url,
                self._feed.cursor,
            )
        except Exception as exc:
            self._warn(
                "manager",
                "Jobbers Manager at %s does not answer (%s); workloads wait until it does",
                self.manager_url,
                type(exc).__name__,
            )

    # -- submitting ----------------------------------------------------------------------------

    def _process_workloads(self, workload_items: Sequence[ExecutorWorkload]) -> None:
        """Submit the batch in one idempotent bulk call; on an outage keep it queued."""
        batch: list[Submission] = []
        for workload in workload_items:
            sub = build(workload, self.default_queue)
            if sub is None:
                kind = getattr(workload, "type", None)
                self.log.error("JobbersExecutor cannot run %s workloads; dropped", kind)
                continue
            batch.append(sub)
        self._submitter.submit(self._get_client(), batch)

    def _rejected(self, sub: Submission, reason: str) -> None:
        self._pop_queued(sub.key)
        self._submit_failures.pop(sub.key, None)
        self.fail(sub.key, reason)

    def _submit_failed(self, batch: list[Submission], why: str) -> None:
        """Leave the workloads queued for the next heartbeat (or fail them past the limit)."""
        count = 0
        for sub in batch:
            key = sub.key
            count += 1
            self._submit_failures[key] += 1
            if 0 < self.submit_max_retries < self._submit_failures[key]:
                self._pop_queued(key)
                del self._submit_failures[key]
                self.fail(key, f"could not submit to the Jobbers Manager: {why}")
        self._warn(
            "submit",
            "Jobbers Manager at %s unavailable (%s): %d workload(s) stay queued and are retried",
            self.manager_url,
            why,
            count,
        )

    def _accepted(self, sub: Submission) -> None:
        key = sub.key
        self._pop_queued(key)
        self._submit_failures.pop(key, None)
        self.running.add(key)
        is_task = isinstance(key, TaskInstanceKey)
        self._jobs.track(Job(id=sub.job_id, key=key, is_task=is_task))
        if is_task and not sub.preassigned:
            # The scheduler assigned no id (Airflow before pre-assignment): tell it ours, it
            # stores it as external_executor_id. A pre-assigned id is stored already, and the
            # event would only cost the scheduler a locked query per heartbeat.
            self.event_buffer[key] = (TaskInstanceState.QUEUED, sub.job_id)

    def _pop_queued(self, key: Any) -> None:
        """The one place workloads leave the base class's queues (3.4 unifies them)."""
        self.queued_tasks.pop(key, None)
        self.queued_callbacks.pop(key, None)

    # -- tracking ------------------------------------------------------------------------------

    def change_state(
        self, key: Any, state: Any, info: Any = None, remove_running: bool = True
    ) -> None:
        """Base behaviour, and forget the job once its key leaves ``running``.

        The scheduler calls this itself when it purges a task instance whose heartbeat timed
        out; the job is then cancelled, since nobody will read its outcome.
        """
        super().change_state(key, state, info, remove_running)
        if remove_running:
            job = self._jobs.untrack(key)
            if job is not None and state == TaskInstanceState.FAILED:
                self._pending_cancels.add(job.id)

    def _report(self, job: Job, action: Action, info: str) -> None:
        """Turn an action into an event (the job is forgotten first)."""
        if action in (Action.NONE, Action.CHECK_RESULT):
            return
        if action == Action.RUNNING:
            if not job.is_task:
                self.running_state(job.key, job.id)
            return
        self._jobs.untrack(job.key)
        if action == Action.SUCCESS:
            self.success(job.key, info)
        elif action == Action.FAIL:
            self.fail(job.key, info)
        else:  # Action.FORGET: revoked by us, or a duplicate delivery: no event
            self.running.discard(job.key)

    # -- sync ----------------------------------------------------------------------------------

    def sync(self) -> None:
        """Read the change feed (and retry pending cancels); never raises."""
        self._sync(force=False)

    def _sync(self, force: bool) -> None:
        if self._client is None:
            return
        try:
            self._retry_cancels()
            self._feed.read(self._get_client(), self._apply_event, force=force)
            if not force:
                self._wait_for_a_free_slot()
            self._check_results()
            if self.reconcile_interval > 0 and (
                time.monotonic() - self._last_reconcile >= self.reconcile_interval
            ):
                self._reconcile()
        except Exception:
            self.log.exception("JobbersExecutor.sync failed; it is retried next heartbeat")

    def _wait_for_a_free_slot(self) -> None:
        """While every slot is taken, wait on the feed (up to ``full_wait``) for a job to end.

        A scheduler with no slot to fill queues nothing, and a pass that queued nothing and
        received no event ends in its idle sleep (``scheduler_idle_sleep_time``): a slot freed
        during that sleep stays unseen until it ends. Waiting here instead hands the scheduler
        the end as it happens, so the next pass fills the slot. The scheduler would have slept
        anyway, so the wait delays none of its other work by more than that sleep would.
        """
        if self.full_wait <= 0 or self.slots_available > 0 or not len(self._jobs):
            return
        self._feed.read_until(
            self._get_client(), self._apply_event, lambda: self.slots_available > 0, self.full_wait
        )

    def _apply_event(self, event: dict[str, Any]) -> None:
        job = self._jobs.by_id(str(event.get("task_id")))
        if job is None:
            return  # not ours, superseded, or already reported
        status = str(event.get("status"))
        if status == "started":
            worker = event.get("worker")
            job.started(str(worker) if worker else None)
        self._apply_status(job, status, event.get("reason"), job.worker)

    def _apply_status(self, job: Job, status: str, reason: Any, worker: str | None) -> None:
        action = action_for(status, maybe_duplicate=job.check_result)
        if action == Action.CHECK_RESULT:
            self._jobs.pending_results.add(job.id)
            return
        # Only ends carry a text, and a started job is most of what sync() reads.
        ends = action not in (Action.NONE, Action.RUNNING)
        info = describe(status, str(reason) if reason else None, worker) if ends else ""
        self._report(job, action, info)

    def _check_results(self) -> None:
        """Completed jobs that may have been duplicate deliveries: read their result."""
        for job_id in list(self._jobs.pending_results):
            job = self._jobs.by_id(job_id)
            if job is None:
                self._jobs.pending_results.discard(job_id)
                continue
            try:
                task = self._get_client().get(job_id)
            except Exception as exc:
                self._warn("results", "cannot read Jobbers job %s (%s)", job_id, type(exc).__name__)
                return
            self._jobs.pending_results.discard(job_id)
            action = action_for_result(task.get("result"))
            self._report(job, action, describe("completed", None, task.get("worker")))

    def _reconcile(self) -> None:
        """Safety net under the feed: one bulk status call for every tracked job."""
        self._last_reconcile = time.monotonic()
        jobs = list(self._jobs)
        statuses = self._lookup([job.id for job in jobs])
        if statuses is None:
            return
        for job in jobs:
            status = statuses.get(job.id)
            if status is None:
                if job.unverified:
                    self._report(job, Action.FAIL, "Jobbers does not know this job")
                continue
            job.unverified = False
            if status in TERMINAL and self._jobs.is_current(job):
                job.check_result = True
                self._apply_status(job, status, None, job.worker)

    def _lookup(self, job_ids: list[str]) -> dict[str, str] | None:
        """Bulk status lookup; None when the Manager could not answer."""
        result: dict[str, str] = {}
        client = self._get_client()
        try:
            for i in range(0, len(job_ids), _STATUS_CHUNK):
                result.update(client.statuses(job_ids[i : i + _STATUS_CHUNK]))
        except Exception as exc:
            self._warn("lookup", "Jobbers status lookup failed (%s)", type(exc).__name__)
            return None
        return result

    # -- cancelling ------------------------------------------------------------------------------

    def revoke_task(self, *, ti: TaskInstance) -> None:
        """Cancel the task instance's job so that it never starts; report nothing."""
        key = ti.key
        self._pop_queued(key)
        self._submit_failures.pop(key, None)
        job = self._jobs.untrack(key)
        self.running.discard(key)
        ids = {job.id} if job is not None else set()
        if ti.external_executor_id:
            ids.add(str(ti.external_executor_id))
        self._pending_cancels.update(ids)
        try:
            self._retry_cancels()
        except Exception:
            self.log.exception("cancelling Jobbers jobs %s failed; retried next heartbeat", ids)

    def _retry_cancels(self) -> None:
        if not self._pending_cancels:
            return
        ids = sorted(self._pending_cancels)
        try:
            answer = self._get_client().cancel_many(ids)
        except Exception as exc:
            self._warn(
                "cancel", "cannot cancel Jobbers jobs yet (%s); retrying", type(exc).__name__
            )
            return
        self._pending_cancels.difference_update(ids)
        self.log.info("Jobbers cancel: %s", answer)

    # -- adoption ----------------------------------------------------------------------------

    def try_adopt_task_instances(self, tis: Sequence[TaskInstance]) -> Sequence[TaskInstance]:
        """Adopt the task instances whose job Jobbers knows; hand back the rest.

        A job Jobbers has definitively never seen never ran, so resetting it is safe. When
        the lookup itself fails everything with an id is kept (and verified later), so a
        running task is never started twice.
        """
        not_adopted: list[TaskInstance] = [ti for ti in tis if not ti.external_executor_id]
        with_id = [ti for ti in tis if ti.external_executor_id]
        if not with_id:
            return not_adopted
        statuses = self._lookup([str(ti.external_executor_id) for ti in with_id])
        for ti in with_id:
            job_id = str(ti.external_executor_id)
            if statuses is None:
                self._adopt(ti, job_id, None)
                continue
            status = statuses.get(job_id)
            if status is None or status == "cancelled":
                not_adopted.append(ti)
            else:
                self._adopt(ti, job_id, status)
        if statuses is None:
            self._last_reconcile = 0.0  # verify the adoptions as soon as the Manager answers
        return not_adopted

    def _adopt(self, ti: TaskInstance, job_id: str, status: str | None) -> None:
        key = ti.key
        self.running.add(key)
        job = Job(id=job_id, key=key, is_task=True, check_result=True, unverified=status is None)
        self._jobs.track(job)
        self.log.info("adopted %s as Jobbers job %s (%s)", key, job_id, status or "unverified")
        if status is not None and status in TERMINAL:
            self._apply_status(job, status, None, None)

    # -- shutdown and logs ---------------------------------------------------------------------

    def end(self) -> None:
        """Report what has finished, then close; running jobs go on (another scheduler adopts)."""
        self._sync(force=True)
        self.terminate()

    def terminate(self) -> None:
        """Close the client; jobs are left to Jobbers."""
        client, self._client = self._client, None
        if client is not None:
            try:
                client.close()
            except Exception:
                self.log.debug("closing the Jobbers client failed", exc_info=True)

    def get_task_log(self, ti: TaskInstance, try_number: int) -> tuple[list[str], list[str]]:
        """Where the job runs, for the log view of a running task instance (never raises)."""
        job_id = ti.external_executor_id
        if not job_id:
            return [], []
        try:
            task = self._get_client().get(str(job_id))
        except Exception as exc:
            return [f"Jobbers job {job_id}: details unavailable ({type(exc).__name__})"], []
        messages = [
            f"Jobbers job {job_id}: {task.get('status')} on queue {task.get('queue')}"
            f", worker {task.get('worker') or '-'}"
        ]
        for attempt in task.get("attempts") or []:
            if not isinstance(attempt, dict):
                continue
            line = (
                f"Jobbers attempt {attempt.get('number')} on {attempt.get('worker')}: "
                f"{attempt.get('outcome') or 'running'}"
            )
            error = attempt.get("error")
            if isinstance(error, dict) and error.get("message"):
                line += f" ({protocol.scrub(error['message'])})"
            messages.append(line)
        return messages, []

    def debug_dump(self) -> None:
        """SIGUSR2: the base dump plus the job map and the feed cursor."""
        super().debug_dump()  # type: ignore[no-untyped-call]
        self.log.info(
            "jobbers: cursor=%s jobs (%d)\n\t%s",
            self._feed.cursor,
            len(self._jobs),
            "\n\t".join(f"{job.key} -> {job.id}" for job in self._jobs),
        )
