"""Sampled-negative binary cross-entropy (SASRec's loss; CCE paper Eq. 20)."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from seqrec.losses.base import Loss, check_positions, position_mask, variant_name
from seqrec.models.scoring import item_rows
from seqrec.samplers import NegativeBatch, Sampler


class BCE(Loss):
    """Binary cross-entropy with sampled negatives at every non-padding position (Eq. 20).

    For each real position t with positive item p_t and negatives n_{t,1..K}:
    ``-log σ(r_{t,p}) - Σ_k log(1 - σ(r_{t,n_k}))``, averaged over the real positions
    (the paper's code uses K = 1 and ``log(σ(x) + 1e-24)``; this uses the exact, stable
    ``logsigmoid``). The paper draws negatives uniformly among the items that are not in the
    user's training sequence (``loss/sampler=uniform``, the default).

    Args:
        num_negatives: K, negatives per position (1 in the paper).
        sampler: where negatives come from (default :class:`~seqrec.samplers.UniformSampler`).
        positions: ``"all"`` (the paper's BCE, Eq. 20) or ``"last"`` (the last position only;
            named ``bce-last``).

    Raises:
        ValueError: ``num_negatives`` < 1. ConfigError: a bad ``positions``.
    """

    name = "bce"
    positions = "all"

    def __init__(self, num_negatives: int = 1, sampler: Sampler | None = None, positions: str = "all"):
        if isinstance(num_negatives, int) and num_negatives < 1:
            raise ValueError(f"BCE needs num_negatives >= 1, got {num_negatives}")
        super().__init__(num_negatives=num_negatives, sampler=sampler)
        self.positions = check_positions(positions)
        self.name = variant_name(self, positions)

    def forward(self, hidden: torch.Tensor, targets: torch.Tensor, table: torch.Tensor,
                negatives: NegativeBatch | None = None) -> torch.Tensor:
        """hidden ``[B, L, d]``, targets ``[B, L]`` (0 = padding), table ``[N, d]``,
        ``negatives.items [B, L, K]`` item ids. Returns a scalar.

        Raises:
            ValueError: if ``negatives`` is missing.
        """
        if negatives is None:
            raise ValueError("BCE needs sampled negatives (a NegativeBatch with items [B, L, K])")
        mask = position_mask(targets, self.positions)  # [B, L]
        h = hidden[mask]  # [P, d]
        if h.shape[0] == 0:
            return hidden.sum() * 0.0
        pos = (h * table[item_rows(targets[mask])]).sum(-1)  # [P]
        neg = torch.einsum("pd,pkd->pk", h, table[item_rows(negatives.items[mask])])  # [P, K]
        loss = -F.logsigmoid(pos.float()) - F.logsigmoid(-neg.float()).sum(-1)  # [P]
        return loss.mean()
