"""Full-catalogue softmax losses: CE on the last position (Eq. 23) and CCE on all positions (Eq. 26).

Li, Yu, Zeng, Yang, "Effective and Efficient Training for Sequential Recommendation Using
Cumulative Cross-Entropy Loss". The catalogue is the real items 1..N, the rows of the model's
``output_table()`` (padding is never a class): logits are ``hidden @ table.T`` and the class of
item ``i`` is :func:`seqrec.models.scoring.item_rows` ``(i)``.
"""

from __future__ import annotations

from typing import Literal

import torch

from seqrec.losses.base import Loss, check_positions, position_mask
from seqrec.losses.chunked import chunked_cross_entropy
from seqrec.models.scoring import item_rows
from seqrec.options import PositiveInt

# Auto chunk sizes: logits blocks of about this many floats. CPU: 4 MB of logits, about the L2
# caches of two cores, and at least 32 rows (thinner matrix products are slow); the measurements
# behind these choices are in docs/speed.md.
CPU_BLOCK_FLOATS = 2**20
CPU_MIN_ROWS, CPU_MAX_ROWS = 32, 4096
GPU_BLOCK_FLOATS = 2**27  # 512 MB (x2 with the softmax): one block for most batches, bounded for huge catalogues


def resolve_chunk_size(chunk_size: int | str | None, n_items: int, device: torch.device) -> int | None:
    """Positions per logits block: ``"auto"`` picks by device and catalogue size N.

    CPU: ``CPU_BLOCK_FLOATS / N`` positions (2**20 floats, clamped to 32..4096 rows), so a block
    of logits stays in cache — about twice as fast as all logits at once. CUDA: ``GPU_BLOCK_FLOATS / N`` (usually
    the whole batch in one block). An int is used as given; ``None`` means no chunking.

    Raises:
        ValueError: an unknown string or a non-positive int.
    """
    if chunk_size is None or (isinstance(chunk_size, int) and chunk_size > 0):
        return chunk_size
    if chunk_size != "auto":
        raise ValueError(
            f"chunk_size={chunk_size!r} is not valid: use auto, null (all logits at once) or a "
            "positive number of positions"
        )
    if device.type == "cpu":
        return int(min(max(CPU_BLOCK_FLOATS // n_items, CPU_MIN_ROWS), CPU_MAX_ROWS))
    return max(1, GPU_BLOCK_FLOATS // n_items)


def softmax_cross_entropy(
    hidden: torch.Tensor, targets: torch.Tensor, table: torch.Tensor, chunk_size: int | str | None = "auto"
) -> torch.Tensor:
    """Mean softmax cross-entropy of ``hidden [P, d]`` against items ``targets [P]`` (ids 1..N).

    Args:
        hidden: ``[P, d]`` hidden states, only the positions that have a target.
        targets: ``[P]`` item ids in 1..N.
        table: ``[N, d]`` output table of items 1..N (``model.output_table()``): the classes;
            ``[N + E, d]`` with E never-target classes after the items
            (:func:`seqrec.models.scoring.training_table`).
        chunk_size: positions whose logits are computed at once (:func:`resolve_chunk_size`);
            the loss and its gradients are the same for every value.

    Under ``torch.autocast`` the matrix products run in the autocast dtype (e.g. bf16) while the
    log-softmax stays in float32.

    Returns:
        Scalar float32 loss (0 when P == 0, still attached to the graph).
    """
    device = hidden.device
    compute_dtype = torch.get_autocast_dtype(device.type) if torch.is_autocast_enabled(device.type) else None
    chunk = resolve_chunk_size(chunk_size, table.shape[0], device)
    return chunked_cross_entropy(hidden, table, item_rows(targets), chunk, compute_dtype=compute_dtype)


class CCE(Loss):
    """Cumulative cross-entropy (Eq. 26): full-catalogue softmax CE at every non-padding position.

    ``L = mean over positions t with targets[t] != 0 of -log softmax(h_t · T^T)[target_t]`` with
    ``T`` the output table. Hidden states of padding positions are dropped *before* the table is
    multiplied in, so the logits are ``[P, N]`` with P = number of real positions, never ``[B, L, N]``.

    With ``positions="last"`` only the last position of each row is a term: that is CE (Eq. 23),
    and the instance is named ``ce``.

    Args:
        chunk_size: positions whose logits are computed at a time (``seqrec.losses.chunked``):
            ``"auto"`` (by device and catalogue size), an int, or ``None`` for all at once.
        positions: ``"all"`` (CCE) or ``"last"`` (CE).

    Raises:
        ValueError: a bad ``chunk_size`` or ``positions``.
    """

    name = "cce"
    positions = "all"
    full_softmax = True

    def __init__(
        self, chunk_size: PositiveInt | Literal["auto"] | None = "auto", positions: Literal["all", "last"] | None = None
    ):
        super().__init__(num_negatives=0)
        resolve_chunk_size(chunk_size, 1, torch.device("cpu"))  # fail early on a bad value
        self.chunk_size = chunk_size
        self.positions = check_positions(type(self).positions if positions is None else positions)
        self.name = "cce" if self.positions == "all" else "ce"

    def forward(self, hidden: torch.Tensor, targets: torch.Tensor, table: torch.Tensor, negatives=None) -> torch.Tensor:
        """hidden ``[B, L, d]``, targets ``[B, L]`` (0 = padding), table ``[N, d]`` or ``[N + E, d]``
        (E never-target classes after the items). Returns a scalar."""
        mask = position_mask(targets, self.positions)  # [B, L]
        return softmax_cross_entropy(hidden[mask], targets[mask], table, self.chunk_size)


class CE(CCE):
    """Cross-entropy on the last timestamp only (Eq. 23), over the full catalogue.

    Uses the last column of the left-padded batch, i.e. the most recent training target of each
    sequence; rows whose last target is padding (no training target) are ignored.

    :class:`CCE` with ``positions="last"`` (the default here); ``positions="all"`` makes it CCE.

    Args:
        chunk_size, positions: as in :class:`CCE`.
    """

    name = "ce"
    positions = "last"  # one loss term per sequence (the trainer weights batches by it)
