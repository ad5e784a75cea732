"""Full-catalogue softmax losses: CE on the last position (Eq. 23) and CCE on all positions (Eq. 26).

Li, Yu, Zeng, Yang, "Effective and Efficient Training for Sequential Recommendation Using
Cumulative Cross-Entropy Loss". The catalogue is the real items 1..N: the padding row 0 of the
item table is never a class, so logits are ``hidden @ item_emb[1:].T`` and class ``c`` is item
``c + 1``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from seqrec.losses.chunked import chunked_cross_entropy


def softmax_cross_entropy(
    hidden: torch.Tensor, targets: torch.Tensor, item_emb: torch.Tensor, chunk_size: int | None = None
) -> torch.Tensor:
    """Mean softmax cross-entropy of ``hidden [P, d]`` against items ``targets [P]`` (ids 1..N).

    Args:
        hidden: ``[P, d]`` hidden states, only the positions that have a target.
        targets: ``[P]`` item ids in 1..N.
        item_emb: ``[N + 1, d]`` item table, row 0 = padding (excluded from the classes).
        chunk_size: if set, compute the log-sum-exp over chunks of this many items so the extra
            memory stays at ``P × chunk_size`` floats (same value and gradients).

    Returns:
        Scalar float32 loss (0 when P == 0, still attached to the graph).
    """
    weight = item_emb[1:]  # [N, d]; a view, gradients flow into the embedding
    classes = targets - 1  # [P]
    if chunk_size is None:
        if hidden.shape[0] == 0:
            return hidden.sum() * 0.0
        logits = hidden @ weight.T  # [P, N]
        return F.cross_entropy(logits.float(), classes)
    return chunked_cross_entropy(hidden, weight, classes, chunk_size)


class CCE:
    """Cumulative cross-entropy (Eq. 26): full-catalogue softmax CE at every non-padding position.

    ``L = mean over positions t with targets[t] != 0 of -log softmax(h_t · E[1:]^T)[target_t]``.
    Hidden states of padding positions are dropped *before* the item table is multiplied in, so
    the logits are ``[P, N]`` with P = number of real positions, never ``[B, L, N]``.

    Args:
        chunk_size: optional item-chunk size for the memory-bounded computation
            (``seqrec.losses.chunked``); ``None`` computes all logits at once.
    """

    name = "cce"
    num_negatives = 0

    def __init__(self, chunk_size: int | None = None):
        self.chunk_size = chunk_size

    def __call__(
        self,
        hidden: torch.Tensor,
        targets: torch.Tensor,
        item_emb: torch.Tensor,
        mask: torch.Tensor | None = None,
        negatives: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """hidden ``[B, L, d]``, targets ``[B, L]`` (0 = padding), item_emb ``[N+1, d]``,
        mask ``[B, L]`` bool (default ``targets != 0``). Returns a scalar."""
        mask = targets != 0 if mask is None else mask
        return softmax_cross_entropy(hidden[mask], targets[mask], item_emb, self.chunk_size)


class CE:
    """Cross-entropy on the last timestamp only (Eq. 23), over the full catalogue.

    Uses the last column of the left-padded batch, i.e. the most recent training target of each
    sequence; rows whose last target is padding (no training target) are ignored.

    Args:
        chunk_size: as in :class:`CCE`.
    """

    name = "ce"
    num_negatives = 0
    last_position_only = True  # one loss term per sequence (the trainer weights batches by it)

    def __init__(self, chunk_size: int | None = None):
        self.chunk_size = chunk_size

    def __call__(
        self,
        hidden: torch.Tensor,
        targets: torch.Tensor,
        item_emb: torch.Tensor,
        mask: torch.Tensor | None = None,
        negatives: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Same signature as :class:`CCE`; only position ``L - 1`` contributes."""
        last_hidden, last_target = hidden[:, -1], targets[:, -1]  # [B, d], [B]
        keep = last_target != 0 if mask is None else mask[:, -1]
        return softmax_cross_entropy(last_hidden[keep], last_target[keep], item_emb, self.chunk_size)
