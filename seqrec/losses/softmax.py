"""Full-catalogue softmax losses: CE on the last position (Eq. 23) and CCE on all positions (Eq. 26).

Li, Yu, Zeng, Yang, "Effective and Efficient Training for Sequential Recommendation Using
Cumulative Cross-Entropy Loss". The catalogue is the real items 1..N: the padding row 0 of the
item table is never a class, so logits are ``hidden @ item_emb[1:].T`` and class ``c`` is item
``c + 1``.
"""

from __future__ import annotations

import torch

from seqrec.errors import ConfigError
from seqrec.losses.chunked import chunked_cross_entropy


# Auto chunk sizes: logits blocks of about this many floats.
# CPU: 4 MB of logits (2**20 floats), about the L2 caches of two cores. Measured on a 2-core AMD
# EPYC (fp32, forward + backward, Beauty's N = 12,101): 2**19..2**20 floats reach 125-130 GFLOPS,
# 2**21 (173 rows) 105 and 512 rows 93; a whole SASRec + CCE epoch takes 6.5 s at 2**20 against 7.3 s at 2**21.
# Below 32 rows the matrix products get too thin (N = 200k: 81 GFLOPS at 32 rows, 56 at 16).
CPU_BLOCK_FLOATS = 2**20
CPU_MIN_ROWS, CPU_MAX_ROWS = 32, 4096
GPU_BLOCK_FLOATS = 2**27  # 512 MB (x2 with the softmax): one block for most batches, bounded for huge catalogues


def resolve_chunk_size(chunk_size: int | str | None, n_items: int, device: torch.device) -> int | None:
    """Positions per logits block: ``"auto"`` picks by device and catalogue size N.

    CPU: ``CPU_BLOCK_FLOATS / N`` positions (2**20 floats, clamped to 32..4096 rows), so a block
    of logits stays in cache — about twice as fast as all logits at once. CUDA: ``GPU_BLOCK_FLOATS / N`` (usually
    the whole batch in one block). An int is used as given; ``None`` means no chunking.

    Raises:
        ConfigError: an unknown string or a non-positive int.
    """
    if chunk_size is None or (isinstance(chunk_size, int) and chunk_size > 0):
        return chunk_size
    if chunk_size != "auto":
        raise ConfigError(f"loss.chunk_size={chunk_size!r} is not valid: use auto, null (all logits at once) or a "
                          "positive number of positions.")
    if device.type == "cpu":
        return int(min(max(CPU_BLOCK_FLOATS // n_items, CPU_MIN_ROWS), CPU_MAX_ROWS))
    return max(1, GPU_BLOCK_FLOATS // n_items)


def softmax_cross_entropy(
    hidden: torch.Tensor, targets: torch.Tensor, item_emb: torch.Tensor, chunk_size: int | str | None = "auto"
) -> torch.Tensor:
    """Mean softmax cross-entropy of ``hidden [P, d]`` against items ``targets [P]`` (ids 1..N).

    Args:
        hidden: ``[P, d]`` hidden states, only the positions that have a target.
        targets: ``[P]`` item ids in 1..N.
        item_emb: ``[N + 1, d]`` item table, row 0 = padding (excluded from the classes).
        chunk_size: positions whose logits are computed at once (:func:`resolve_chunk_size`);
            the loss and its gradients are the same for every value.

    Under ``torch.autocast`` the matrix products run in the autocast dtype (e.g. bf16) while the
    log-softmax stays in float32.

    Returns:
        Scalar float32 loss (0 when P == 0, still attached to the graph).
    """
    weight = item_emb[1:]  # [N, d]; a view, gradients flow into the embedding
    device = hidden.device
    compute_dtype = torch.get_autocast_dtype(device.type) if torch.is_autocast_enabled(device.type) else None
    chunk = resolve_chunk_size(chunk_size, weight.shape[0], device)
    return chunked_cross_entropy(hidden, weight, targets - 1, chunk, compute_dtype=compute_dtype)


class CCE:
    """Cumulative cross-entropy (Eq. 26): full-catalogue softmax CE at every non-padding position.

    ``L = mean over positions t with targets[t] != 0 of -log softmax(h_t · E[1:]^T)[target_t]``.
    Hidden states of padding positions are dropped *before* the item table is multiplied in, so
    the logits are ``[P, N]`` with P = number of real positions, never ``[B, L, N]``.

    Args:
        chunk_size: positions whose logits are computed at a time (``seqrec.losses.chunked``):
            ``"auto"`` (by device and catalogue size), an int, or ``None`` for all at once.
    """

    name = "cce"
    num_negatives = 0

    def __init__(self, chunk_size: int | str | None = "auto"):
        resolve_chunk_size(chunk_size, 1, torch.device("cpu"))  # fail early on a bad value
        self.chunk_size = chunk_size

    def __call__(
        self,
        hidden: torch.Tensor,
        targets: torch.Tensor,
        item_emb: torch.Tensor,
        mask: torch.Tensor | None = None,
        negatives: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """hidden ``[B, L, d]``, targets ``[B, L]`` (0 = padding), item_emb ``[N+1, d]``,
        mask ``[B, L]`` bool (default ``targets != 0``). Returns a scalar."""
        mask = targets != 0 if mask is None else mask
        return softmax_cross_entropy(hidden[mask], targets[mask], item_emb, self.chunk_size)


class CE(CCE):
    """Cross-entropy on the last timestamp only (Eq. 23), over the full catalogue.

    Uses the last column of the left-padded batch, i.e. the most recent training target of each
    sequence; rows whose last target is padding (no training target) are ignored.

    Args:
        chunk_size: as in :class:`CCE`.
    """

    name = "ce"
    last_position_only = True  # one loss term per sequence (the trainer weights batches by it)

    def __call__(
        self,
        hidden: torch.Tensor,
        targets: torch.Tensor,
        item_emb: torch.Tensor,
        mask: torch.Tensor | None = None,
        negatives: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Same signature as :class:`CCE`; only position ``L - 1`` contributes."""
        last_hidden, last_target = hidden[:, -1], targets[:, -1]  # [B, d], [B]
        keep = last_target != 0 if mask is None else mask[:, -1]
        return softmax_cross_entropy(last_hidden[keep], last_target[keep], item_emb, self.chunk_size)
