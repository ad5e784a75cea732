"""Batching and the training loop: bucketing is a pure speed-up, early stopping follows the monitor."""

import pytest
import torch

from seqrec.losses import BCE, CCE, CE
from seqrec.losses.samplers import NegativeBatch
from seqrec.models import GRU4Rec, SASRec
from seqrec.training.trainer import epoch_batches


def test_epoch_batches_cover_every_user_once_and_bucket_lengths():
    lengths = torch.randint(1, 51, (1000,), generator=torch.Generator().manual_seed(0))
    batches = epoch_batches(lengths, 32, torch.Generator().manual_seed(1), bucket_by_length=True, pool_batches=8)
    flat = torch.cat(batches)
    assert sorted(flat.tolist()) == list(range(1000))
    assert all(len(b) <= 32 for b in batches)
    # inside a batch lengths are close: much narrower spread than random batches
    spread = torch.tensor([float(lengths[b].max() - lengths[b].min()) for b in batches]).mean()
    random_batches = epoch_batches(lengths, 32, torch.Generator().manual_seed(1), bucket_by_length=False)
    random_spread = torch.tensor([float(lengths[b].max() - lengths[b].min()) for b in random_batches]).mean()
    assert spread < random_spread / 3


def test_epoch_batches_are_reproducible_from_the_seed():
    lengths = torch.arange(100)
    a = epoch_batches(lengths, 10, torch.Generator().manual_seed(5))
    b = epoch_batches(lengths, 10, torch.Generator().manual_seed(5))
    c = epoch_batches(lengths, 10, torch.Generator().manual_seed(6))
    assert all(torch.equal(x, y) for x, y in zip(a, b))
    assert not all(torch.equal(x, y) for x, y in zip(a, c))


def batch_of_short_sequences(max_len=50, n_items=40, batch=6):
    gen = torch.Generator().manual_seed(0)
    lengths = torch.tensor([3, 7, 1, 12, 5, 9])[:batch]
    inputs = torch.zeros(batch, max_len, dtype=torch.long)
    targets = torch.zeros(batch, max_len, dtype=torch.long)
    for row, n in enumerate(lengths.tolist()):
        seq = torch.randint(1, n_items + 1, (n + 1,), generator=gen)
        inputs[row, max_len - n :] = seq[:-1]
        targets[row, max_len - n :] = seq[1:]
    negatives = torch.randint(1, n_items + 1, (batch, max_len, 2), generator=gen)
    return inputs, targets, negatives, int(lengths.max())


@pytest.mark.parametrize("model_cls", [SASRec, GRU4Rec])
@pytest.mark.parametrize("loss", [CCE(), CE(), BCE(num_negatives=2)], ids=["cce", "ce", "bce"])
def test_trimmed_batch_gives_same_hidden_loss_and_gradients(model_cls, loss):
    torch.manual_seed(0)
    model = model_cls(n_items=40, max_len=50, dropout=0.0)
    inputs, targets, negatives, width = batch_of_short_sequences()

    def step(keep):
        model.zero_grad()
        inp, tgt, neg = inputs[:, -keep:], targets[:, -keep:], negatives[:, -keep:]
        hidden = model(inp)
        value = loss(hidden, tgt, model.output_table(), NegativeBatch(neg))
        value.backward()
        grads = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
        return hidden[tgt != 0].detach(), value.detach(), grads

    h_full, l_full, g_full = step(50)
    h_trim, l_trim, g_trim = step(width)
    assert torch.allclose(h_full, h_trim, atol=1e-5)
    assert torch.allclose(l_full, l_trim, atol=1e-5)
    assert g_full.keys() == g_trim.keys()
    for name, grad in g_trim.items():
        assert torch.allclose(g_full[name], grad, atol=1e-5), name
