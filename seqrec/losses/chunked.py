"""Memory-bounded full-catalogue softmax cross-entropy, the per-position term of CCE.

Li, Yu, Zeng, Yang, "Effective and Efficient Training for Sequential Recommendation Using
Cumulative Cross-Entropy Loss" (AAAI 2023), Eq. 26, scores every non-padding position against the
whole item catalogue. With P positions and N items the logits alone are P x N floats
(2,560 x 1M x 4 B = 10 GB), and autograd keeps them and their softmax gradient besides.
:func:`chunked_cross_entropy` returns the same value and gradients while holding at most
P x chunk_size logits at a time: the forward pass walks the catalogue chunk by chunk with a running
log-sum-exp, and the backward pass recomputes each chunk's logits instead of storing them.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.autograd.function import once_differentiable

_REDUCTIONS = ("mean", "sum")


def chunked_cross_entropy(
    hidden: Tensor,
    weight: Tensor,
    target: Tensor,
    chunk_size: int | None,
    reduction: str = "mean",
) -> Tensor:
    """Softmax cross-entropy of ``hidden @ weight.T`` against ``target``, computed in item chunks.

    This is the inner term of Eq. 26 (CCE): ``-log softmax(r_t)[pos_t]`` over the full catalogue,
    for the P non-padding positions the caller has already selected. Value and gradients w.r.t.
    ``hidden`` and ``weight`` equal ``F.cross_entropy(hidden @ weight.T, target)`` up to float
    rounding (the sums are taken in a different order).

    Memory: extra memory is about ``P x chunk_size`` float32 values (one block of logits, worked
    on in place; 1.5 blocks when the inputs are bf16/fp16) plus ``grad_weight`` of ``N x d``,
    which any loss over the full catalogue produces. Only ``hidden``, ``weight``, ``target`` and a
    ``[P]`` log-sum-exp are saved for backward. The unchunked loss (``chunk_size=None``) keeps
    about three ``P x N`` buffers alive (logits, log-softmax, its gradient).

    Args:
        hidden: ``[P, d]`` position representations (e.g. ``hidden[mask]`` of a ``[B, L, d]``
            model output).
        weight: ``[N, d]`` item embeddings used as the prediction layer. A view such as
            ``emb.weight[1:]`` (dropping the padding row) works; its gradient flows into the base.
        target: ``[P]`` int64 class indices into the rows of ``weight`` (0-based; when ``weight``
            is ``emb.weight[1:]`` that is ``item_id - 1``).
        chunk_size: items scored at once. ``None`` calls ``F.cross_entropy`` on the full logits;
            a value ``>= N`` gives a single chunk.
        reduction: ``"mean"`` over the P rows or ``"sum"``.

    Returns:
        A scalar in float32 (float64 when an input is float64), whatever the input precision:
        matrix products run in the inputs' common dtype, the log-sum-exp in float32. With P == 0
        the loss is a zero (not NaN) that stays connected to the graph, so ``backward()`` gives
        zero gradients.

    Raises:
        ValueError: ``chunk_size <= 0``; an unknown ``reduction``; ``hidden``/``weight``/``target``
            of the wrong rank, mismatched sizes, a non-int64 ``target``, ``weight`` with no rows,
            or a ``target`` outside ``[0, N)`` (the range check reads two numbers back from the
            device, one synchronisation per call).
    """
    n_rows, n_items = _check_inputs(hidden, weight, target, chunk_size, reduction)
    if chunk_size is None and n_rows > 0:
        compute_dtype = torch.promote_types(hidden.dtype, weight.dtype)
        logits = hidden.to(compute_dtype) @ weight.to(compute_dtype).T  # [P, N]
        return F.cross_entropy(logits.to(_accumulate_dtype(compute_dtype)), target, reduction=reduction)
    # P == 0 with chunk_size None also lands here: F.cross_entropy's mean over nothing is NaN.
    chunk = n_items if chunk_size is None else chunk_size
    return _ChunkedCrossEntropy.apply(hidden, weight, target, chunk, reduction == "sum")


class _ChunkedCrossEntropy(torch.autograd.Function):
    """Forward: online log-sum-exp over item chunks. Backward: recompute each chunk's logits."""

    @staticmethod
    def forward(ctx, hidden: Tensor, weight: Tensor, target: Tensor, chunk_size: int, sum_reduction: bool) -> Tensor:
        compute_dtype = torch.promote_types(hidden.dtype, weight.dtype)
        acc_dtype = _accumulate_dtype(compute_dtype)
        n_rows, n_items = hidden.shape[0], weight.shape[0]
        h = hidden.to(compute_dtype)  # [P, d]
        lse = torch.full((n_rows,), float("-inf"), dtype=acc_dtype, device=hidden.device)  # [P]
        target_logit = torch.zeros(n_rows, dtype=acc_dtype, device=hidden.device)  # [P]
        # Autocast would silently lower the matmuls to bf16/fp16; precision is set by the inputs.
        with torch.autocast(device_type=hidden.device.type, enabled=False):
            for start in range(0, n_items, chunk_size):
                w = weight[start : start + chunk_size].to(compute_dtype)  # [c, d]
                logits = (h @ w.T).to(acc_dtype)  # [P, c]
                # gather + where instead of boolean indexing: no host-device sync per chunk.
                in_chunk, local = _local_target(target, start, w.shape[0])
                picked = logits.gather(1, local.unsqueeze(1)).squeeze(1)  # [P]
                target_logit = torch.where(in_chunk, picked, target_logit)
                # log-sum-exp in place (torch.logsumexp would allocate a second [P, c] buffer).
                chunk_max = logits.amax(dim=1)  # [P]
                chunk_lse = chunk_max + logits.sub_(chunk_max.unsqueeze(1)).exp_().sum(dim=1).log()
                lse = torch.logaddexp(lse, chunk_lse)
                del logits  # free this block before the next matmul allocates one
        ctx.save_for_backward(hidden, weight, target, lse)
        ctx.chunk_size = chunk_size
        ctx.sum_reduction = sum_reduction
        loss = (lse - target_logit).sum()
        return loss if sum_reduction else loss / max(n_rows, 1)

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_output: Tensor):
        hidden, weight, target, lse = ctx.saved_tensors
        need_hidden, need_weight = ctx.needs_input_grad[:2]
        compute_dtype = torch.promote_types(hidden.dtype, weight.dtype)
        acc_dtype = lse.dtype
        n_rows, n_items = hidden.shape[0], weight.shape[0]
        # d loss / d logit = (softmax - onehot) * scale, with scale = grad_output (/ P for mean).
        scale = grad_output.to(acc_dtype)
        if not ctx.sum_reduction:
            scale = scale / max(n_rows, 1)
        h = hidden.to(compute_dtype)  # [P, d]
        grad_hidden = torch.zeros(hidden.shape, dtype=acc_dtype, device=hidden.device) if need_hidden else None
        grad_weight = torch.empty(weight.shape, dtype=weight.dtype, device=weight.device) if need_weight else None
        with torch.autocast(device_type=hidden.device.type, enabled=False):
            for start in range(0, n_items, ctx.chunk_size):
                w = weight[start : start + ctx.chunk_size].to(compute_dtype)  # [c, d]
                logits = (h @ w.T).to(acc_dtype)  # [P, c]
                # In place, so the chunk needs one [P, c] buffer: logits -> softmax -> gradient.
                g = logits.sub_(lse.unsqueeze(1)).exp_()
                in_chunk, local = _local_target(target, start, w.shape[0])
                g.scatter_add_(1, local.unsqueeze(1), -in_chunk.to(acc_dtype).unsqueeze(1))
                g = g.mul_(scale).to(compute_dtype)  # [P, c]
                if need_hidden:
                    grad_hidden += (g @ w).to(acc_dtype)  # [P, d]
                if need_weight:
                    grad_weight[start : start + w.shape[0]] = g.T @ h  # [c, d]
                del logits, g  # free this block before the next matmul allocates one
        if need_hidden:
            grad_hidden = grad_hidden.to(hidden.dtype)
        return grad_hidden, grad_weight, None, None, None


def _accumulate_dtype(compute_dtype: torch.dtype) -> torch.dtype:
    """float32 for bf16/fp16/float32 inputs, float64 for float64 ones (keeps gradcheck exact)."""
    return torch.promote_types(compute_dtype, torch.float32)


def _local_target(target: Tensor, start: int, width: int) -> tuple[Tensor, Tensor]:
    """Which targets fall in items ``[start, start + width)``, and their clamped column there."""
    local = target - start  # [P]
    in_chunk = (local >= 0) & (local < width)
    return in_chunk, local.clamp(0, width - 1)


def _check_inputs(
    hidden: Tensor, weight: Tensor, target: Tensor, chunk_size: int | None, reduction: str
) -> tuple[int, int]:
    """Raise ValueError on a bad argument; return (P, N)."""
    if chunk_size is not None and chunk_size <= 0:
        raise ValueError(f"chunk_size must be a positive number of items (or None for no chunking), got {chunk_size}.")
    if reduction not in _REDUCTIONS:
        raise ValueError(f"reduction must be one of {_REDUCTIONS}, got {reduction!r}.")
    if hidden.dim() != 2 or weight.dim() != 2:
        raise ValueError(
            f"hidden must be [P, d] and weight [N, d]; got {tuple(hidden.shape)} and {tuple(weight.shape)}. "
            "Select the non-padding positions first, e.g. hidden[mask]."
        )
    if hidden.shape[1] != weight.shape[1]:
        raise ValueError(f"hidden has d={hidden.shape[1]} but weight has d={weight.shape[1]}.")
    n_rows, n_items = hidden.shape[0], weight.shape[0]
    if n_items == 0:
        raise ValueError("weight has no rows: a softmax over an empty catalogue is undefined.")
    if target.dtype != torch.long or target.shape != (n_rows,):
        raise ValueError(
            f"target must be an int64 tensor of shape [P]=[{n_rows}], "
            f"got {target.dtype} of shape {tuple(target.shape)}."
        )
    if n_rows > 0:
        low, high = int(target.min()), int(target.max())
        if low < 0 or high >= n_items:
            raise ValueError(
                f"target holds class indices in [{low}, {high}] but weight has {n_items} rows; targets must be in "
                f"[0, {n_items}). With weight = emb.weight[1:] (padding row dropped) pass item_id - 1."
            )
    return n_rows, n_items
