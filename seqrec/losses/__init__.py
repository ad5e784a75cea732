"""Training losses with one signature: ``loss(hidden [B, L, d], targets [B, L], item_emb [N+1, d],
mask [B, L] | None, negatives [B, L, K] | None) -> scalar``.

``cce`` (Eq. 26), ``ce`` (Eq. 23) and ``bce`` (Eq. 20) of the CCE paper. A loss exposes
``name`` and ``num_negatives`` (0 when it needs no sampled negatives).
"""

from seqrec.losses.sampled import BCE
from seqrec.losses.softmax import CCE, CE, softmax_cross_entropy

__all__ = ["BCE", "CE", "CCE", "softmax_cross_entropy"]
