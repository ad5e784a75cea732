"""Memory-bounded, fused full-catalogue softmax cross-entropy: the per-position term of CCE.

Li, Yu, Zeng, Yang, "Effective and Efficient Training for Sequential Recommendation Using
Cumulative Cross-Entropy Loss" (AAAI 2023), Eq. 26, scores every non-padding position against the
whole item catalogue. With P positions and N items the logits alone are P x N floats
(2,560 x 1M x 4 B = 10 GB), and autograd keeps them and their softmax gradient besides.
:func:`chunked_cross_entropy` returns the same value and gradients while holding the logits of
only ``chunk_size`` positions at a time: for each block of positions it computes the block's
logits, its log-sum-exp, and right away the block's gradients ``(softmax - onehot) @ W`` and
``(softmax - onehot)^T @ h`` (the loss is linear in its upstream gradient, so the backward pass
only scales them). That is three matrix products per block and no recomputation, on a block small
enough to stay in cache: on a CPU it is about twice as fast as materialising all P x N logits.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.autograd.function import once_differentiable

_REDUCTIONS = ("mean", "sum")
# below this a target's softmax probability has lost relative precision (float32 normal range
# ends at 1.2e-38): its loss is computed from the exact log-sum-exp
_TINY = 1e-30


def chunked_cross_entropy(
    hidden: Tensor,
    weight: Tensor,
    target: Tensor,
    chunk_size: int | None,
    reduction: str = "mean",
    compute_dtype: torch.dtype | None = None,
) -> Tensor:
    """Softmax cross-entropy of ``hidden @ weight.T`` against ``target``, in blocks of positions.

    This is the inner term of Eq. 26 (CCE): ``-log softmax(r_t)[pos_t]`` over the full catalogue,
    for the P non-padding positions the caller has already selected. Value and gradients w.r.t.
    ``hidden`` and ``weight`` equal ``F.cross_entropy(hidden @ weight.T, target)`` up to float
    rounding (the sums are taken in a different order).

    Memory: extra memory is two ``chunk_size x N`` float32 blocks (logits and their softmax)
    plus the gradients ``[P, d]`` and ``[N, d]`` that any loss over the full catalogue produces;
    they are computed in the forward pass and kept until ``backward``. The unchunked loss
    (``chunk_size=None``) keeps about three ``P x N`` buffers alive (logits, log-softmax, its
    gradient).

    Args:
        hidden: ``[P, d]`` position representations (e.g. ``hidden[mask]`` of a ``[B, L, d]``
            model output).
        weight: ``[N, d]`` item embeddings used as the prediction layer. A view such as
            ``emb.weight[1:]`` (dropping the padding row) works; its gradient flows into the base.
        target: ``[P]`` int64 class indices into the rows of ``weight`` (0-based; when ``weight``
            is ``emb.weight[1:]`` that is ``item_id - 1``).
        chunk_size: positions scored at once. ``None`` calls ``F.cross_entropy`` on the full
            logits; a value ``>= P`` gives a single block.
        reduction: ``"mean"`` over the P rows or ``"sum"``.
        compute_dtype: dtype of the matrix products (e.g. ``torch.bfloat16`` under mixed
            precision); default: the inputs' common dtype. The log-sum-exp, the softmax and the
            gradient accumulation stay in float32.

    Returns:
        A scalar in float32 (float64 when an input is float64). With P == 0 the loss is a zero
        (not NaN) that stays connected to the graph, so ``backward()`` gives zero gradients.

    Raises:
        ValueError: ``chunk_size <= 0``; an unknown ``reduction``; ``hidden``/``weight``/``target``
            of the wrong rank, mismatched sizes, a non-int64 ``target``, ``weight`` with no rows,
            or a ``target`` outside ``[0, N)`` (the range check reads two numbers back from the
            device, one synchronisation per call).
    """
    n_rows, n_items = _check_inputs(hidden, weight, target, chunk_size, reduction)
    compute_dtype = compute_dtype or torch.promote_types(hidden.dtype, weight.dtype)
    if chunk_size is None and n_rows > 0:
        logits = hidden.to(compute_dtype) @ weight.to(compute_dtype).T  # [P, N]
        return F.cross_entropy(logits.to(_accumulate_dtype(compute_dtype, hidden, weight)), target, reduction=reduction)
    # P == 0 with chunk_size None also lands here: F.cross_entropy's mean over nothing is NaN.
    chunk = max(n_rows, 1) if chunk_size is None else chunk_size
    return _FusedCrossEntropy.apply(hidden, weight, target, chunk, reduction == "sum", compute_dtype)


class _FusedCrossEntropy(torch.autograd.Function):
    """Forward: per block of positions, loss and gradients at once. Backward: scale them."""

    @staticmethod
    def forward(
        ctx,
        hidden: Tensor,
        weight: Tensor,
        target: Tensor,
        chunk_size: int,
        sum_reduction: bool,
        compute_dtype: torch.dtype,
    ) -> Tensor:
        acc_dtype = _accumulate_dtype(compute_dtype, hidden, weight)
        need_hidden, need_weight = ctx.needs_input_grad[:2]
        n_rows = hidden.shape[0]
        w = weight.to(compute_dtype)  # [N, d]
        grad_hidden = torch.empty(hidden.shape, dtype=acc_dtype, device=hidden.device) if need_hidden else None
        grad_weight = torch.zeros(weight.shape, dtype=acc_dtype, device=weight.device) if need_weight else None
        loss = torch.zeros((), dtype=acc_dtype, device=hidden.device)
        # Autocast would silently change the matmuls' precision; it is set by compute_dtype.
        with torch.autocast(device_type=hidden.device.type, enabled=False):
            for start in range(0, n_rows, chunk_size):
                h = hidden[start : start + chunk_size].to(compute_dtype)  # [c, d]
                t = target[start : start + chunk_size]  # [c]
                logits = (h @ w.T).to(acc_dtype)  # [c, N]
                # softmax is one fused kernel (about twice as fast on a CPU as max, subtract, exp,
                # sum and divide one by one). The loss of a row is -log p[target]; only where p
                # underflows (loss > ~69) is it taken from an exact log-sum-exp instead.
                g = torch.softmax(logits, dim=1)  # [c, N]
                p_target = g.gather(1, t.unsqueeze(1)).squeeze(1)  # [c]
                row_loss = -p_target.log()
                tiny = p_target < _TINY
                if bool(tiny.any()):
                    exact = torch.logsumexp(logits[tiny], dim=1) - logits[tiny].gather(1, t[tiny].unsqueeze(1)).squeeze(
                        1
                    )
                    row_loss[tiny] = exact
                del logits
                loss += row_loss.sum()
                if not (need_hidden or need_weight):
                    continue
                g.scatter_add_(1, t.unsqueeze(1), torch.full_like(p_target, -1.0).unsqueeze(1))  # p - onehot
                g = g.to(compute_dtype)
                if need_hidden:
                    grad_hidden[start : start + chunk_size] = g @ w  # [c, d]
                if need_weight:
                    if g.dtype == grad_weight.dtype:  # [N, d]; addmm_ needs one dtype (fp32 accumulator)
                        grad_weight.addmm_(g.T, h)
                    else:
                        grad_weight.add_(g.T @ h)
                del g
        ctx.save_for_backward(grad_hidden, grad_weight)
        ctx.scale = 1.0 if sum_reduction else 1.0 / max(n_rows, 1)
        ctx.dtypes = (hidden.dtype, weight.dtype)
        return loss * ctx.scale

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_output: Tensor):
        grad_hidden, grad_weight = ctx.saved_tensors
        scale = grad_output * ctx.scale
        if grad_hidden is not None:
            grad_hidden = (grad_hidden * scale).to(ctx.dtypes[0])
        if grad_weight is not None:
            grad_weight = (grad_weight * scale).to(ctx.dtypes[1])
        return grad_hidden, grad_weight, None, None, None, None


def _accumulate_dtype(compute_dtype: torch.dtype, *inputs: Tensor) -> torch.dtype:
    """float32 for bf16/fp16/float32, float64 when anything is float64 (keeps gradcheck exact)."""
    dtype = torch.promote_types(compute_dtype, torch.float32)
    for tensor in inputs:
        dtype = torch.promote_types(dtype, tensor.dtype)
    return dtype


def _check_inputs(
    hidden: Tensor, weight: Tensor, target: Tensor, chunk_size: int | None, reduction: str
) -> tuple[int, int]:
    """Raise ValueError on a bad argument; return (P, N)."""
    if chunk_size is not None and chunk_size <= 0:
        raise ValueError(
            f"chunk_size must be a positive number of positions (or None for no chunking), got {chunk_size}."
        )
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
