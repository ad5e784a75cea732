"""Prefix samples (``trainer.samples=prefixes``): every prefix of a training sequence is a sample of
its own, the protocol of the models published on the S3-Rec files. Cut by index from the same
tensors; for a causal model CE over the prefixes sees exactly the (history, next item) pairs that
CCE sees at every position of the sequences."""

from __future__ import annotations

from collections import Counter

import pytest
import torch
from conftest import tiny_config
from test_analysis import make_split

from seqrec.losses import CCE, CE
from seqrec.models import GRU4Rec
from seqrec.runs.pipeline import run
from seqrec.training.trainer import Trainer

# training parts s[:-2]: [1 2 3 4], [5 6], [2 7 8 9 3] (the last two items are valid/test targets)
SEQS = [[1, 2, 3, 4, 5, 6], [5, 6, 7, 8], [2, 7, 8, 9, 3, 4, 1]]


def trainer(split, samples, loss, model=None):
    model = model or GRU4Rec(10, 8, embedding_size=4, hidden_size=6, dropout=0.0)
    return Trainer(model, loss, torch.optim.SGD(model.parameters(), lr=0.1), split, samples=samples, progress=False)


def test_every_prefix_is_a_sample_with_its_own_targets():
    split = make_split(SEQS, n_items=10, max_len=8)
    t = trainer(split, "prefixes", CE())
    # training inputs s[:-3] → targets s[1:-2]: user 0: 1 2 3 → 2 3 4; user 1: 5 → 6; user 2: 2 7 8 9 → 7 8 9 3
    assert t.train_lengths.tolist() == [1, 2, 3, 1, 1, 2, 3, 4]
    users, inputs, targets = t.sample_batch(torch.arange(8), keep=4)
    assert users.tolist() == [0, 0, 0, 1, 2, 2, 2, 2]
    assert inputs.tolist() == [[0, 0, 0, 1], [0, 0, 1, 2], [0, 1, 2, 3], [0, 0, 0, 5],
                               [0, 0, 0, 2], [0, 0, 2, 7], [0, 2, 7, 8], [2, 7, 8, 9]]  # fmt: skip
    assert targets.tolist() == [[0, 0, 0, 2], [0, 0, 2, 3], [0, 2, 3, 4], [0, 0, 0, 6],
                                [0, 0, 0, 7], [0, 0, 7, 8], [0, 7, 8, 9], [7, 8, 9, 3]]  # fmt: skip
    # a sequence sample is its row, unchanged
    _, rows, row_targets = trainer(split, "sequences", CCE()).sample_batch(torch.arange(3), keep=4)
    assert rows.tolist() == [[0, 1, 2, 3], [0, 0, 0, 5], [2, 7, 8, 9]]
    assert row_targets.tolist() == [[0, 2, 3, 4], [0, 0, 0, 6], [7, 8, 9, 3]]


def pairs(inputs, targets, last_only):
    """(items before and at t, the target at t) for every position a loss uses."""
    out = Counter()
    for seq, tgt in zip(inputs.tolist(), targets.tolist()):
        for t in [len(seq) - 1] if last_only else range(len(seq)):
            if tgt[t]:
                out[(tuple(i for i in seq[: t + 1] if i), tgt[t])] += 1
    return out


def test_ce_over_prefixes_sees_the_pairs_cce_sees_over_sequences():
    split = make_split(SEQS, n_items=10, max_len=8)
    prefixes, sequences = trainer(split, "prefixes", CE()), trainer(split, "sequences", CCE())
    _, pi, pt = prefixes.sample_batch(torch.arange(len(prefixes.train_lengths)), keep=8)
    _, si, st = sequences.sample_batch(torch.arange(3), keep=8)
    assert pairs(pi, pt, last_only=True) == pairs(si, st, last_only=False)
    assert sum(pairs(si, st, last_only=False).values()) == 8


def test_for_a_causal_model_the_losses_and_gradients_are_equal():
    # GRU4Rec has no bias and padding embeds to 0, so left padding leaves its state at 0: the hidden
    # state at a prefix's end equals the sequence's at that position, and CE over all prefixes is
    # CCE over all positions, value and gradient
    split = make_split(SEQS, n_items=10, max_len=8)
    torch.manual_seed(0)
    model = GRU4Rec(10, 8, embedding_size=4, hidden_size=6, dropout=0.0).double()
    grads = []
    for samples, loss in (("prefixes", CE()), ("sequences", CCE())):
        t = trainer(split, samples, loss, model)
        _, inputs, targets = t.sample_batch(torch.arange(len(t.train_lengths)), keep=8)
        model.zero_grad()
        value = loss(model(inputs), targets, model.output_table())
        value.backward()
        grads.append((value.item(), [p.grad.clone() for p in model.parameters()]))
    (a, ga), (b, gb) = grads
    assert a == pytest.approx(b, rel=1e-12)
    assert all(torch.allclose(x, y, atol=1e-12) for x, y in zip(ga, gb))


@pytest.mark.parametrize("bucket", ["true", "false"])
def test_a_run_trains_on_prefixes(tmp_path, bucket):
    overrides = ["trainer.max_epochs=2", "loss=ce", "trainer.samples=prefixes", f"trainer.bucket_by_length={bucket}"]
    a = run(tiny_config(tmp_path, tmp_path / "a", *overrides))
    b = run(tiny_config(tmp_path, tmp_path / "b", *overrides))
    assert a["epochs_run"] == 2 and a["test/ndcg@10"] == b["test/ndcg@10"]  # seeded like every run
