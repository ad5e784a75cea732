"""Mixed precision: fp16 (autocast + GradScaler) keeps the softmax and the losses in fp32, so
extreme logits stay finite and match fp32; a training epoch in fp16 runs and learns."""

from __future__ import annotations

import math

import pytest
import torch
from test_trainer_loop import tiny_split

from seqrec.losses import BCE, CCE, CE
from seqrec.losses.samplers import NegativeBatch
from seqrec.models import SASRec
from seqrec.training.trainer import Trainer


@pytest.mark.parametrize("loss", [CCE(), CE(), BCE(num_negatives=3)], ids=["cce", "ce", "bce"])
def test_fp16_loss_on_extreme_logits_is_finite_and_equals_fp32(loss):
    gen = torch.Generator().manual_seed(0)
    n_items, d = 30, 8
    # logits of magnitude ~ 300-1000: exp() overflows fp16 (max 65504) from 11.1 on, so a softmax
    # or log-sigmoid in fp16 would give inf/NaN; the products themselves fit in fp16
    hidden = torch.randn(2, 5, d, generator=gen) * 12
    table = torch.randn(n_items + 1, d, generator=gen) * 12
    targets = torch.randint(1, n_items + 1, (2, 5), generator=gen)
    targets[0, :2] = 0  # padding
    negatives = torch.randint(1, n_items + 1, (2, 5, 3), generator=gen)
    logits = hidden @ table[1:].T
    assert logits.abs().max() > 300

    def value(dtype):
        h = hidden.clone().requires_grad_()
        if dtype is None:
            out = loss(h, targets, table[1:], NegativeBatch(negatives))
        else:
            with torch.autocast("cpu", dtype=dtype):
                out = loss(h.float(), targets, table[1:], NegativeBatch(negatives))
        out.backward()
        return out.detach(), h.grad

    ref, ref_grad = value(None)
    half, half_grad = value(torch.float16)
    assert ref.dtype == half.dtype == torch.float32
    assert math.isfinite(float(half)) and torch.isfinite(half_grad).all()
    # fp16 products carry ~3 significant digits: relative agreement at that level
    assert float(half) == pytest.approx(float(ref), rel=5e-3)
    assert torch.allclose(half_grad, ref_grad, rtol=2e-2, atol=2e-2 * float(ref_grad.abs().max()))


def test_fp16_training_epoch_runs_with_loss_scaling():
    split = tiny_split(lengths=(12, 15, 20, 9, 30, 25, 18, 11) * 4)
    torch.manual_seed(0)
    model = SASRec(n_items=50, max_len=50, dropout=0.0)
    trainer = Trainer(
        model,
        CCE(),
        torch.optim.Adam(model.parameters(), lr=1e-2),
        split,
        batch_size=8,
        precision="fp16",
        progress=False,
    )
    assert trainer.scaler is not None
    first = trainer.train_epoch(1)
    for epoch in range(2, 6):
        last = trainer.train_epoch(epoch)
    assert math.isfinite(first) and last < first
    assert trainer.state_dict()["scaler"]["scale"] > 0  # the scaler's state is part of last.pt


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
@pytest.mark.parametrize("n_items", [30, 2000], ids=["matmul-path", "gather-path"])
def test_under_autocast_the_positive_is_rounded_like_the_negatives(dtype, n_items):
    # BPR/TOP1 compare s+ with s-: s+ exact and s- rounded would put the rounding into the difference
    d, ulp = 64, torch.finfo(dtype).eps
    for seed in range(20):
        gen = torch.Generator().manual_seed(seed)
        hidden = torch.randn(2, 5, d, generator=gen)
        table = torch.randn(n_items, d, generator=gen)
        targets = torch.randint(1, n_items + 1, (2, 5), generator=gen)
        negatives = torch.cat([targets.unsqueeze(-1), torch.randint(1, n_items + 1, (2, 5, 3), generator=gen)], -1)
        with torch.autocast("cpu", dtype=dtype):
            s = BCE(num_negatives=4).scores(hidden, targets, table, NegativeBatch(negatives))
        assert s.neg.dtype == s.pos.dtype == torch.float32
        assert torch.equal(s.pos, s.pos.to(dtype).float())  # a value of the autocast dtype, as s- are
        # negative 0 is the target itself: the same score up to the sums' order (one ulp)
        assert torch.all((s.pos - s.neg[:, 0]).abs() <= ulp * s.pos.abs().clamp(min=1.0))
        exact = (hidden.reshape(-1, d) * table[targets.reshape(-1) - 1]).sum(-1)
        assert torch.allclose(s.pos, exact, rtol=0.05, atol=0.3)
