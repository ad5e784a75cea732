"""Training batches: one epoch's row order (length-bucketed or random) and the per-batch loss
weights that keep every target position's weight equal under bucketing.

Vectorised index work on ``[U]`` tensors; nothing per sample in Python.
"""

from __future__ import annotations

import torch


def epoch_batches(
    lengths: torch.Tensor,
    batch_size: int,
    generator: torch.Generator,
    bucket_by_length: bool = True,
    pool_batches: int = 64,
) -> list[torch.Tensor]:
    """Row indices of one epoch's training batches, shuffled with ``generator``.

    With ``bucket_by_length`` users are shuffled, cut into pools of ``pool_batches`` batches,
    sorted by length inside each pool (so a batch holds users of similar length and needs little
    padding), and the batch order is shuffled again. Every user appears exactly once per epoch.

    Args:
        lengths: ``[U]`` number of real items in each training input (on CPU).
        batch_size: rows per batch.
        generator: seeded CPU generator (the epoch's randomness).
        bucket_by_length: group similar lengths (see above); False = plain random batches.
        pool_batches: batches per sorting pool; larger = tighter buckets, less randomness.

    Returns:
        List of int64 index tensors ``[<= batch_size]``.
    """
    perm = torch.randperm(len(lengths), generator=generator)
    if not bucket_by_length:
        return list(perm.split(batch_size))
    batches = []
    for pool in perm.split(batch_size * pool_batches):
        pool = pool[torch.argsort(lengths[pool], stable=True)]
        batches.extend(pool.split(batch_size))
    shuffle = torch.randperm(len(batches), generator=generator)
    return [batches[i] for i in shuffle]


def batch_weights(batches: list[torch.Tensor], positions: torch.Tensor) -> torch.Tensor:
    """Per-batch loss weights that give every target position of an epoch the same weight.

    A loss is a mean over its batch's positions. Bucketed batches hold very different numbers of
    positions (short users together, long users together), so a plain per-batch mean would weight
    a position of a short-sequence batch many times more than one of a long-sequence batch, unlike
    random batches, where every batch holds about the same number. Batch ``b`` with ``P_b``
    positions gets ``w_b = P_b / mean_b(P_b)``: the epoch's summed gradient is then
    ``Σ_b w_b · mean_b = Σ_positions / mean_b(P_b)``, the same weight for every position.

    Args:
        batches: the epoch's row-index tensors (:func:`epoch_batches`).
        positions: ``[U]`` positions each row contributes to the loss.

    Returns:
        ``[len(batches)]`` float64 weights with mean 1.
    """
    per_batch = torch.stack([positions[b].sum() for b in batches]).double()  # [n_batches]
    return per_batch / per_batch.mean().clamp(min=1e-12)
