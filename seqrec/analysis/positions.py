"""Accuracy at every position of the input, the measurement behind RQ3 of Li et al. (AAAI 2023)
(Fig. 1c and Fig. 3); :mod:`seqrec.analysis.rq3` runs it over finished runs and draws the figure.

For a trained model and each user, the input is the test input (the most recent ``L`` items of
``s[:-1]``, left-padded, ``L = dataset.max_len`` = 50) and the model's hidden state at position
``t`` (1-based) is scored against the item at position ``t + 1``, i.e. the last ``L`` items of
``s[1:]``: position ``L`` → the test item ``s[-1]``, ``L - 1`` → the validation item ``s[-2]``,
``≤ L - 2`` → training items. Ranking is full ranking over all items with the project's
pessimistic tie rule (:func:`seqrec.evaluation.target_ranks`). Each position's HR@10/NDCG@10 is
the mean over the users that have an item there (``n_users``); short users only reach the right
end of the window.

History masking (``mask_history``, default: the run's ``eval.mask_history``, true in the paper's
Table 2 protocol): at each position every item the user interacted with *before that position's
target* (the full past, not only the window) is removed from the ranking. A target the user had
already consumed follows the run's ``eval.rank_repeats``, as in :mod:`seqrec.evaluation`: ranked
among the unseen items (true, the default) or masked with the past, a miss (false, the paper's
protocol, ``experiment=table2``). Position ``L`` thus gives exactly the run's test metrics. The
paper's code for Fig. 3 did not mask; ``--no-mask`` reproduces that.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch

from seqrec.data import LeaveOneOut
from seqrec.data.csr import expand
from seqrec.evaluation import metrics_from_ranks, target_ranks
from seqrec.models.scoring import item_rows, score_items

# Floats in one [rows, N] score matrix: 2^26 × 4 bytes = 256 MiB.
MAX_SCORES = 2**26


def position_targets(split: LeaveOneOut) -> tuple[torch.Tensor, torch.Tensor]:
    """Inputs and per-position targets: ``(test_input [U, L], targets [U, L])``.

    ``targets[:, t]`` is the item after ``test_input[:, t]`` (the input shifted left by one, then
    the test item), and 0 where the input is padding (no prediction is made there).
    """
    inputs = split.test_input
    shifted = torch.cat([inputs[:, 1:], split.test_target[:, None]], dim=1)  # [U, L]
    return inputs, torch.where(inputs != 0, shifted, torch.zeros_like(shifted))


def _history(split: LeaveOneOut, users: torch.Tensor, first: int) -> tuple[torch.Tensor, ...]:
    """The items to mask at window positions ``first..L-1`` of the users ``[B]``.

    For a user with ``n`` items the target at 0-based position ``t`` is ``s[n - L + t]``, so the
    item ``s[i]`` is history for every ``t >= i - n + L + 1``. Items older than the window's first
    target are history at every position: they come back per user, ``(b, item)``, so a long past
    costs one entry per item, not one per item and position. The rest (at most ``L`` per user) come
    back per position, ``(b, t, item)``. Repeated items repeat (harmless).

    Returns:
        ``(old_b [M1], old_item [M1], b [M2], t [M2], item [M2])``.
    """
    L = split.max_len
    device = users.device
    starts = split.offsets[users]
    n = split.offsets[users + 1] - starts  # [B]
    b, idx = expand(n)  # [M]: the user's row, the position in its sequence s
    item = split.items[starts[b] + idx]  # [M]
    t0 = idx - n[b] + L + 1  # first position where s[idx] is history
    old = t0 <= first
    recent_b, recent_item, t0 = b[~old], item[~old], t0[~old]
    count = L - t0  # [M'] >= 1: positions t0..L-1
    src = torch.repeat_interleave(torch.arange(len(t0), device=device), count)  # [M2]
    t = t0[src] + torch.arange(len(src), device=device) - (torch.cumsum(count, 0) - count)[src]
    return b[old], item[old], recent_b[src], t, recent_item[src]


@torch.no_grad()
def position_ranks(
    model: torch.nn.Module,
    split: LeaveOneOut,
    mask_history: bool = True,
    max_scores: int = MAX_SCORES,
    rank_repeats: bool = True,
) -> torch.Tensor:
    """Full-ranking rank of the target at every input position of every user.

    Users go in length order, batched so that one score matrix ``[rows, N]`` holds about
    ``max_scores`` floats (at most ``max_scores + L·N``; masking adds a bool matrix of the same
    shape), and each batch drops its common left padding (the models' outputs at real positions
    do not change).

    Args:
        model: returns hidden states ``[B, L, d]`` and has ``output_table()`` ``[N, d]``
            (scored with :func:`seqrec.models.scoring.score_items`, as in evaluation).
        split: the run's leave-one-out split (on the model's device).
        mask_history: remove each target's past items from its ranking (see module docstring).
        max_scores: memory bound in floats.
        rank_repeats: with ``mask_history``, rank a target that repeats a past item among the
            unseen items (True) or mask it with the past (False: rank ``MASKED_RANK``, a miss).

    Returns:
        ``[U, L]`` int64 ranks (1..N, or ``MASKED_RANK`` for a masked repeat), 0 where there is
        no target.
    """
    was_training = model.training
    model.eval()
    inputs, targets = position_targets(split)
    n_users, L = inputs.shape
    n_items = model.output_table().shape[0]
    lengths = (inputs != 0).sum(1)  # [U] = number of targets of each user
    order = torch.argsort(lengths, stable=True)
    max_rows = max(L, max_scores // n_items)
    batch_of = (torch.cumsum(lengths[order], 0) - 1).clamp(min=0) // max_rows  # [U], non-decreasing
    counts = torch.unique_consecutive(batch_of, return_counts=True)[1]
    ranks = torch.zeros(n_users, L, dtype=torch.long, device=inputs.device)
    for users in order.split(counts.tolist()):
        width = max(int(lengths[users].max()), 1)
        first = L - width
        tgt = targets[users, first:]  # [B, w]
        hidden = model(inputs[users, first:])  # [B, w, d]
        b, t = (tgt != 0).nonzero(as_tuple=True)  # [R] each
        scores = score_items(model, hidden[b, t])  # [R, N]
        if mask_history:
            _mask_past(scores, split, users, first, tgt, b, t, rank_repeats)
        ranks[users[b], first + t] = target_ranks(scores, tgt[b, t])
    model.train(was_training)
    return ranks


def _mask_past(
    scores: torch.Tensor,
    split: LeaveOneOut,
    users: torch.Tensor,
    first: int,
    tgt: torch.Tensor,
    b: torch.Tensor,
    t: torch.Tensor,
    rank_repeats: bool,
) -> None:
    """Set to -inf, in place, each row's items the user consumed before that row's target.

    Args:
        scores: ``[R, N]``, row r scores the target ``tgt[b[r], t[r]]``.
        users: ``[B]`` the batch's users; ``first``: the window's first kept position.
        tgt: ``[B, w]`` targets of the trimmed window; ``b``, ``t``: ``[R]`` each row's position.
        rank_repeats: put a target that the past masked back (ranked), else it stays a miss.
    """
    n_items = scores.shape[1]
    columns = item_rows(tgt[b, t]).unsqueeze(1)  # [R, 1]: each row's target
    kept = scores.gather(1, columns)
    old_b, old_item, hb, ht, hitem = _history(split, users, first)
    seen = torch.zeros(len(users), n_items, dtype=torch.bool, device=tgt.device)  # [B, N]
    seen[old_b, item_rows(old_item)] = True
    scores.masked_fill_(seen[b], float("-inf"))  # the past before the window: every row
    row_of = torch.full(tgt.shape, -1, dtype=torch.long, device=tgt.device)  # [B, w]
    row_of[b, t] = torch.arange(len(b), device=tgt.device)
    rows = row_of[hb, ht - first]  # -1: a position without a target
    keep = rows >= 0
    scores[rows[keep], item_rows(hitem[keep])] = float("-inf")
    if rank_repeats:
        scores.scatter_(1, columns, kept)


def per_position_metrics(ranks: torch.Tensor, k: int = 10) -> pd.DataFrame:
    """Mean HR@k and NDCG@k per position over the users with a target there.

    Args:
        ranks: ``[U, L]`` from :func:`position_ranks` (0 = no target).

    Returns:
        One row per position: ``position`` (1..L), ``ndcg@k``, ``hr@k`` (NaN without users),
        ``n_users``.
    """
    has = ranks > 0  # [U, L]
    per_entry = metrics_from_ranks(ranks.clamp(min=1), ks=(k,))
    n = has.sum(0)  # [L]
    mean = {
        name: (torch.where(has, v, torch.zeros_like(v)).sum(0) / n).cpu().numpy()  # NaN where n = 0
        for name, v in per_entry.items()
    }
    return pd.DataFrame(
        {
            "position": np.arange(1, ranks.shape[1] + 1),
            f"ndcg@{k}": mean[f"ndcg@{k}"],
            f"hr@{k}": mean[f"hr@{k}"],
            "n_users": n.cpu().numpy().astype(np.int64),
        }
    )
