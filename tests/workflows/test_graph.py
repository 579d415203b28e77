"""The graph model, the builder and the Mermaid dialect, without a store."""

from __future__ import annotations

import pytest

from jobbers.errors import InvalidWorkflow
from jobbers.workflows import Workflow, mermaid, step
from jobbers.workflows.graph import Link, cycle_node, parse


def test_the_builder_makes_chains_fan_outs_fan_ins_and_handlers() -> None:
    a, b, c, d, h = (step("t.x", i=i) for i in range(5))
    a >> [b, c] >> d
    b.then(h)
    d.on_error(step("t.alert").named("alert"))
    g = Workflow("w", d).graph()
    assert next(n.id for n in g.nodes) == "x"
    ids = {n.kwargs.get("i"): n.id for n in g.nodes}
    assert Link(ids[0], ids[1]) in g.edges
    assert Link(ids[2], ids[3]) in g.edges
    assert Link(ids[3], "alert", "failed") in g.edges
    assert g.handlers() == {"alert"}
    assert len({n.id for n in g.nodes}) == 6


def test_several_roots_are_gathered_from_any_step() -> None:
    a, b, c = step("t.a"), step("t.b"), step("t.c")
    [a, b] >> c
    g = Workflow("roots", c).graph()
    assert {e.source for e in g.edges} == {"a", "b"}


def test_a_cycle_is_found_and_named() -> None:
    g = parse(
        {
            "name": "c",
            "nodes": [{"id": n, "task": "t"} for n in "abcd"],
            "edges": [{"from": "a", "to": "b"}, {"from": "b", "to": "c"}, {"from": "c", "to": "b"},
                      {"from": "c", "to": "d"}],
        }
    )  # fmt: skip
    assert cycle_node(g) in {"b", "c"}


@pytest.mark.parametrize(
    "data",
    [
        {"name": "x"},
        {"name": "x", "nodes": [{"id": "1a", "task": "t"}]},
        {"name": "x", "nodes": [{"id": "a", "task": "t"}], "edges": [{"from": "a", "to": "z"}]},
        {"name": "x", "nodes": [{"id": "a", "task": "t", "kwargs": []}]},
    ],
)
def test_malformed_graphs_are_refused(data: dict[str, object]) -> None:
    with pytest.raises(InvalidWorkflow):
        parse(data)


def test_mermaid_values_round_trip() -> None:
    kwargs = {
        "n": 3,
        "f": 1.5,
        "s": "plain text",
        "q": 'has "quotes", commas',
        "t": True,
        "z": None,
        "l": [1, {"a": "b"}],
        "num": "42",
    }
    g = Workflow("m", step("pkg.mod.task", **kwargs).named("a").inputs("up")).graph()
    text = mermaid.render(g, {"a": "completed"})
    back = mermaid.parse(text, "m")
    assert back.nodes == g.nodes
    assert "{completed}" in text


def test_mermaid_reads_chains_bare_nodes_queues_and_skips_other_statements() -> None:
    text = """graph TD
    classDef done fill:#fff
    start["jobs.begin:fast(x=1)"]:::done --> middle --> finish['jobs.end']
    middle -.-> oops[jobs.alert]
    %% a comment
    """
    g = mermaid.parse(text)
    assert [(n.id, n.task, n.queue) for n in g.nodes] == [
        ("start", "jobs.begin", "fast"),
        ("middle", "middle", None),
        ("finish", "jobs.end", None),
        ("oops", "jobs.alert", None),
    ]
    assert Link("middle", "oops", "failed") in g.edges
    assert Link("start", "middle") in g.edges
