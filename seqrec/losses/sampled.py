"""Sampled-negative binary cross-entropy (SASRec's loss; CCE paper Eq. 20)."""

from __future__ import annotations

import torch
import torch.nn.functional as F


class BCE:
    """Binary cross-entropy with sampled negatives at every non-padding position (Eq. 20).

    For each real position t with positive item p_t and negatives n_{t,1..K}:
    ``-log σ(r_{t,p}) - Σ_k log(1 - σ(r_{t,n_k}))``, averaged over the real positions
    (the paper's code uses K = 1 and ``log(σ(x) + 1e-24)``; this uses the exact, stable
    ``logsigmoid``). Negatives are drawn by the trainer, uniformly among the items that are not
    in the user's training sequence, from a seeded generator.

    Args:
        num_negatives: K, negatives per position (1 in the paper).
    """

    name = "bce"

    def __init__(self, num_negatives: int = 1):
        if num_negatives < 1:
            raise ValueError(f"BCE needs num_negatives >= 1, got {num_negatives}")
        self.num_negatives = num_negatives

    def __call__(
        self,
        hidden: torch.Tensor,
        targets: torch.Tensor,
        item_emb: torch.Tensor,
        mask: torch.Tensor | None = None,
        negatives: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """hidden ``[B, L, d]``, targets ``[B, L]`` (0 = padding), item_emb ``[N+1, d]``,
        negatives ``[B, L, K]`` item ids. Returns a scalar.

        Raises:
            ValueError: if ``negatives`` is missing.
        """
        if negatives is None:
            raise ValueError("BCE needs sampled negatives [B, L, K]")
        mask = targets != 0 if mask is None else mask
        h = hidden[mask]  # [P, d]
        if h.shape[0] == 0:
            return hidden.sum() * 0.0
        pos = (h * item_emb[targets[mask]]).sum(-1)  # [P]
        neg = torch.einsum("pd,pkd->pk", h, item_emb[negatives[mask]])  # [P, K]
        loss = -F.logsigmoid(pos.float()) - F.logsigmoid(-neg.float()).sum(-1)  # [P]
        return loss.mean()
