"""What every sampled-negative loss shares: position selection and the positive/negative scores.

A loss of this family scores, at each selected position t, its positive item (the target) and
K sampled negatives against the hidden state: ``s⁺_t = h_t · e_pos`` and ``s⁻_{t,k} = h_t · e_k``
(``e`` = rows of the output table, item id i is row i - 1), from the ``K`` gathered item
vectors or, when K·d exceeds N, from the ``[P, N]`` scores of the catalogue (whichever is
smaller, :func:`negative_scores`).

Positions (the CCE paper's two families, Eq. 1-2): ``"all"`` scores every non-padding position
(SASRec's BCE, Eq. 20; CCE, Eq. 26); ``"last"`` only the last position of each row (GRU4Rec's
BPR/TOP1, Eq. 7-8; CE, Eq. 23). Batches are left-padded, so the last real position of a row is
column L - 1, used when its target is non-zero.

Accidental hits: a sampler that may return the row's own positive as a negative (popularity,
in-batch with duplicates) would ask the model to score the positive below itself. Such
negatives are masked (``valid [P, K]`` False) and every loss drops them from its sums, means and
softmaxes, as TensorFlow's ``remove_accidental_hits`` and RePlay do.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
from torch import Tensor

from seqrec.losses.base import Loss, check_positions, position_mask, variant_name
from seqrec.losses.samplers import NegativeBatch, Sampler
from seqrec.models.scoring import item_rows


@dataclass
class Scores:
    """Scores of the selected positions (P of them), in float32 (float64 for float64 inputs).

    Attributes:
        pos: ``[P]`` score of each position's positive item.
        neg: ``[P, K]`` scores of its sampled negatives.
        valid: ``[P, K]`` bool, False where a negative equals the positive (accidental hit).
        log_q: ``[P, K]`` log-probability of each negative under the sampler, or None.
        n_items: N, the catalogue size (rows of the output table).
    """

    pos: Tensor
    neg: Tensor
    valid: Tensor
    log_q: Tensor | None
    n_items: int


def check_num_negatives(num_negatives: int, name: str) -> int:
    """``num_negatives`` if it is an int >= 1, else ``ValueError`` naming it."""
    if isinstance(num_negatives, bool) or not isinstance(num_negatives, int) or num_negatives < 1:
        raise ValueError(
            f"{name} needs num_negatives >= 1 (a whole number of sampled negatives per position, "
            f"e.g. 64), got {num_negatives!r}"
        )
    return num_negatives


class SampledNegativeLoss(Loss):
    """Base of the losses over one positive and K sampled negatives per position.

    Subclasses set ``name`` and implement :meth:`per_position` on the :class:`Scores`; this
    class selects the positions, computes the scores and averages the per-position losses.
    An instance's ``name`` carries its variant and family (:func:`~seqrec.losses.base.variant_name`:
    ``bpr``, ``bpr-last``, ``bpr-k64-popularity``).

    Args:
        num_negatives: K, negatives per position (>= 1).
        positions: ``"all"`` or ``"last"`` (see the module docstring).
        sampler: draws the negatives (``loss/sampler=uniform|popularity|in_batch``; default uniform).

    Raises:
        ValueError: a bad ``num_negatives`` or ``positions``.
    """

    name = "sampled"

    def __init__(
        self, num_negatives: int = 1, positions: Literal["all", "last"] = "all", sampler: Sampler | None = None
    ):
        check_num_negatives(num_negatives, self.name)
        super().__init__(num_negatives=num_negatives, sampler=sampler)
        self.positions = check_positions(positions)
        self.name = variant_name(self, positions)

    def scores(self, hidden: Tensor, targets: Tensor, table: Tensor, negatives: NegativeBatch | None) -> Scores:
        """Scores of the positions selected by ``self.positions``.

        Args:
            hidden: ``[B, L, d]`` model outputs.
            targets: ``[B, L]`` item ids, 0 = padding.
            table: ``[N, d]`` output item vectors, item i = row i - 1.
            negatives: :class:`NegativeBatch` with ``items [B, L, K]``.

        Raises:
            ValueError: ``negatives`` missing or not ``[B, L, K]``.
        """
        if negatives is None:
            raise ValueError(f"loss {self.name} needs sampled negatives (a NegativeBatch), got None")
        items = negatives.items
        if items.dim() != 3 or items.shape[:2] != targets.shape:
            raise ValueError(
                f"negatives.items must be [B, L, K] = [{targets.shape[0]}, {targets.shape[1]}, K], "
                f"got {tuple(items.shape)}"
            )
        mask = position_mask(targets, self.positions)  # [B, L]
        h = hidden[mask]  # [P, d]
        pos_items, neg_items = targets[mask], items[mask]  # [P], [P, K]
        neg = negative_scores(h, table, neg_items)  # [P, K]
        # The positive in the precision the negatives' matmul ran in (bf16/fp16 under autocast:
        # inputs and output rounded, fp32 sums), so s+ and s- carry the same rounding (equal for
        # the same item up to the sums' order, within one unit in the last place) instead of s+
        # alone being exact. A no-op in fp32 and fp64.
        low, acc = neg.dtype, torch.promote_types(neg.dtype, torch.float32)
        pos = (h.to(low).to(acc) * table[item_rows(pos_items)].to(low).to(acc)).sum(-1).to(low)  # [P]
        dtype = torch.promote_types(pos.dtype, torch.float32)  # bf16 under autocast -> float32
        log_q = None if negatives.log_q is None else negatives.log_q[mask].to(dtype)  # [P, K]
        return Scores(pos.to(dtype), neg.to(dtype), neg_items != pos_items.unsqueeze(1), log_q, table.shape[0])

    def per_position(self, s: Scores) -> Tensor:
        """``[P]`` loss of each selected position."""
        raise NotImplementedError

    def forward(self, hidden: Tensor, targets: Tensor, table: Tensor, negatives: NegativeBatch | None = None) -> Tensor:
        """Mean over the selected positions of :meth:`per_position`.

        Args:
            hidden: ``[B, L, d]``; targets: ``[B, L]`` (0 = padding); table: ``[N, d]``;
            negatives: ``items [B, L, K]`` (and ``log_q`` where the loss uses it).

        Returns:
            Scalar float32. Without any selected position a zero that stays attached to the
            graph (``backward()`` gives zero gradients).
        """
        s = self.scores(hidden, targets, table, negatives)
        if s.pos.numel() == 0:
            return hidden.sum() * 0.0 + table.sum() * 0.0
        return self.per_position(s).mean()


def negative_scores(h: Tensor, table: Tensor, items: Tensor) -> Tensor:
    """``[P, K]`` scores ``h_p · e_{items[p, k]}`` of ``h [P, d]`` against items ``[P, K]`` (ids 1..N).

    Two ways to the same numbers; the one that moves fewer floats is taken. Gathering the K
    item vectors of every position costs ``P·K·d`` floats; scoring all N items and picking K
    costs ``P·N``. With K = 256 and d = 64 on LastFM (N = 3,646) the second is 4.5× smaller
    (a 256-user batch: 190 MB instead of 840 MB); with 1M items the first is.
    """
    n_items, d = table.shape
    if items.shape[1] * d > n_items:
        return (h @ table.T).gather(1, item_rows(items))  # [P, N] -> [P, K]
    return torch.einsum("pd,pkd->pk", h, table[item_rows(items)])


def masked_mean(values: Tensor, valid: Tensor) -> Tensor:
    """``[P]`` mean over the valid entries of each row of ``values [P, K]`` (0 for a row with none)."""
    count = valid.sum(1).clamp(min=1)
    return torch.where(valid, values, torch.zeros_like(values)).sum(1) / count


def masked_log_softmax(scores: Tensor, valid: Tensor) -> Tensor:
    """``[P, K]`` log-softmax over the valid entries of each row (invalid entries get -inf)."""
    return torch.log_softmax(scores.masked_fill(~valid, float("-inf")), dim=1)
