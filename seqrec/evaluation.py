"""Full-ranking evaluation: HR@k and NDCG@k of the held-out item over the whole catalogue.

Protocol of the CCE paper's code (S3-Rec's ``get_full_sort_score``): the score of every real item
1..N is ``h_last · E[item]`` with ``h_last`` the hidden state at the last input position and ``E``
the model's output table (:mod:`seqrec.models.scoring`, the one scorer); items
in the user's history before the target (the *full* history, not only the last ``max_len``) are
masked out (``mask_history=True``); a masked target therefore counts as a miss, as in the
paper's code. No sampled negatives, no user subsampling.

Tie rule (pessimistic, stated so numbers are reproducible): the target's rank is 1 + the number
of *other* items whose score is **greater than or equal** to the target's score. A model that
scores everything equally thus ranks the target last, never first. An item scored NaN counts as
scoring >= the target (it can only push the target down); a NaN target score is an error.

``HR@k = 1[rank <= k]`` and ``NDCG@k = 1[rank <= k] / log2(rank + 1)`` (one relevant item, so
IDCG = 1), per user, then averaged over users. A masked target gets the rank
:data:`MASKED_RANK` (2**31 - 1), a miss at every cut-off whatever the catalogue size.
"""

from __future__ import annotations

from typing import Callable

import torch

from seqrec.models.scoring import item_rows, last_hidden, score_items

KS = (5, 10, 20)
# rank of a target that is masked as history (a repeat): beyond every cut-off, also for tiny catalogues
MASKED_RANK = 2**31 - 1
METRICS = tuple(f"{m}@{k}" for m in ("hr", "ndcg") for k in KS)
# eval.batch_size=auto: users per batch so one [B, N] float32 score matrix stays within this many
# floats (CPU 256 MB, GPU 1 GB), and never more than MAX_AUTO_EVAL_BATCH users
CPU_SCORE_FLOATS = 2**26
GPU_SCORE_FLOATS = 2**28
MAX_AUTO_EVAL_BATCH = 1024


def resolve_eval_batch_size(batch_size: int | str, n_items: int, device: torch.device) -> int:
    """Users scored at once: an int as given, or ``"auto"`` bounded by the score matrix's memory.

    ``auto`` = ``min(1024, max(1, budget // N))`` with a budget of 2**26 floats (256 MB) on a CPU
    and 2**28 (1 GB) on a GPU: 1,024 users for the benchmark catalogues (N <= 65k), 67 users
    for a CPU catalogue of 1M items, where a fixed 1,024 would need a 4 GB score matrix.

    Raises:
        ValueError: anything but ``"auto"`` or an int >= 1.
    """
    if batch_size == "auto":
        budget = GPU_SCORE_FLOATS if device.type == "cuda" else CPU_SCORE_FLOATS
        return int(min(MAX_AUTO_EVAL_BATCH, max(1, budget // max(n_items, 1))))
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(
            f"eval.batch_size={batch_size!r} must be auto or a whole number >= 1 (e.g. eval.batch_size=256)."
        )
    return batch_size


def mask_keeping_targets(
    scores: torch.Tensor,
    rows: torch.Tensor,
    items: torch.Tensor,
    targets: torch.Tensor,
    value: float = float("-inf"),
) -> None:
    """Set the history items of each row to ``value`` (``-inf``: removed), in place, except the
    row's target.

    A target that repeats an item of the user's history (re-consumption: music, groceries) is
    ranked among the items the user has not seen yet, never masked into a miss, which would score
    a model zero for being right.

    Args:
        scores: ``[B, N]`` scores, column c = item c + 1.
        rows, items: ``[M]`` each, the history pairs (row in the batch, item id) to mask.
        targets: ``[B]`` item ids in 1..N.
    """
    columns = item_rows(targets).unsqueeze(1)  # [B, 1]
    kept = scores.gather(1, columns)  # [B, 1]
    scores[rows, item_rows(items)] = value
    scores.scatter_(1, columns, kept)


class NonFiniteScores(ValueError):
    """A target's score is NaN: the model's weights are no longer finite (training diverged)."""


def target_ranks(scores: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Pessimistic 1-based rank of each target among all items. Overwrites ``scores``.

    Args:
        scores: ``[B, N]`` float scores, column c = item c + 1; masked items hold ``-inf``.
            Used as scratch space (the count runs in place, one pass, no ``[B, N]`` copy).
        targets: ``[B]`` item ids in 1..N.

    Returns:
        ``[B]`` int64 ranks in 1..N: 1 + the number of other items that do not score *below* the
        target — items scoring greater than or equal, and items whose score is NaN (a NaN never
        ranks an item below the target) — or :data:`MASKED_RANK` where the target itself is
        masked. Exact for N < 2**24.

    Raises:
        NonFiniteScores: (a ``ValueError``) a target's score is NaN (the model diverged).
    """
    target_scores = scores.gather(1, item_rows(targets).unsqueeze(1))  # [B, 1]
    if torch.isnan(target_scores).any():
        raise NonFiniteScores("evaluation scores contain NaN: the model diverged (try a lower learning rate)")
    # s - t < 0 exactly when s < t (IEEE subtraction keeps the sign) and never when s is NaN, so
    # N - #{s < t} counts the target, every item scoring >= it and every NaN-scored item
    below = scores.sub_(target_scores).lt_(0).sum(dim=1).long()  # [B]
    ranks = scores.shape[1] - below
    return torch.where(torch.isneginf(target_scores.squeeze(1)), MASKED_RANK, ranks)


def metrics_from_ranks(ranks: torch.Tensor, ks: tuple[int, ...] = KS) -> dict[str, torch.Tensor]:
    """Per-user ``hr@k`` and ``ndcg@k`` (float ``[B]`` each) from 1-based ranks ``[B]``."""
    ranks_f = ranks.double()
    out = {}
    for k in ks:
        out[f"hr@{k}"] = (ranks <= k).double()
    for k in ks:
        out[f"ndcg@{k}"] = torch.where(ranks <= k, 1.0 / torch.log2(ranks_f + 1.0), torch.zeros_like(ranks_f))
    return out


@torch.no_grad()
def evaluate_ranks(
    model: torch.nn.Module,
    inputs: torch.Tensor,
    targets: torch.Tensor,
    history: Callable[[torch.Tensor], tuple[torch.Tensor, torch.Tensor]] | None,
    batch_size: int | str = "auto",
    autocast: Callable | None = None,
    rank_repeats: bool = True,
    history_score: float = float("-inf"),
) -> torch.Tensor:
    """Full-ranking ranks of the target of every user.

    Args:
        model: returns hidden states ``[B, L, d]`` and has ``output_table()`` ``[N, d]``
            (scored with :func:`seqrec.models.scoring.score_items`).
        inputs: ``[U, L]`` left-padded input sequences (on the model's device).
        targets: ``[U]`` target item ids.
        history: ``history(idx [B])`` → ``(batch_pos [M], items [M])``: ``idx`` are row indices
            into ``inputs`` (not user ids once a caller has sub-selected users), ``batch_pos`` the
            position of each pair's row within ``idx``, ``items`` the item ids to mask; or None
            for no masking (RecBole-style evaluation).
        batch_size: users scored at once (memory ≈ batch_size × N floats), or ``"auto"``
            (:func:`resolve_eval_batch_size`).
        autocast: optional context-manager factory for mixed precision.
        rank_repeats: a target that repeats a history item is ranked among the unseen items
            (default, :func:`mask_keeping_targets`); False masks it with the history, a miss at
            every k, as the CCE paper's code does.
        history_score: the score masked items get: ``-inf`` removes them from the ranking
            (default); ``0`` is what the S3-Rec and CCE public code does (``rating_pred[history]
            = 0``), which leaves them ranked above a target whose score is negative.

    Users are scored in length order with each batch's common left padding dropped (the same
    results: models are right-aligned, see :class:`seqrec.models.SASRec`; less work).

    Returns:
        ``[U]`` int64 ranks (see :func:`target_ranks`), in the order of ``inputs``.
    """
    was_training = model.training
    model.eval()
    device = inputs.device
    n_users, width = inputs.shape
    lengths = (inputs != 0).sum(1)  # [U]
    order = torch.argsort(lengths, stable=True)
    ranks = torch.empty(n_users, dtype=torch.long, device=device)
    batch_size = resolve_eval_batch_size(batch_size, model.output_table().shape[0], device)
    for idx in order.split(batch_size):
        seq = inputs[idx, width - max(int(lengths[idx].max()), 1) :]  # [B, w]
        scores = score_items(model, last_hidden(model, seq, autocast))  # [B, N]
        if history is not None:
            rows, items = history(idx)
            if rank_repeats:
                mask_keeping_targets(scores, rows, items, targets[idx], history_score)
            else:  # the paper's code: a target that repeats the history is masked with it (a miss)
                scores[rows, item_rows(items)] = history_score
        ranks[idx] = target_ranks(scores, targets[idx])
    model.train(was_training)
    return ranks


def mean_metrics(ranks: torch.Tensor, prefix: str = "", ks: tuple[int, ...] = KS) -> dict[str, float]:
    """Averages of :func:`metrics_from_ranks` over users as plain floats, keys ``prefix + 'hr@5'``…"""
    return {prefix + name: float(values.mean()) for name, values in metrics_from_ranks(ranks, ks).items()}
