"""Training losses: ``nn.Module``s with one signature (:mod:`seqrec.losses.base`),
``loss(hidden [B, L, d], targets [B, L], table [N, d], negatives: NegativeBatch | None) -> scalar``.

``cce`` (Eq. 26), ``ce`` (Eq. 23) and ``bce`` (Eq. 20) of the CCE paper. A loss declares
``name``, ``positions`` (``all``/``last``), ``num_negatives`` (0 = none) and its ``sampler``.
"""

from seqrec.losses.base import Loss
from seqrec.losses.sampled import BCE
from seqrec.losses.softmax import CCE, CE, softmax_cross_entropy

__all__ = ["BCE", "CE", "CCE", "Loss", "softmax_cross_entropy"]
