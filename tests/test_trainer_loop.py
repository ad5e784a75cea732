"""The decisions of ``Trainer.fit`` that fix every reported number: when it stops, which epoch it
selects, that valid/test are evaluated with that epoch's weights, and how bucketed batches weigh
their positions. A stub model and scripted validation scores make each decision visible."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from seqrec.data import LeaveOneOut
from seqrec.data.preprocess import SequenceData
from seqrec.losses import Loss
from seqrec.training.trainer import Checkpoints, Trainer, batch_weights, epoch_batches


def tiny_split(lengths=(4, 5, 9, 12, 6, 30, 7, 4, 20, 8), n_items=50, seed=0) -> LeaveOneOut:
    rng = np.random.default_rng(seed)
    seqs = [rng.integers(1, n_items + 1, n) for n in lengths]
    offsets = np.concatenate([[0], np.cumsum([len(s) for s in seqs])]).astype(np.int64)
    data = SequenceData(
        "tiny",
        np.concatenate(seqs).astype(np.int64),
        offsets,
        n_items,
        np.array([f"u{i}" for i in range(len(seqs))]),
        np.array(["[PAD]"] + [f"i{i}" for i in range(1, n_items + 1)]),
        "fp",
    )
    return LeaveOneOut.build(data, max_len=50)


class StubModel(nn.Module):
    """hidden = the same learnable vector ``v`` at every position: ``[B, L] -> [B, L, d]``."""

    def __init__(self, n_items=50, d=4):
        super().__init__()
        self.v = nn.Parameter(torch.zeros(d))
        self.item_emb = nn.Embedding(n_items + 1, d)

    def forward(self, seq):
        return self.v.expand(*seq.shape, -1)

    def output_table(self):
        return self.item_emb.weight[1:]


class MeanOfV(Loss):
    """Loss = mean over the real positions of sum(v): its gradient w.r.t. v is 1 per coordinate,
    scaled by whatever weight the trainer applies to the batch."""

    name = "stub"

    def forward(self, hidden, targets, table, negatives=None):
        return hidden[targets != 0].sum(-1).mean()


class SetV(torch.optim.Optimizer):
    """An 'optimizer' that sets v to the epoch number, so the weights name their epoch."""

    def __init__(self, params, trainer_ref):
        super().__init__(params, {})
        self.trainer_ref = trainer_ref

    def step(self, closure=None):
        epoch = self.trainer_ref[0].state.epoch + 1
        for group in self.param_groups:
            for p in group["params"]:
                with torch.no_grad():
                    p.fill_(float(epoch))


def scripted_trainer(ranks: list[int], patience: int, max_epochs: int = 50):
    """A trainer whose weights after epoch e rank every validation target at ``ranks[e - 1]``
    (so the validation NDCG@20 is scripted by the weights, as for a real model); every evaluation
    is recorded with the epoch whose weights it saw."""
    split = tiny_split()
    model = StubModel()
    ref = []
    trainer = Trainer(
        model,
        MeanOfV(),
        SetV([model.v], ref),
        split,
        max_epochs=max_epochs,
        patience=patience,
        progress=False,
        bucket_by_length=False,
    )
    ref.append(trainer)
    seen = []

    def evaluate(which, epoch=None):
        weights_of = int(model.v.detach()[0])
        seen.append((which, weights_of))
        return torch.full((len(split.valid_target),), ranks[weights_of - 1])

    trainer.evaluate = evaluate
    return trainer, seen


def ndcg(rank):
    return 1 / math.log2(rank + 1)


def test_early_stopping_patience_and_best_epoch():
    # ranks per epoch (lower = better): best at epoch 3 (rank 2), never better afterwards
    ranks = [9, 5, 2, 4, 3, 6, 7, 8, 9, 5, 4, 3, 3, 2, 1]
    trainer, seen = scripted_trainer(ranks, patience=4)
    result = trainer.fit()
    assert result.best_epoch == 3
    assert result.epochs_run == 7  # epochs 4..7 without improvement, then stop
    assert result.metrics["valid/ndcg@20"] == pytest.approx(ndcg(2))


def test_ties_need_strict_improvement():
    ranks = [5, 2, 2, 2, 2, 9]
    trainer, _ = scripted_trainer(ranks, patience=3)
    result = trainer.fit()
    assert result.best_epoch == 2  # equal scores in epochs 3-5 do not move the selection
    assert result.epochs_run == 5
    assert trainer.state.best_score == pytest.approx(ndcg(2))


def test_final_valid_and_test_use_the_restored_best_weights():
    ranks = [9, 1, 5, 6, 7, 8]
    trainer, seen = scripted_trainer(ranks, patience=3)
    trainer.fit()
    assert trainer.state.epoch == 5  # trained on to epoch 5: v was 5 before restoring
    assert seen[-2:] == [("valid", 2), ("test", 2)]  # both with epoch 2's weights
    assert all(which == "valid" for which, _ in seen[:-2])  # test never seen during training


def test_max_epochs_bounds_the_loop():
    trainer, _ = scripted_trainer([20, 15, 10, 8, 5, 3, 2, 1], patience=10, max_epochs=6)
    result = trainer.fit()
    assert result.epochs_run == 6 and result.best_epoch == 6


def test_bucket_weights_give_every_position_the_same_weight():
    lengths = torch.tensor([1, 1, 2, 3, 40, 50, 45, 2, 7, 9, 30, 1])
    batches = epoch_batches(lengths, 3, torch.Generator().manual_seed(0), bucket_by_length=True, pool_batches=4)
    w = batch_weights(batches, lengths)
    per_batch = torch.stack([lengths[b].sum() for b in batches]).double()
    # weight / positions is the same constant for every batch: 1 / (mean positions per batch)
    assert torch.allclose(w / per_batch, torch.full_like(w, 1 / per_batch.mean()))
    assert float(w.mean()) == pytest.approx(1.0)


def test_bucketed_epoch_applies_the_weights_to_each_batch():
    """Each batch's gradient on v is its weight (the loss is a mean with gradient 1): the recorded
    gradient of every batch divided by its positions must be the same for all batches."""
    split = tiny_split()
    model = StubModel()
    grads = []

    class Record(torch.optim.Optimizer):
        def __init__(self, params):
            super().__init__(params, {})

        def step(self, closure=None):
            grads.append(float(model.v.grad[0]))

    trainer = Trainer(
        model, MeanOfV(), Record([model.v]), split, batch_size=2, pool_batches=2, progress=False, bucket_by_length=True
    )
    trainer.train_epoch(1)
    batches = trainer._start_epoch(1)
    positions = torch.stack([trainer.train_lengths[b].sum() for b in batches]).double()
    assert len(set(positions.tolist())) > 1  # batches of unequal size, else the test proves nothing
    ratio = torch.tensor(grads, dtype=torch.float64) / positions
    assert torch.allclose(ratio, torch.full_like(ratio, float(1 / positions.mean())), rtol=1e-6)


def test_epoch_randomness_depends_on_seed_and_epoch_only():
    split = tiny_split()
    a = Trainer(
        StubModel(),
        MeanOfV(),
        torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=0.1),
        split,
        batch_size=2,
        progress=False,
    )
    b = Trainer(
        StubModel(),
        MeanOfV(),
        torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=0.1),
        split,
        batch_size=2,
        progress=False,
    )
    order_a3 = a._start_epoch(3)
    dropout_a3 = torch.rand(5)
    a._start_epoch(1)
    order_b3 = b._start_epoch(3)  # b never ran epochs 1, 2
    assert all(torch.equal(x, y) for x, y in zip(order_a3, order_b3))
    assert torch.equal(torch.rand(5), dropout_a3)
    assert not all(torch.equal(x, y) for x, y in zip(order_a3, b._start_epoch(4)))


def test_in_memory_checkpoints_keep_a_copy():
    store = Checkpoints()
    state = {"model": {"w": torch.ones(2)}}
    store.save_best(state)
    state["model"]["w"].zero_()
    assert torch.equal(store.load_best()["model"]["w"], torch.ones(2))


@pytest.mark.parametrize("loss_name, trained", [("ce", True), ("bce", False)])
def test_the_training_step_trains_a_padding_class_with_full_softmax_losses_only(loss_name, trained):
    from seqrec.losses import BCE, CE
    from seqrec.models import GRU4Rec

    split = tiny_split()
    torch.manual_seed(0)
    model = GRU4Rec(n_items=split.n_items, max_len=50, random_padding_row=True, padding_class=True)
    before = model.item_emb.weight[0].detach().clone()
    loss = CE() if loss_name == "ce" else BCE()
    if loss.sampler is not None:
        loss.sampler.bind(split)
    trainer = Trainer(model, loss, torch.optim.Adam(model.parameters(), lr=0.01), split, progress=False)
    trainer.train_epoch(1)
    # BCE reads only its items' rows, and padding_idx keeps the lookup's gradient off row 0
    assert (model.item_emb.weight[0] != before).any().item() is trained
