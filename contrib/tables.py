"""Plain-text tables for reports that are read in terminals, pipes, pytest output and
JUnit XML alike: rich lays them out (column widths from the content, so a long task or
agent id does not push the next column out of line); no colour, no wrapping."""

from __future__ import annotations

import io
from collections.abc import Iterable, Sequence

from rich.console import Console
from rich.table import Table

# Wide enough that rich never wraps a row: a report line is as long as its content.
_NO_WRAP = 10_000


def text_table(
    headers: Sequence[str],
    rows: Iterable[Sequence[str]],
    *,
    indent: int = 0,
    justify: Sequence[str] | None = None,
) -> list[str]:
    """The lines of a table: a header row, then one line per row, columns two spaces apart."""
    table = Table(box=None, show_edge=False, pad_edge=False, padding=(0, 2, 0, 0), highlight=False)
    for index, header in enumerate(headers):
        side = justify[index] if justify is not None else "left"
        table.add_column(header, justify=side, no_wrap=True)  # type: ignore[arg-type]
    for row in rows:
        table.add_row(*row)
    console = Console(
        file=io.StringIO(), width=_NO_WRAP, color_system=None, highlight=False, emoji=False
    )
    with console.capture() as captured:
        console.print(table, markup=False)
    prefix = " " * indent
    return [prefix + line.rstrip() for line in captured.get().splitlines()]
