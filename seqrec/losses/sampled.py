"""Sampled-negative binary cross-entropy (SASRec's loss; CCE paper Eq. 20)."""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F

from seqrec.losses.negatives import SampledNegativeLoss, Scores
from seqrec.losses.samplers import Sampler


class BCE(SampledNegativeLoss):
    """Binary cross-entropy with sampled negatives at every non-padding position (Eq. 20).

    For each selected position t with positive score ``s⁺_t`` and negative scores ``s⁻_{t,k}``:
    ``-log σ(s⁺_t) - Σ_k log(1 - σ(s⁻_{t,k}))``, averaged over the positions (the paper's code uses
    K = 1 and ``log(σ(x) + 1e-24)``; this uses the exact, stable ``logsigmoid``). The paper draws
    negatives uniformly among the items that are not in the user's training sequence
    (``loss/sampler=uniform``, the default), which never returns the positive. With a sampler
    that can (``popularity``, ``in_batch``), a negative equal to the positive is an accidental hit
    and drops out of the sum, as in every loss of the sampled family
    (:class:`~seqrec.losses.negatives.SampledNegativeLoss`).

    Args:
        num_negatives: K, negatives per position (1 in the paper).
        sampler: where negatives come from (default :class:`~seqrec.losses.samplers.UniformSampler`).
        positions: ``"all"`` (the paper's BCE, Eq. 20) or ``"last"`` (the last position only;
            named ``bce-last``).

    Raises:
        ValueError: ``num_negatives`` < 1 or a bad ``positions``.
    """

    name = "bce"

    def __init__(
        self, num_negatives: int = 1, sampler: Sampler | None = None, positions: Literal["all", "last"] = "all"
    ):
        super().__init__(num_negatives=num_negatives, positions=positions, sampler=sampler)

    def per_position(self, s: Scores) -> torch.Tensor:
        """``[P]``: ``-log σ(s⁺) - Σ_{valid k} log σ(-s⁻_k)``."""
        negatives = F.logsigmoid(-s.neg).masked_fill(~s.valid, 0.0).sum(-1)  # [P]
        return -F.logsigmoid(s.pos) - negatives
