"""Model properties: causality of SASRec, left padding is a no-op, shapes."""

import pytest
import torch

from seqrec.models import GRU4Rec, SASRec

N = 30


def make(model_cls):
    torch.manual_seed(0)
    return model_cls(n_items=N, max_len=10).eval()


@pytest.mark.parametrize("model_cls", [SASRec, GRU4Rec])
def test_shapes_and_tied_item_table(model_cls):
    model = make(model_cls)
    seq = torch.tensor([[0, 0, 3, 4, 5], [1, 2, 3, 4, 5]])
    out = model(seq)
    assert out.shape == (2, 5, model.item_emb.weight.shape[1])
    assert model.item_emb.weight.shape[0] == N + 1
    assert torch.all(model.item_emb.weight[0] == 0)  # padding embedding is zero


@pytest.mark.parametrize("model_cls", [SASRec, GRU4Rec])
def test_causality_changing_a_later_item_leaves_earlier_outputs(model_cls):
    model = make(model_cls)
    seq = torch.tensor([[0, 0, 5, 6, 7, 8, 9, 10, 11, 12]])
    changed = seq.clone()
    changed[0, 6] = 25
    a, b = model(seq), model(changed)
    # real positions 2..5 precede the change (padding positions 0, 1 carry no prediction)
    assert torch.allclose(a[0, 2:6], b[0, 2:6], atol=1e-6)
    assert not torch.allclose(a[0, 6:], b[0, 6:], atol=1e-4)


def test_bidirectional_sasrec_sees_the_future():
    model = SASRec(n_items=N, max_len=10, bidirectional=True).eval()
    seq = torch.tensor([[0, 0, 5, 6, 7, 8, 9, 10, 11, 12]])
    changed = seq.clone()
    changed[0, 9] = 25
    assert not torch.allclose(model(seq)[0, 2], model(changed)[0, 2], atol=1e-4)


@pytest.mark.parametrize("model_cls", [SASRec, GRU4Rec])
def test_trimming_left_padding_keeps_real_positions(model_cls):
    model = make(model_cls)
    full = torch.tensor([[0, 0, 0, 0, 0, 0, 3, 4, 5, 6], [0, 0, 0, 0, 0, 1, 2, 3, 4, 5]])
    trimmed = full[:, -5:]
    a, b = model(full)[:, -5:], model(trimmed)
    real = trimmed != 0
    assert torch.allclose(a[real], b[real], atol=1e-5)


def test_padding_keys_are_masked_in_sasrec():
    model = make(SASRec)
    # same real items, different amounts of left padding: identical outputs at real positions
    a = model(torch.tensor([[0, 0, 0, 7, 8, 9, 1, 2, 3, 4]]))[0, 3:]
    emb_backup = model.item_emb.weight.data[0].clone()
    model.item_emb.weight.data[0] = 5.0  # even a non-zero padding embedding must not leak
    b = model(torch.tensor([[0, 0, 0, 7, 8, 9, 1, 2, 3, 4]]))[0, 3:]
    model.item_emb.weight.data[0] = emb_backup
    assert torch.allclose(a, b, atol=1e-5)
