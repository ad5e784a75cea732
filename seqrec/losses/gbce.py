"""gBCE: binary cross-entropy with K negatives and a calibrated positive term (gSASRec).

Petrov & Macdonald, "gSASRec: Reducing Overconfidence in Sequential Recommendation Trained
with Negative Sampling" (RecSys 2023). Sampling K of the N - 1 non-positive items makes BCE
(CCE paper Eq. 20) overestimate the probability of the positive. gBCE raises the positive's
probability to a power β:

    L = -log σ(s⁺)^β - Σ_k log(1 - σ(s⁻_k)) = -β log σ(s⁺) - Σ_k log σ(-s⁻_k),

    β = α (t (1 - 1/α) + 1/α),  α = K / (N - 1)  (the sampling rate),

with the calibration parameter t ∈ [0, 1]: t = 0 gives β = 1 (plain BCE), t = 1 gives β = α
(fully calibrated). The authors' code (github.com/asash/gSASRec-pytorch, ``gbce.py``) computes the
same ``β · softplus(-s⁺) + softplus(s⁻)``; it averages over the K + 1 scores of a position where
this module sums over the negatives and averages over positions, like :class:`seqrec.losses.BCE`
(a constant factor, which Adam's updates ignore). Its training script passes the catalogue
size minus one as N, a 1-item difference in α that this module does not copy.
"""

from __future__ import annotations

from typing import Literal

import torch.nn.functional as F
from torch import Tensor

from seqrec.losses.negatives import SampledNegativeLoss, Scores
from seqrec.losses.samplers import Sampler


def gbce_beta(num_negatives: int, n_items: int, t: float) -> float:
    """β = α (t (1 - 1/α) + 1/α) with α = K / (N - 1) (gSASRec paper, Section 4).

    Args:
        num_negatives: K; n_items: catalogue size N (> K); t: calibration parameter in [0, 1].

    Raises:
        ValueError: ``n_items <= num_negatives`` (α would exceed 1).
    """
    if n_items <= num_negatives:
        raise ValueError(f"gBCE needs fewer negatives than other items: K={num_negatives}, N={n_items}")
    alpha = num_negatives / (n_items - 1)
    return alpha * (t * (1 - 1 / alpha) + 1 / alpha)


def gbce_loss(pos: Tensor, neg: Tensor, valid: Tensor, beta: float) -> Tensor:
    """``-β log σ(s⁺) - Σ_k log σ(-s⁻_k)`` per position (the sum over valid negatives).

    Args:
        pos: ``[P]``; neg, valid: ``[P, K]``; beta: β from :func:`gbce_beta`.

    Returns:
        ``[P]`` losses.
    """
    return -beta * F.logsigmoid(pos) - (F.logsigmoid(-neg) * valid).sum(1)


class GBCE(SampledNegativeLoss):
    """Generalised BCE of gSASRec with K sampled negatives.

    Args:
        num_negatives: K (gSASRec uses 256). positions: ``"all"`` (gSASRec) or ``"last"``.
        t: calibration parameter in [0, 1] (gSASRec's default 0.75).

    Raises:
        ValueError: ``t`` outside [0, 1] (and as :class:`SampledNegativeLoss`); K >= N in
            :meth:`bind_catalogue` (the pipeline calls it before training) or in forward.
    """

    name = "gbce"

    def __init__(
        self,
        num_negatives: int = 256,
        positions: Literal["all", "last"] = "all",
        t: float = 0.75,
        sampler: Sampler | None = None,
    ):
        super().__init__(num_negatives, positions, sampler)
        if not 0.0 <= t <= 1.0:
            raise ValueError(
                f"t={t!r} is not valid: gBCE's calibration parameter must be in [0, 1] "
                "(0 = plain BCE, 1 = fully calibrated; gSASRec uses 0.75)"
            )
        self.t = float(t)

    def bind_catalogue(self, n_items: int) -> None:
        """Check K < N once, before training (β itself depends on N only and is cheap)."""
        self._beta(n_items)

    def _beta(self, n_items: int) -> float:
        try:
            return gbce_beta(self.num_negatives, n_items, self.t)
        except ValueError:
            raise ValueError(
                f"num_negatives={self.num_negatives} is too large for gBCE on a catalogue of {n_items} "
                f"items: α = K / (N - 1) must be <= 1. Set loss.num_negatives to at most {n_items - 1}."
            ) from None

    def per_position(self, s: Scores) -> Tensor:
        return gbce_loss(s.pos, s.neg, s.valid, self._beta(s.n_items))
