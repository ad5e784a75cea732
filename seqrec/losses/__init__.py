"""Training losses: ``nn.Module``s with one signature (:mod:`seqrec.losses.base`),
``loss(hidden [B, L, d], targets [B, L], table [N, d], negatives: NegativeBatch | None) -> scalar``.

``cce`` (Eq. 26), ``ce`` (Eq. 23) and ``bce`` (Eq. 20) of the CCE paper; ``bpr``, ``top1``
(Eq. 7-8), ``bpr_max``, ``top1_max`` (Eq. 11-12), ``sampled_softmax`` and ``gbce`` (gSASRec). A
loss declares ``name``, ``positions`` (``all``/``last``), ``num_negatives`` (0 = none) and its
``sampler``.
"""

from seqrec.losses.base import Loss
from seqrec.losses.gbce import GBCE
from seqrec.losses.pairwise import BPR, TOP1, BPRMax, TOP1Max
from seqrec.losses.sampled import BCE
from seqrec.losses.sampled_softmax import SampledSoftmax
from seqrec.losses.softmax import CCE, CE, softmax_cross_entropy

__all__ = [
    "BCE",
    "BPR",
    "BPRMax",
    "CE",
    "CCE",
    "GBCE",
    "Loss",
    "SampledSoftmax",
    "TOP1",
    "TOP1Max",
    "softmax_cross_entropy",
]
