"""GRU4Rec's pairwise ranking losses: BPR, TOP1 and their softmax-weighted forms BPR-max, TOP1-max.

BPR and TOP1: Hidasi et al., "Session-based Recommendations with Recurrent Neural Networks"
(ICLR 2016), the CCE paper's Eq. 7-8. BPR-max and TOP1-max: Hidasi & Karatzoglou, "Recurrent
Neural Networks with Top-k Gains for Session-based Recommendations" (CIKM 2018), the CCE paper's
Eq. 11-12. Each compares the positive score ``s⁺`` of a position with the scores ``s⁻_j`` of its
K sampled negatives (the paper's N_s); ``b_{+,-} = s⁺ - s⁻_j`` and ``b_{-,+} = s⁻_j - s⁺``.

The regularisation terms the CCE paper omits "for readability" are included as in GRU4Rec:
TOP1 pushes negative scores towards 0 with ``σ(s⁻_j²)``, TOP1-max weights that term with the
softmax scores, BPR-max adds ``λ Σ_j w_j s⁻_j²`` (``bpreg``). None of them depends on ``s⁺``, so
the paper's gradients w.r.t. the positive score (Eq. 9, 10, 13, 14) hold unchanged.

Every loss takes ``positions="all"`` (every non-padding position, like SASRec's BCE) or
``"last"`` (GRU4Rec's original last-position training); see :mod:`seqrec.losses.negatives`.
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor

from seqrec.losses.negatives import SampledNegativeLoss, Scores, masked_log_softmax, masked_mean
from seqrec.losses.samplers import Sampler


def bpr_loss(pos: Tensor, neg: Tensor, valid: Tensor) -> Tensor:
    """BPR (Eq. 7): ``-(1/K) Σ_j log σ(s⁺ - s⁻_j)`` per position.

    Args:
        pos: ``[P]`` positive scores; neg: ``[P, K]`` negative scores; valid: ``[P, K]`` bool
            (the mean runs over the valid negatives only).

    Returns:
        ``[P]`` losses.
    """
    return masked_mean(-F.logsigmoid(pos.unsqueeze(1) - neg), valid)


def top1_loss(pos: Tensor, neg: Tensor, valid: Tensor) -> Tensor:
    """TOP1 (Eq. 8 with GRU4Rec's regularisation): ``(1/K) Σ_j [σ(s⁻_j - s⁺) + σ(s⁻_j²)]``.

    Args/returns as :func:`bpr_loss`.
    """
    return masked_mean(torch.sigmoid(neg - pos.unsqueeze(1)) + torch.sigmoid(neg.square()), valid)


def _softmax_weights(neg: Tensor, valid: Tensor) -> tuple[Tensor, Tensor]:
    """``(log w [P, K], has_negative [P])``: log-softmax of the valid negative scores; a row
    without a valid negative gets finite dummy weights and ``has_negative`` False."""
    has_negative = valid.any(1)  # [P]
    usable = valid | ~has_negative.unsqueeze(1)
    return masked_log_softmax(neg, usable), has_negative


def bpr_max_loss(pos: Tensor, neg: Tensor, valid: Tensor, bpreg: float = 1.0) -> Tensor:
    """BPR-max (Eq. 11) with its score regularisation, per position:

    ``-log Σ_j w_j σ(s⁺ - s⁻_j) + bpreg · Σ_j w_j (s⁻_j)²``, ``w = softmax(s⁻)`` over the valid
    negatives (Hidasi & Karatzoglou 2018, Eq. 9 and 11 there). The log-sum is taken as a
    log-sum-exp of ``log w_j + log σ(s⁺ - s⁻_j)`` (no underflow for large score gaps). The
    weights are not detached: gradients flow through the softmax, as in the paper.

    Args:
        pos, neg, valid: as :func:`bpr_loss`. bpreg: λ >= 0.

    Returns:
        ``[P]`` losses (0 for a position without a valid negative).
    """
    log_w, has_negative = _softmax_weights(neg, valid)  # [P, K], [P]
    terms = log_w + F.logsigmoid(pos.unsqueeze(1) - neg)  # [P, K]; -inf where a negative is masked
    loss = -torch.logsumexp(terms, dim=1) + bpreg * (log_w.exp() * neg.square()).sum(1)  # [P]
    return torch.where(has_negative, loss, torch.zeros_like(loss))


def top1_max_loss(pos: Tensor, neg: Tensor, valid: Tensor) -> Tensor:
    """TOP1-max (Eq. 12) with TOP1's regularisation weighted the same way, per position:

    ``Σ_j w_j [σ(s⁻_j - s⁺) + σ(s⁻_j²)]``, ``w = softmax(s⁻)`` over the valid negatives
    (Hidasi & Karatzoglou 2018, Eq. 7 there).

    Returns:
        ``[P]`` losses (0 for a position without a valid negative).
    """
    log_w, has_negative = _softmax_weights(neg, valid)
    loss = (log_w.exp() * (torch.sigmoid(neg - pos.unsqueeze(1)) + torch.sigmoid(neg.square()))).sum(1)
    return torch.where(has_negative, loss, torch.zeros_like(loss))


class BPR(SampledNegativeLoss):
    """Bayesian personalised ranking with K sampled negatives (CCE paper Eq. 7).

    Args:
        num_negatives: K. positions: ``"all"`` or ``"last"``.
    """

    name = "bpr"

    def per_position(self, s: Scores) -> Tensor:
        return bpr_loss(s.pos, s.neg, s.valid)


class TOP1(SampledNegativeLoss):
    """GRU4Rec's TOP1 with its score regularisation (CCE paper Eq. 8).

    Args:
        num_negatives: K. positions: ``"all"`` or ``"last"``.
    """

    name = "top1"

    def per_position(self, s: Scores) -> Tensor:
        return top1_loss(s.pos, s.neg, s.valid)


class BPRMax(SampledNegativeLoss):
    """BPR-max (CCE paper Eq. 11; Hidasi & Karatzoglou 2018) with ``bpreg · Σ_j w_j s⁻_j²``.

    Args:
        num_negatives: K. positions: ``"all"`` or ``"last"``.
        bpreg: λ of the score regularisation (>= 0; GRU4Rec's default 1.0).

    Raises:
        ValueError: ``bpreg < 0`` (and as :class:`SampledNegativeLoss`).
    """

    name = "bpr_max"

    def __init__(
        self,
        num_negatives: int = 64,
        positions: Literal["all", "last"] = "all",
        bpreg: float = 1.0,
        sampler: Sampler | None = None,
    ):
        super().__init__(num_negatives, positions, sampler)
        if not bpreg >= 0:
            raise ValueError(
                f"bpreg={bpreg!r} is not valid: BPR-max's score regularisation weight must be "
                ">= 0 (GRU4Rec uses 1.0; 0 switches it off)"
            )
        self.bpreg = float(bpreg)

    def per_position(self, s: Scores) -> Tensor:
        return bpr_max_loss(s.pos, s.neg, s.valid, self.bpreg)


class TOP1Max(SampledNegativeLoss):
    """TOP1-max (CCE paper Eq. 12; Hidasi & Karatzoglou 2018) with its weighted regularisation.

    Args:
        num_negatives: K. positions: ``"all"`` or ``"last"``.
    """

    name = "top1_max"

    def __init__(
        self, num_negatives: int = 64, positions: Literal["all", "last"] = "all", sampler: Sampler | None = None
    ):
        super().__init__(num_negatives, positions, sampler)

    def per_position(self, s: Scores) -> Tensor:
        return top1_max_loss(s.pos, s.neg, s.valid)
