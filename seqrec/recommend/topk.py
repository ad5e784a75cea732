"""Batched top-k over the whole catalogue, memory-bounded and deterministic.

Sequences come as CSR arrays (``items [M]``, ``offsets [S + 1]``, oldest item first, ids 1..N),
the form :class:`seqrec.data.SequenceData` keeps them in. Each batch is left-padded to the most
recent ``max_len`` items (trimmed to the batch's longest sequence, as in
:func:`seqrec.evaluation.evaluate_ranks`), encoded once, and scored against the output table with
the project's one scorer (``seqrec.models.scoring``, ``h_last · E[item]``, the prediction of the
CCE paper's "Problem Statement"). Only the ``[B, k]`` best of each batch are kept, so memory is one
``[B, N]`` score matrix with ``B`` from ``eval.batch_size`` (``auto``: at most 2**26 floats on a
CPU), never ``[S, N]``.

Tie rule (stated so lists are reproducible): items are ordered by score, descending, and equal
scores by item index, ascending (index = row of the run's ``ids.npz``, i.e. the order in which
preprocessing first met the item). Padding (index 0) and S3-Rec's mask token (N + 1) are not rows
of the output table, so they can never be recommended.
"""

from __future__ import annotations

import torch

from seqrec.data.csr import row_item_pairs, windows
from seqrec.evaluation import resolve_eval_batch_size
from seqrec.models.scoring import item_rows, last_hidden, row_items, score_items


def top_k(scores: torch.Tensor, k: int, chunk_floats: int = 2**22) -> tuple[torch.Tensor, torch.Tensor]:
    """The ``k`` best columns of each row, ties broken by column (smaller first).

    ``torch.topk`` returns an arbitrary subset of the items that tie at the k-th score. A tie
    crosses the cut-off exactly when the (k+1)-th best score equals the k-th, so one
    ``topk(k + 1)`` finds those rows; they (only they) then take every item strictly above the
    k-th score plus the smallest columns of those equal to it, a few rows at a time (about
    ``chunk_floats`` per step), so even a model that scores everything alike stays within the
    bound. No ``[B, N]`` temporary besides the scores themselves.

    Args:
        scores: ``[B, N]`` float scores without NaN (``-inf`` = excluded; it sorts last).
        k: 1 <= k <= N.
        chunk_floats: memory step of the tie fix-up.

    Returns:
        ``(values [B, k], columns [B, k])``, each row by score descending, then column ascending.
    """
    n = scores.shape[1]
    values, cols = torch.topk(scores, min(k + 1, n), dim=1)  # [B, k(+1)], sorted descending
    tied = (values[:, k] == values[:, k - 1]).nonzero().squeeze(1) if k < n else cols[:0, 0]  # [T]
    values, cols = values[:, :k].contiguous(), cols[:, :k].contiguous()
    for rows in tied.split(max(1, chunk_floats // n)):
        sub, threshold = scores[rows], values[rows, k - 1 :]  # [t, N], [t, 1]
        above = sub > threshold
        need = k - above.sum(1, dtype=torch.int32, keepdim=True)  # [t, 1] places for items equal to the k-th
        equal = sub == threshold
        above |= equal & (equal.cumsum(1, dtype=torch.int32) <= need)  # now exactly k per row
        cols[rows] = above.nonzero()[:, 1].view(len(rows), k)  # in column order
        values[rows] = sub.gather(1, cols[rows])
    order = torch.argsort(cols, dim=1)  # by column, then (stable) by score: ties stay by column
    cols, values = cols.gather(1, order), values.gather(1, order)
    order = torch.argsort(values, dim=1, descending=True, stable=True)
    return values.gather(1, order), cols.gather(1, order)


def batches(lengths: torch.Tensor, batch_size: int) -> list[torch.Tensor]:
    """Row indices in length order (stable), split into batches, as evaluation does."""
    return list(torch.argsort(lengths, stable=True).split(batch_size)) if len(lengths) else []


def _check_finite(hidden: torch.Tensor) -> None:
    if torch.isnan(hidden).any():
        raise ValueError(
            "the model returns NaN hidden states: the checkpoint diverged (retrain with a lower learning rate)"
        )


@torch.no_grad()
def recommend_csr(
    model: torch.nn.Module,
    items: torch.Tensor,
    offsets: torch.Tensor,
    k: int,
    max_len: int,
    mask_history: bool = True,
    batch_size: int | str = "auto",
) -> tuple[torch.Tensor, torch.Tensor]:
    """Top-k items after each sequence.

    Args:
        model: ``forward(item_seq [B, L]) -> [B, L, d]`` with an output table ``[N, d]``.
        items: ``[M]`` int64 item ids in 1..N, on the model's device; offsets: ``[S + 1]``.
            Every sequence must hold at least one item.
        k: list length, 1 <= k <= N.
        max_len: the model's input window: longer sequences keep their most recent items.
        mask_history: remove every item of the (whole, not only the windowed) sequence from
            its ranking, as evaluation does with ``eval.mask_history=true``.
        batch_size: sequences scored at once, or ``"auto"`` (bounded like ``eval.batch_size=auto``).

    Returns:
        ``(scores [S, k] float32, items [S, k] int64)``; a sequence whose history covers all but
        ``m < k`` items gets ``m`` items and item 0 / score ``-inf`` after them.

    Raises:
        ValueError: the model produces NaN, or ``k`` is out of range.
    """
    was_training = model.training
    model.eval()
    starts, ends = offsets[:-1], offsets[1:]
    lengths = ends - starts  # [S]
    n_items = model.output_table().shape[0]
    if not 1 <= k <= n_items:
        raise ValueError(f"k={k} must be between 1 and the catalogue size {n_items}")
    top_scores = torch.full((len(lengths), k), float("-inf"), device=items.device)
    top_items = torch.zeros(len(lengths), k, dtype=torch.long, device=items.device)
    batch_size = resolve_eval_batch_size(batch_size, n_items, items.device)
    for rows in batches(lengths, batch_size):
        width = min(max_len, max(int(lengths[rows].max()), 1))
        hidden = last_hidden(model, windows(items, starts[rows], ends[rows], width))  # [B, d]
        _check_finite(hidden)
        scores = score_items(model, hidden)  # [B, N]
        if mask_history:
            b, seen = row_item_pairs(items, starts[rows], ends[rows])
            scores[b, item_rows(seen)] = float("-inf")
        values, cols = top_k(scores, k)  # [B, k]
        del scores  # before the next batch's scores exist: one [B, N] matrix at a time
        top_scores[rows] = values
        top_items[rows] = torch.where(torch.isneginf(values), 0, row_items(cols))
    model.train(was_training)
    return top_scores, top_items


@torch.no_grad()
def score_csr(
    model: torch.nn.Module,
    items: torch.Tensor,
    offsets: torch.Tensor,
    max_len: int,
    columns: torch.Tensor | None = None,
    batch_size: int | str = "auto",
) -> torch.Tensor:
    """Raw scores of every sequence against every item (or the ``columns``), no masking.

    Args:
        model, items, offsets, max_len, batch_size: as :func:`recommend_csr`.
        columns: ``[C]`` item ids in 1..N to keep, or None for all N.

    Returns:
        ``[S, C]`` (or ``[S, N]``) float32 scores, rows in input order; this one is held whole.
    """
    was_training = model.training
    model.eval()
    starts, ends = offsets[:-1], offsets[1:]
    lengths = ends - starts
    n_items = model.output_table().shape[0]
    batch = resolve_eval_batch_size(batch_size, n_items, items.device)
    out = torch.empty(len(lengths), n_items if columns is None else len(columns), device=items.device)
    for rows in batches(lengths, batch):
        width = min(max_len, max(int(lengths[rows].max()), 1))
        hidden = last_hidden(model, windows(items, starts[rows], ends[rows], width))
        _check_finite(hidden)
        scores = score_items(model, hidden)  # [B, N]
        out[rows] = scores if columns is None else scores[:, item_rows(columns)]
        del scores
    model.train(was_training)
    return out
