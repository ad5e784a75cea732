"""Sampled softmax: cross-entropy over the positive and K sampled negatives, with optional logQ.

Full-catalogue CE/CCE (CCE paper Eq. 23, 26) normalises over all N items; sampled softmax
normalises over the positive and K sampled negatives only, so a position costs K + 1 dot
products instead of N (Jean et al., ACL 2015; Bengio & Senécal, IEEE TNN 2008).

logQ correction (``logq=True``): a sampler that prefers some items (popularity, in-batch)
makes them over-represented among the negatives. Importance sampling corrects the estimate of
the softmax's normaliser, ``Σ_{j≠pos} exp(s_j) ≈ (1/K) Σ_k exp(s⁻_k) / q_k``, i.e. each sampled
negative's logit becomes ``s⁻_k - log(K q_k)`` while the positive keeps ``s⁺`` (Bengio & Senécal
2008; Blanc & Rendle, ICML 2018, Eq. 2 there; Yi et al., RecSys 2019, apply the same
``- log q`` to in-batch candidates). With the ``log K`` the corrected loss is a consistent
estimate of full-catalogue CE: when the K negatives are every other item once with
``q = 1/K``, it *is* CE (tested). ``q`` comes from the sampler (``NegativeBatch.log_q``).
"""

from __future__ import annotations

import math
from typing import Literal

import torch
from torch import Tensor

from seqrec.losses.base import variant_name
from seqrec.losses.negatives import SampledNegativeLoss, Scores
from seqrec.losses.samplers import Sampler


def sampled_softmax_loss(pos: Tensor, neg: Tensor, valid: Tensor, log_q: Tensor | None = None) -> Tensor:
    """``-log softmax([s⁺, s⁻_1 - c_1, …, s⁻_K - c_K])[0]`` per position.

    Args:
        pos: ``[P]`` positive scores; neg: ``[P, K]`` negative scores; valid: ``[P, K]`` bool
            (invalid negatives, i.e. copies of the positive, are left out of the softmax).
        log_q: ``[P, K]`` log-probability of each negative under the sampler, or None for no
            correction; with it ``c_k = log K + log_q_k``.

    Returns:
        ``[P]`` losses, in nats.
    """
    if log_q is not None:
        neg = neg - (log_q + math.log(neg.shape[1]))
    logits = torch.cat([pos.unsqueeze(1), neg.masked_fill(~valid, float("-inf"))], dim=1)  # [P, 1 + K]
    return torch.logsumexp(logits, dim=1) - pos


class SampledSoftmax(SampledNegativeLoss):
    """Softmax cross-entropy over the positive and K sampled negatives (optionally logQ-corrected).

    Args:
        num_negatives: K (e.g. 256). positions: ``"all"`` or ``"last"``.
        logq: subtract ``log(K q)`` from each negative's logit (see the module docstring); needs
            a sampler that reports ``log_q``.

    Raises:
        ValueError: as :class:`SampledNegativeLoss`.
        ValueError (in forward): ``logq`` is on but the negatives carry no ``log_q``.
    """

    name = "sampled_softmax"

    def __init__(
        self,
        num_negatives: int = 256,
        positions: Literal["all", "last"] = "all",
        logq: bool = False,
        sampler: Sampler | None = None,
    ):
        super().__init__(num_negatives, positions, sampler)
        self.logq = bool(logq)
        if self.logq:  # a different objective: its own name (sampled_softmax-logq)
            self.name = variant_name(self, positions, ("logq",))

    def per_position(self, s: Scores) -> Tensor:
        if self.logq and s.log_q is None:
            raise ValueError(
                "loss.logq=true needs the sampler's log-probabilities, but the negatives carry "
                "no log_q; use a sampler that reports them (uniform, popularity, in_batch)."
            )
        return sampled_softmax_loss(s.pos, s.neg, s.valid, s.log_q if self.logq else None)
