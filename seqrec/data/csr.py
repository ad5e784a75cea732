"""Sequences in CSR form: one flat ``items [M]`` array and per-row bounds, the layout
:class:`seqrec.data.SequenceData` keeps every user's sequence in (oldest item first).

The two operations every consumer needs are here once: a left-padded window of each row's most
recent items (model input), and the expansion of rows into one entry per item (histories to mask,
prefix samples). Both are index arithmetic on the flat array, no Python loop over rows.
"""

from __future__ import annotations

import torch


def windows(items: torch.Tensor, lo: torch.Tensor, hi: torch.Tensor, width: int) -> torch.Tensor:
    """Left-padded windows ``items[max(lo, hi - width):hi]`` per row, 0 (padding) before them.

    Args:
        items: ``[M]`` int64 item ids.
        lo, hi: ``[R]`` int64 bounds of each row in ``items`` (``lo <= hi``; ``hi - lo`` may exceed
            ``width``: the most recent ``width`` items are kept).
        width: W, the window's length.

    Returns:
        ``[R, W]`` int64 on ``items``' device, the row's last item in column W - 1.
    """
    positions = hi[:, None] - width + torch.arange(width, device=items.device)  # [R, W]
    if len(items) == 0:
        return torch.zeros(positions.shape, dtype=torch.int64, device=items.device)
    values = items[positions.clamp(min=0, max=len(items) - 1)]
    return torch.where(positions >= lo[:, None], values, torch.zeros_like(values))


def expand(counts: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """One entry per element of each row: ``(row [S], within [S])``, S = ``counts.sum()``.

    Row r appears ``counts[r]`` times, with ``within`` = 0, 1, …, ``counts[r] - 1``; e.g.
    counts ``[2, 0, 3]`` → rows ``[0, 0, 2, 2, 2]``, within ``[0, 1, 0, 1, 2]``.

    Args:
        counts: ``[R]`` int64 >= 0.
    """
    rows = torch.repeat_interleave(torch.arange(len(counts), device=counts.device), counts)  # [S]
    within = torch.arange(len(rows), device=counts.device) - (torch.cumsum(counts, 0) - counts)[rows]
    return rows, within


def row_item_pairs(items: torch.Tensor, lo: torch.Tensor, hi: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Every item of each row as ``(row [S], item [S])`` pairs, rows in order, items oldest first
    (``scores[row, item_rows(item)]`` addresses them in a ``[R, N]`` score matrix).

    Args:
        items: ``[M]``; lo, hi: ``[R]`` bounds of each row in ``items``.
    """
    rows, within = expand(hi - lo)
    return rows, items[lo[rows] + within]


__all__ = ["expand", "row_item_pairs", "windows"]
