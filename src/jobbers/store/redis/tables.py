"""The Lua tables every script starts with, generated from Python when the scripts load.

The state machine (:data:`jobbers.models.TRANSITIONS`), the histogram bounds, what each step
does (:data:`jobbers.effects.EFFECTS`), the finished-status sets and the queue-room rule each
have one source; the scripts read these tables and hard-code none of them.
"""

from __future__ import annotations

from collections.abc import Iterable

from jobbers import effects
from jobbers.effects import Effect, Field
from jobbers.models import TRANSITIONS, Status
from jobbers.store.base import DURATION_BUCKETS
from jobbers.store.redis.keys import TASK_FIELDS


def _text(value: str) -> str:
    """A Lua string literal (Lua 5.1 knows only decimal escapes)."""
    return "'" + "".join(c if c.isalnum() or c in " _-.:()" else f"\\{ord(c)}" for c in value) + "'"


def _list(values: Iterable[str]) -> str:
    return "{" + ", ".join(_text(v) for v in values) + "}"


def _set(statuses: Iterable[Status]) -> str:
    return "{" + ", ".join(f"{s.value} = true" for s in statuses) + "}"


def allowed() -> str:
    rows = [
        f"  {current.value} = {_set(sorted(targets))}," for current, targets in TRANSITIONS.items()
    ]
    return "local ALLOWED = {\n" + "\n".join(rows) + "\n}\n"


def bounds() -> str:
    return "local BOUNDS = {" + ", ".join(repr(b) for b in DURATION_BUCKETS) + "}\n"


def _fields(fields: Iterable[Field]) -> list[str]:
    return [TASK_FIELDS[f] for f in sorted(fields)]


def effect(e: Effect) -> str:
    """One step as a Lua table: the fields ``apply`` in ``common.lua`` reads. Booleans that
    are false are left out (nil); lists are always there."""
    parts = [f"to = {_text(e.to.value)}", f"sources = {_set(effects.in_order(e.sources))}"]
    if e.reason is not None:
        parts.append(f"reason = {_text(e.reason)}")
    if e.attempt is not None:
        parts.append(f"attempt = {_text(e.attempt)}")
    if e.spends is not None:
        parts.append(f"spends = {_text(e.spends.value)}")
    if e.total is not None:
        parts.append(f"total = {_text(e.total)}")
    flags = {
        "given": e.given is not None,
        "worker": e.names_worker,
        "attempt_error": e.attempt_error,
        "finishes": e.finishes,
        "ready": e.ready,
        "scheduled": Field.DUE in e.sets,
        "unrun": Field.LEASE in e.clears,
        "unfinish": Field.FINISHED in e.clears,
    }
    parts += [f"{flag} = true" for flag, on in flags.items() if on]
    parts.append(f"clears = {_list(_fields(e.clears))}")
    parts.append(f"sets = {_list(_fields(e.sets))}")
    parts.append(f"resets = {_list(sorted(c.value for c in e.resets))}")
    return "{" + ", ".join(parts) + "}"


def steps() -> str:
    """``EFFECTS[name]``: each step's table is built the first time a script call asks for it.
    A script's top level runs on every call, and building all of them costs about 8 us there
    (measured with EVALSHA), more than a one-by-one submission's own work; built on demand, a
    call pays for the one or two it uses."""
    branches = [
        f"  {'if' if i == 0 else 'elseif'} name == {_text(name)} then\n    e = {effect(e)}"
        for i, (name, e) in enumerate(effects.EFFECTS.items())
    ]
    return (
        "local EFFECTS = setmetatable({}, {__index = function(made, name)\n  local e\n"
        + "\n".join(branches)
        + "\n  end\n  made[name] = e\n  return e\nend})\n"
        + f"local FINAL = {_set(effects.in_order(effects.FINAL))}\n"
        + f"local RAN = {_set(effects.in_order(effects.RAN))}\n"
        + f"local SUBMITTED = {_text(effects.SUBMITTED)}\n"
    )


def room() -> str:
    """The queue-room rule (``room_rule()``, built only by the claim that reads it): the conf
    hash's fields to read, the pause flag and the caps."""
    caps = []
    fields = [effects.PAUSED]
    for cap in effects.CAPS:
        window = f", window = {_text(cap.window)}" if cap.window else ""
        caps.append(f"{{limit = {_text(cap.limit)}, used = {_text(cap.used)}{window}}}")
        fields += [cap.limit, *([cap.window] if cap.window else [])]
    return (
        f"local function room_rule()\n  return {{paused = {_text(effects.PAUSED)},"
        f" fields = {_list(fields)}, caps = {{{', '.join(caps)}}}}}\nend\n"
    )


def edges() -> str:
    """``SATISFIES[on][status]``: the ends an edge waits for (:func:`jobbers.effects.satisfies`),
    and ``skip_reason()``, the reason a skipped task records."""
    rows = []
    for on in ("completed", "failed"):
        ends = [s for s in effects.in_order(effects.FINAL) if effects.satisfies(on, s)]
        rows.append(f"  {on} = {_set(ends)},")
    marker_parent, marker_status = "\x00p", "\x00s"
    template = effects.skip_reason(marker_parent, Status.COMPLETED).replace(
        Status.COMPLETED.value, marker_status
    )
    before, rest = template.split(marker_parent)
    middle, after = rest.split(marker_status)
    return (
        "local SATISFIES = {\n" + "\n".join(rows) + "\n}\n"
        "local function skip_reason(parent, status)\n"
        f"  return {_text(before)} .. parent .. {_text(middle)} .. status .. {_text(after)}\nend\n"
    )


def prelude() -> str:
    return allowed() + bounds() + steps() + room() + edges()
