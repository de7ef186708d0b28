"""GitHub Markdown tables, the form every melos report and results.md uses."""

from __future__ import annotations

from collections.abc import Iterable, Sequence


def markdown_table(header: Sequence[object], rows: Iterable[Sequence[object]]) -> str:
    """A table with `header` as its first row and one line per row (cells as `str`), no
    trailing newline. Every row must have as many cells as the header."""
    lines = ["| " + " | ".join(map(str, header)) + " |", "|---|" + "---|" * (len(header) - 1)]
    for row in rows:
        if len(row) != len(header):
            raise ValueError(f"a row of {len(row)} cells under a header of {len(header)}: {list(row)}")
        lines.append("| " + " | ".join(map(str, row)) + " |")
    return "\n".join(lines)
