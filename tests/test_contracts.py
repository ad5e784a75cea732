"""The loss and sampler contracts: the uniform sampler on a hand-written split, what losses declare,
and how the trainer uses it."""

from __future__ import annotations

import math

import pytest
import torch
from test_data_split import make_data

from seqrec.data.split import LeaveOneOut
from seqrec.losses import BCE, CCE, CE, Loss
from seqrec.losses.samplers import NegativeBatch, UniformSampler


@pytest.fixture
def loo() -> LeaveOneOut:
    # training parts s[:-2]: user 0 {1, 2, 3, 4, 5}, user 1 {8}, user 2 {2, 8}; N = 10
    return LeaveOneOut.build(make_data([[1, 2, 3, 4, 5, 6, 7], [8, 9, 10], [2, 8, 4, 9]], 10), max_len=4)


def test_uniform_sampler_draws_the_splits_negatives_with_log_q(loo):
    sampler = UniformSampler().bind(loo)
    users = torch.tensor([0, 2, 1])
    targets = torch.tensor([[0, 2, 3, 4], [0, 0, 0, 8], [0, 0, 0, 0]])  # [B, L]
    batch = sampler.sample(users, targets, 3, torch.Generator().manual_seed(4))
    assert isinstance(batch, NegativeBatch)
    assert batch.items.shape == (3, 4, 3) and batch.items.dtype == torch.int64
    # the same draws as the split's sampler from the same generator state (the trainer's numbers)
    same = loo.sample_negatives(users, (4, 3), torch.Generator().manual_seed(4))
    assert torch.equal(batch.items, same)
    assert not set(batch.items[0].flatten().tolist()) & {1, 2, 3, 4, 5}
    # uniform over the user's free items: 10 - 5, 10 - 2, 10 - 1 of them
    expected = torch.tensor([-math.log(5), -math.log(8), -math.log(9)])
    assert torch.allclose(batch.log_q, expected.view(3, 1, 1).expand(3, 4, 3))


def test_sampler_must_be_bound(loo):
    with pytest.raises(RuntimeError, match="bind"):
        UniformSampler().sample(torch.tensor([0]), torch.zeros(1, 4, dtype=torch.long), 1, torch.Generator())


def test_losses_declare_positions_negatives_and_sampler():
    assert (CCE.positions, CE.positions, BCE.positions) == ("all", "last", "all")
    assert CCE().num_negatives == CE().num_negatives == 0 and CCE().sampler is None
    bce = BCE(num_negatives=3)
    assert bce.num_negatives == 3 and isinstance(bce.sampler, UniformSampler)
    assert all(isinstance(loss, torch.nn.Module) for loss in (CCE(), CE(), bce))
    with pytest.raises(ValueError, match="num_negatives"):
        BCE(num_negatives=0)

    class Bad(Loss):
        positions = "first"

    with pytest.raises(ValueError, match="positions"):
        Bad()


def test_a_sampler_name_instead_of_a_sampler_says_how_to_choose_one():
    with pytest.raises(ValueError, match="loss/sampler=<name>"):
        BCE(sampler="uniform")  # what `loss.sampler=uniform` on the command line would pass


class LastOfV(Loss):
    """Mean over the rows of sum(h) at the last position: one term per sequence."""

    name, positions = "last_stub", "last"

    def forward(self, hidden, targets, table, negatives=None):
        keep = targets[:, -1] != 0
        return hidden[:, -1][keep].sum(-1).mean()


def test_a_loss_declares_how_many_terms_each_sequence_adds():
    """The trainer weighs bucketed batches by loss terms per sequence (test_trainer_loop checks
    the weighting): its length for an "all" loss, 1 for a "last" loss such as CE."""
    from test_trainer_loop import MeanOfV, StubModel, tiny_split

    from seqrec.training.trainer import Trainer

    split = tiny_split()

    def terms(loss):
        model = StubModel()
        return Trainer(
            model, loss, torch.optim.SGD(model.parameters(), lr=0.1), split, progress=False
        )._loss_positions()

    lengths = (split.train_target != 0).sum(1)
    assert torch.equal(terms(MeanOfV()), lengths) and len(set(lengths.tolist())) > 1
    assert torch.equal(terms(LastOfV()), torch.ones_like(lengths))
