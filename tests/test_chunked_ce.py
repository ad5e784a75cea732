"""chunked_cross_entropy equals F.cross_entropy(h @ W.T, y) in value and both gradients."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from seqrec.losses.chunked import chunked_cross_entropy

TOL = dict(atol=1e-5, rtol=1e-5)


def _inputs(n_rows: int, n_items: int, dim: int, seed: int = 0, dtype=torch.float32, scale: float = 1.0):
    gen = torch.Generator().manual_seed(seed)
    hidden = (torch.randn(n_rows, dim, generator=gen, dtype=dtype) * scale).requires_grad_()
    weight = torch.randn(n_items, dim, generator=gen, dtype=dtype).requires_grad_()
    target = torch.randint(0, n_items, (n_rows,), generator=gen)
    return hidden, weight, target


def _loss_and_grads(loss_fn, hidden, weight, target):
    hidden = hidden.detach().clone().requires_grad_()
    weight = weight.detach().clone().requires_grad_()
    loss = loss_fn(hidden, weight, target)
    loss.backward()
    return loss.detach(), hidden.grad, weight.grad


def _reference(reduction="mean"):
    return lambda h, w, y: F.cross_entropy(h @ w.T, y, reduction=reduction)


def _chunked(chunk_size, reduction="mean"):
    return lambda h, w, y: chunked_cross_entropy(h, w, y, chunk_size, reduction=reduction)


@pytest.mark.parametrize(
    "n_rows, n_items, dim, chunk_size",
    [
        (7, 10, 4, 3),  # N not divisible by chunk_size
        (16, 100, 8, 1),  # one item per chunk
        (16, 100, 8, 100),  # chunk_size == N
        (16, 100, 8, 1000),  # chunk_size > N
        (33, 257, 16, 64),
        (5, 1, 3, 2),  # single item: loss 0, gradients 0
        (12, 50, 8, None),  # no chunking: plain F.cross_entropy
    ],
)
@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_matches_full_cross_entropy(n_rows, n_items, dim, chunk_size, reduction):
    hidden, weight, target = _inputs(n_rows, n_items, dim)
    expected = _loss_and_grads(_reference(reduction), hidden, weight, target)
    actual = _loss_and_grads(_chunked(chunk_size, reduction), hidden, weight, target)
    for got, want in zip(actual, expected):
        torch.testing.assert_close(got, want, **TOL)


def test_gradcheck_float64():
    hidden, weight, target = _inputs(4, 7, 3, dtype=torch.float64)
    for reduction in ("mean", "sum"):
        assert torch.autograd.gradcheck(
            lambda h, w: chunked_cross_entropy(h, w, target, 3, reduction=reduction), (hidden, weight)
        )


def test_hand_computed_value():
    # Two items with logits (0, log 3): softmax (1/4, 3/4); targets 0 and 1.
    hidden = torch.tensor([[1.0], [1.0]])
    weight = torch.tensor([[0.0], [torch.log(torch.tensor(3.0)).item()]])
    loss = chunked_cross_entropy(hidden, weight, torch.tensor([0, 1]), chunk_size=1)
    expected = (torch.log(torch.tensor(4.0)) + torch.log(torch.tensor(4.0 / 3.0))) / 2
    torch.testing.assert_close(loss, expected)


@pytest.mark.parametrize("chunk_size", [3, None])
def test_no_rows_gives_connected_zero(chunk_size):
    hidden = torch.randn(0, 4, requires_grad=True)
    weight = torch.randn(10, 4, requires_grad=True)
    loss = chunked_cross_entropy(hidden, weight, torch.zeros(0, dtype=torch.long), chunk_size)
    assert loss.item() == 0.0 and loss.requires_grad
    loss.backward()
    assert hidden.grad.shape == (0, 4)
    assert torch.equal(weight.grad, torch.zeros_like(weight))


def test_weight_as_slice_of_embedding():
    # The tied prediction layer drops the padding row: gradients must reach emb.weight[1:].
    n_items, dim = 30, 8
    emb = torch.nn.Embedding(n_items + 1, dim, padding_idx=0)
    hidden, _, target = _inputs(9, n_items, dim)
    chunked_cross_entropy(hidden, emb.weight[1:], target, chunk_size=7).backward()
    got_hidden, got_emb = hidden.grad.clone(), emb.weight.grad.clone()
    hidden.grad, emb.weight.grad = None, None
    F.cross_entropy(hidden @ emb.weight[1:].T, target).backward()
    torch.testing.assert_close(got_hidden, hidden.grad, **TOL)
    torch.testing.assert_close(got_emb, emb.weight.grad, **TOL)
    assert torch.equal(got_emb[0], torch.zeros(dim))


def test_large_logits_do_not_overflow():
    # Logits of magnitude ~ 50 * |h| * |w| ~ 1e3 overflow exp() in float32 without max-shifting.
    hidden, weight, target = _inputs(20, 300, 16, scale=50.0)
    expected = _loss_and_grads(_reference(), hidden.double(), weight.double(), target)
    actual = _loss_and_grads(_chunked(64), hidden, weight, target)
    assert all(torch.isfinite(t).all() for t in actual)
    assert actual[0].item() > 100  # the scaling really produced large logits
    for got, want in zip(actual, expected):
        torch.testing.assert_close(got.double(), want, atol=1e-3, rtol=1e-4)


def test_bf16_inputs_close_to_float32():
    hidden, weight, target = _inputs(24, 200, 16, scale=0.5)
    want_loss, want_hidden, want_weight = _loss_and_grads(_reference(), hidden, weight, target)
    loss, grad_hidden, grad_weight = _loss_and_grads(_chunked(64), hidden.bfloat16(), weight.bfloat16(), target)
    assert loss.dtype == torch.float32
    assert grad_hidden.dtype == torch.bfloat16 and grad_weight.dtype == torch.bfloat16
    torch.testing.assert_close(loss, want_loss, atol=2e-2, rtol=1e-2)
    torch.testing.assert_close(grad_hidden.float(), want_hidden, atol=2e-3, rtol=5e-2)
    torch.testing.assert_close(grad_weight.float(), want_weight, atol=2e-3, rtol=5e-2)


def test_mixed_dtypes_keep_each_input_dtype():
    hidden, weight, target = _inputs(6, 20, 8)
    hidden = hidden.detach().bfloat16().requires_grad_()
    loss = chunked_cross_entropy(hidden, weight, target, chunk_size=6)
    loss.backward()
    assert loss.dtype == torch.float32
    assert hidden.grad.dtype == torch.bfloat16 and weight.grad.dtype == torch.float32


def test_inputs_without_grad():
    hidden, weight, target = _inputs(6, 20, 8)
    frozen = weight.detach()
    chunked_cross_entropy(hidden, frozen, target, chunk_size=6).backward()
    torch.testing.assert_close(hidden.grad, _loss_and_grads(_reference(), hidden, weight, target)[1], **TOL)
    loss = chunked_cross_entropy(hidden.detach(), frozen, target, chunk_size=6)
    assert not loss.requires_grad


def test_saves_no_logits_for_backward():
    # The point of chunking: nothing of size P x N (or P x chunk) is kept for backward.
    n_rows, n_items, dim = 16, 100, 8
    hidden, weight, target = _inputs(n_rows, n_items, dim)
    saved = []
    with torch.autograd.graph.saved_tensors_hooks(lambda t: saved.append(t.numel()) or t, lambda t: t):
        chunked_cross_entropy(hidden, weight, target, chunk_size=10)
    assert max(saved) == n_items * dim
    assert n_rows * n_items not in saved and n_rows * 10 not in saved


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(chunk_size=0), "chunk_size"),
        (dict(chunk_size=-5), "chunk_size"),
        (dict(reduction="none"), "reduction"),
        (dict(target=torch.tensor([0, 1, 20])), r"\[0, 20\)"),
        (dict(target=torch.tensor([0, -1, 2])), r"\[0, 20\)"),
        (dict(target=torch.tensor([0.0, 1.0, 2.0])), "int64"),
        (dict(weight=torch.randn(20, 5)), "d=5"),
        (dict(weight=torch.randn(0, 4)), "no rows"),
        (dict(hidden=torch.randn(1, 3, 4)), r"\[P, d\]"),
    ],
)
def test_bad_inputs_raise(kwargs, message):
    args = dict(hidden=torch.randn(3, 4), weight=torch.randn(20, 4), target=torch.tensor([0, 1, 2]), chunk_size=8)
    args.update(kwargs)
    with pytest.raises(ValueError, match=message):
        chunked_cross_entropy(**args)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_matches_cpu():
    hidden, weight, target = _inputs(40, 500, 16)
    expected = _loss_and_grads(_chunked(128), hidden, weight, target)
    actual = _loss_and_grads(_chunked(128), hidden.cuda(), weight.cuda(), target.cuda())
    for got, want in zip(actual, expected):
        torch.testing.assert_close(got.cpu(), want, atol=1e-4, rtol=1e-4)
