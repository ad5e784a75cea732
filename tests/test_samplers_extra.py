"""Popularity and in-batch negative samplers on a hand-written split: the counted frequencies,
the distributions and log-probabilities they report, reproducibility from the seed, and no
padding / no own positive."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from seqrec.data.preprocess import SequenceData
from seqrec.data.split import LeaveOneOut
from seqrec.losses.samplers_extra import InBatchSampler, PopularitySampler, training_item_counts

N_ITEMS = 8


def make_split() -> LeaveOneOut:
    # training parts s[:-2]: user 0 -> 1 2 1 3, user 1 -> 2 2, user 2 -> 1 (its 7, 8 are valid/test)
    # item 5, 6, 7, 8 appear only as validation/test items: never counted
    seqs = [[1, 2, 1, 3, 5, 6], [2, 2, 7, 8], [1, 7, 8]]
    lengths = [len(s) for s in seqs]
    data = SequenceData(
        name="hand",
        items=np.array([i for s in seqs for i in s], dtype=np.int64),
        offsets=np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64),
        n_items=N_ITEMS,
        user_tokens=np.array([f"u{u}" for u in range(len(seqs))]),
        item_tokens=np.array(["[PAD]"] + [str(i) for i in range(1, N_ITEMS + 1)]),
        fingerprint="0" * 16,
    )
    return LeaveOneOut.build(data, max_len=5)


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def test_training_counts_are_the_training_parts_only():
    counts = training_item_counts(make_split())
    assert counts.tolist() == [0, 3, 3, 1, 0, 0, 0, 0, 0]


def test_popularity_draws_by_training_frequency():
    sampler = PopularitySampler().bind(make_split())
    targets = torch.tensor([[0, 1, 2], [3, 2, 2]])
    batch = sampler.sample(torch.tensor([0, 1]), targets, 20000, gen(0))
    assert batch.items.shape == (2, 3, 20000)
    assert set(batch.items.unique().tolist()) == {1, 2, 3}  # never 0, never an uncounted item
    freq = torch.bincount(batch.items.flatten(), minlength=N_ITEMS + 1).double() / batch.items.numel()
    assert freq[1:4].tolist() == pytest.approx([3 / 7, 3 / 7, 1 / 7], abs=0.005)  # 120k draws: sd ~0.0014
    expected_log_q = torch.tensor([0, math.log(3 / 7), math.log(3 / 7), math.log(1 / 7)], dtype=torch.float64)[
        batch.items
    ]
    assert torch.allclose(batch.log_q.double(), expected_log_q, atol=1e-6)


def test_popularity_is_reproducible_from_the_seed():
    sampler = PopularitySampler().bind(make_split())
    targets = torch.tensor([[0, 1, 2], [3, 2, 2]])
    a = sampler.sample(torch.tensor([0, 1]), targets, 50, gen(7)).items
    b = sampler.sample(torch.tensor([0, 1]), targets, 50, gen(7)).items
    c = sampler.sample(torch.tensor([0, 1]), targets, 50, gen(8)).items
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_popularity_needs_bind():
    with pytest.raises(RuntimeError, match="bind"):
        PopularitySampler().sample(torch.tensor([0]), torch.tensor([[1]]), 1, gen(0))


# -- in-batch -------------------------------------------------------------------------------------
TARGETS = torch.tensor([[0, 0, 4, 5], [2, 4, 4, 1], [0, 3, 3, 3]])  # pool: 4 5 2 4 4 1 3 3 3 (M = 9)


def test_in_batch_never_returns_the_own_positive_or_padding():
    sampler = InBatchSampler().bind(make_split())
    batch = sampler.sample(torch.arange(3), TARGETS, 500, gen(1))
    real = TARGETS != 0
    own = TARGETS.unsqueeze(-1).expand_as(batch.items)
    assert not (batch.items == own)[real].any()
    assert (batch.items != 0).all()
    assert set(batch.items[real].unique().tolist()) <= set(TARGETS[real].tolist())


def test_in_batch_distribution_and_log_q():
    sampler = InBatchSampler().bind(make_split())
    k = 40000
    batch = sampler.sample(torch.arange(3), TARGETS, k, gen(2))
    # position (1, 1) has positive 4 (3 copies in the pool of 9): the other 6 entries are
    # 5, 2, 1, 3, 3, 3 -> q = 1/6, 1/6, 1/6, 3/6
    draws = batch.items[1, 1]
    freq = torch.bincount(draws, minlength=6).double() / k
    assert freq[[1, 2, 3, 5]].tolist() == pytest.approx([1 / 6, 1 / 6, 3 / 6, 1 / 6], abs=0.01)
    assert freq[4] == 0
    q = {1: 1 / 6, 2: 1 / 6, 3: 3 / 6, 5: 1 / 6}
    expected = torch.tensor([math.log(q[int(i)]) for i in draws[:200]], dtype=torch.float64)
    assert torch.allclose(batch.log_q[1, 1, :200].double(), expected, atol=1e-6)
    # a padding position draws from the whole pool: q(3) = 3/9
    assert batch.log_q[0, 0][batch.items[0, 0] == 3][0].item() == pytest.approx(math.log(3 / 9), abs=1e-6)


def test_in_batch_is_reproducible_from_the_seed():
    sampler = InBatchSampler().bind(make_split())
    a = sampler.sample(torch.arange(3), TARGETS, 30, gen(5)).items
    b = sampler.sample(torch.arange(3), TARGETS, 30, gen(5)).items
    c = sampler.sample(torch.arange(3), TARGETS, 30, gen(6)).items
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_in_batch_without_another_item_falls_back_to_the_catalogue():
    sampler = InBatchSampler().bind(make_split())
    targets = torch.tensor([[0, 6, 6]])  # the batch's only positive item is 6
    batch = sampler.sample(torch.tensor([0]), targets, 2000, gen(3))
    real = batch.items[0, 1:]
    assert (real != 6).all() and (real >= 1).all() and (real <= N_ITEMS).all()
    assert set(real.unique().tolist()) == {1, 2, 3, 4, 5, 7, 8}
    assert torch.allclose(batch.log_q[0, 1:], torch.full_like(batch.log_q[0, 1:], -math.log(N_ITEMS - 1)))
