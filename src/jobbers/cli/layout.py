"""Fitting an operator table to the terminal: whole columns are left out, least useful first, and
long cells end in an ellipsis, so every row stays one line (or wraps between words) at any width.

rich left to itself folds a narrow column's cells a few characters at a time, which makes names
and ids unreadable at 80 columns; here the widths are chosen before rich draws the table.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from rich.cells import cell_len
from rich.console import Console
from rich.table import Table

#: Blank cells between two columns (rich's padding of one on each side, no border).
GAP = 2


@dataclass(frozen=True)
class Column:
    header: str
    #: Lower comes first: when the terminal is too narrow, the highest numbers are left out.
    rank: int
    #: How narrow this column may be cut (with an ellipsis) to make room for the next ones;
    #: the last column that fits may be cut further, to 8 cells. None: never cut (an id).
    shrink_to: int | None = None
    #: Wrap long cells between words instead of cutting them (a warning worth reading whole).
    wrap: bool = False


def one_line(text: str) -> str:
    """A cell's text with line breaks and tabs as single spaces: a row stays a row."""
    return " ".join(text.split()) if any(c in text for c in "\n\r\t") else text


def widths(columns: Sequence[Column], rows: Sequence[Sequence[str]], room: int) -> list[int]:
    """Each column's width, 0 for a column left out: columns are taken in rank order while their
    narrowest fits in ``room`` (a cuttable one also into the last room, down to 8 cells), then
    the room left widens the cut ones, the nearest whole first."""
    natural = [
        max([cell_len(c.header), *(cell_len(one_line(row[i])) for row in rows)], default=1) or 1
        for i, c in enumerate(columns)
    ]
    narrowest = [
        n if c.shrink_to is None else min(n, max(c.shrink_to, cell_len(c.header)))
        for c, n in zip(columns, natural, strict=True)
    ]
    order = sorted(range(len(columns)), key=lambda i: columns[i].rank)
    chosen: list[int] = []
    out = [0] * len(columns)
    used = 0
    for i in order:
        gap = GAP if chosen else 0
        left = room - used - gap
        if narrowest[i] <= left or not chosen:
            out[i] = narrowest[i]
        elif columns[i].shrink_to is not None and left >= min(natural[i], _least(columns[i])):
            out[i] = left  # the last room, for a column that reads well even that narrow
        else:
            continue
        chosen.append(i)
        used += gap + out[i]
    left = room - used
    # The columns closest to whole first: "defau…" for "default" helps no one.
    for i in sorted(chosen, key=lambda i: (natural[i] - out[i], columns[i].rank)):
        grow = min(natural[i] - out[i], max(left, 0))
        out[i] += grow
        left -= grow
    return out


def _least(column: Column) -> int:
    """Narrower than this, a cut cell says too little to be worth its column."""
    return max(cell_len(column.header), 8)


def fitted(
    title: str, columns: Sequence[Column], rows: Sequence[Sequence[str]], room: int
) -> Table:
    """A rich table of the columns that fit in ``room`` cells, each cut or wrapped to its width."""
    sizes = widths(columns, rows, room)
    table = Table(title=title, title_justify="left", box=None, pad_edge=False, header_style="bold")
    kept = [i for i, size in enumerate(sizes) if size]
    for i in kept:
        column = columns[i]
        table.add_column(
            column.header,
            width=sizes[i],
            no_wrap=not column.wrap,
            overflow="ellipsis",
        )
    for row in rows:
        table.add_row(*(one_line(row[i]) for i in kept))
    return table


def show(title: str, columns: Sequence[Column], rows: Sequence[Sequence[str]]) -> Console:
    """Print the table fitted to the console's width (``COLUMNS``, the terminal, or 80)."""
    console = Console(soft_wrap=False)
    console.print(fitted(title, columns, rows, console.width))
    return console
