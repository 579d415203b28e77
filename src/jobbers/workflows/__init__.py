"""Workflows: a graph of task calls run as one run, and dynamic fan-out from a running task.

``step(task, **kwargs)`` makes a node; ``a >> b``, ``a >> [b, c] >> d`` and ``a.then(b)`` chain
them, ``a.on_error(h)`` gives ``a`` an error handler, and ``Workflow(name, a)`` gathers the
graph (its ``to_json()`` is what ``POST /workflows`` takes). A task returns
``fan_out(children, collector)`` to fan out at run time.
"""

from jobbers.workflows.builder import Step, Workflow, step
from jobbers.workflows.fanout import FanOut, fan_out
from jobbers.workflows.graph import Graph, Link, Node

__all__ = ["FanOut", "Graph", "Link", "Node", "Step", "Workflow", "fan_out", "step"]
