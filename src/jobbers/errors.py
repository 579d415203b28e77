"""Every error Jobbers raises on purpose derives from :class:`JobbersError`.

``except JobbersError`` catches what the library means to raise and lets bugs through. Each class
is defined once, here (the store's family in :mod:`jobbers.store.base`, on this base); the old
import paths (``jobbers.APIError``, ``jobbers.params.InvalidKwargs`` ...) name these same classes.
The clients and the producers raise the same classes for the same failure, so code written
against one runs against the other.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from jobbers.models import Status
    from jobbers.params import Problem


class JobbersError(Exception):
    """The base of every error Jobbers raises on purpose."""


class ClientError(JobbersError):
    """A call to the Manager (or, for a producer, to the store) did not give an answer."""


class APIError(ClientError):
    """The Manager refused the call, with the status and ``detail`` its API documents; a producer
    raises the same for the same refusal, as the Manager would have answered it."""

    def __init__(self, status_code: int, detail: Any) -> None:
        super().__init__(f"{status_code}: {detail}")
        self.status_code = status_code
        self.detail = detail


class ManagerUnavailable(ClientError):
    """The Manager could not be reached or did not answer in time: worth retrying."""


class ListenError(JobbersError, RuntimeError):
    """The Manager could not start listening (the port is taken, the host is unknown, ...)."""


class UnknownTask(JobbersError, KeyError):
    """Task names that no one registered: not in this process, nor (for a Manager or a producer)
    by any worker in the store. ``names`` lists them; ``name`` is the first."""

    def __init__(self, names: str | Sequence[str], message: str | None = None) -> None:
        self.names = sorted([names] if isinstance(names, str) else names)
        self.name = self.names[0] if self.names else ""
        super().__init__(self.name)
        self._message = message

    def __str__(self) -> str:
        if self._message is not None:
            return self._message
        shown = ", ".join(repr(n) for n in self.names[:10])
        more = f" and {len(self.names) - 10} more" if len(self.names) > 10 else ""
        return (
            f"unknown task name(s) {shown}{more}: no such task is registered with this Manager "
            "or by any worker (start a worker with --tasks MODULE that defines it)"
        )


class InvalidKwargs(JobbersError, ValueError):
    """Kwargs that do not fit their task's parameters, per submission index; nothing was stored."""

    def __init__(self, problems: Sequence[tuple[int, Problem]], bulk: bool) -> None:
        self.problems = list(problems)
        self.bulk = bulk
        super().__init__("; ".join(p.msg for _, p in self.problems[:10]))

    def details(self) -> list[dict[str, Any]]:
        """The API's 422 shape: one ``{"loc", "msg", "type"}`` per problem."""
        out = []
        for index, problem in self.problems:
            where: list[str | int] = ["body", "tasks", index] if self.bulk else ["body"]
            out.append(
                {"loc": [*where, "kwargs", *problem.loc], "msg": problem.msg, "type": problem.type}
            )
        return out


class InvalidTransition(JobbersError):
    """A caller asked the store for a transition the state machine does not allow."""

    def __init__(self, task_id: str, current: Status, target: Status) -> None:
        super().__init__(f"task {task_id}: {current} -> {target} is not an allowed transition")
        self.task_id = task_id
        self.current = current
        self.target = target


class NotCancellable(JobbersError):
    """The task had ended already (``status``): the call cancelled nothing."""

    def __init__(self, task_id: str, status: str) -> None:
        super().__init__(f"task {task_id!r} is already {status} and cannot be cancelled")
        self.task_id = task_id
        self.status = status


class TaskFailed(JobbersError):
    """The task ended without a result (failed, dead or cancelled); ``task`` is its final state."""

    def __init__(self, task: dict[str, Any]) -> None:
        error = task.get("error") or {}
        detail = f": {error.get('type')}: {error.get('message')}" if error else ""
        super().__init__(f"task {task.get('id')} {task.get('status')}{detail}")
        self.task = task


class InvalidWorkflow(JobbersError, ValueError):
    """A workflow graph that cannot run (a cycle, an unknown task, kwargs that do not fit):
    ``node`` names the node at fault (None for the graph as a whole); nothing was stored."""

    def __init__(self, node: str | None, message: str) -> None:
        where = f"node {node!r}: " if node is not None else ""
        super().__init__(where + message)
        self.node = node

    def details(self) -> list[dict[str, Any]]:
        """The API's 422 shape, located at the node."""
        loc: list[str] = ["body", "nodes", self.node] if self.node is not None else ["body"]
        return [{"loc": loc, "msg": str(self), "type": "invalid_workflow"}]
