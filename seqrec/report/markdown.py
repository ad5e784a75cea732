"""Markdown tables from pandas frames (plain pipes, no extra dependency)."""

from __future__ import annotations

import pandas as pd


def markdown_table(frame: pd.DataFrame, left: int = 1) -> str:
    """``frame`` (cells already formatted as text; NaN/None shown blank) as a pipe table with its
    columns as the header: the first ``left`` columns left-aligned, the others right-aligned.
    Returns the lines joined by newlines, without a trailing newline."""
    cells = frame.astype(object).where(frame.notna(), "").astype(str)
    align = ["---"] * left + ["---:"] * (frame.shape[1] - left)
    rows = [list(map(str, frame.columns)), align, *cells.to_numpy().tolist()]
    return "\n".join(
        "| " + " | ".join(row) + " |" if i != 1 else "|" + "|".join(row) + "|" for i, row in enumerate(rows)
    )
