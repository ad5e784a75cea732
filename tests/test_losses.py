"""Each loss against its formula (CCE paper Eqs. 20, 23, 26) on a tiny hand-made batch."""

import math

import pytest
import torch
import torch.nn.functional as F

from seqrec.losses import BCE, CCE, CE
from seqrec.losses.samplers import NegativeBatch
from seqrec.models.scoring import tied_table

torch.manual_seed(0)
N, D = 7, 4
ITEM_EMB = torch.randn(N + 1, D)
ITEM_EMB[0] = 0
TABLE = ITEM_EMB[1:]  # [N, d] what the model's output_table() gives: item i is row i - 1
HIDDEN = torch.randn(2, 4, D)
# left-padded targets; 0 = padding
TARGETS = torch.tensor([[0, 0, 3, 5], [2, 7, 1, 4]])


def reference_ce(h, item):
    """-log softmax(h · E[1:]^T)[item - 1], written out."""
    logits = ITEM_EMB[1:] @ h
    return -(logits[item - 1] - torch.logsumexp(logits, 0))


def test_cce_is_mean_over_real_positions_of_full_softmax_ce():
    expected = torch.stack(
        [reference_ce(HIDDEN[b, t], TARGETS[b, t]) for b in range(2) for t in range(4) if TARGETS[b, t] != 0]
    ).mean()
    assert torch.allclose(CCE()(HIDDEN, TARGETS, TABLE), expected, atol=1e-6)
    # the same as F.cross_entropy on each position
    per_pos = [
        F.cross_entropy((HIDDEN[b, t] @ ITEM_EMB[1:].T)[None], TARGETS[b, t][None] - 1)
        for b in range(2)
        for t in range(4)
        if TARGETS[b, t]
    ]
    assert torch.allclose(CCE()(HIDDEN, TARGETS, TABLE), torch.stack(per_pos).mean(), atol=1e-6)


def test_padding_changes_nothing():
    hidden = HIDDEN.clone()
    hidden[0, :2] = 1e3  # garbage at padding positions
    for loss in (CCE(), CE()):
        assert torch.allclose(loss(hidden, TARGETS, TABLE), loss(HIDDEN, TARGETS, TABLE))
    # extra left padding column changes nothing either
    padded_h = torch.cat([torch.randn(2, 1, D), HIDDEN], 1)
    padded_t = torch.cat([torch.zeros(2, 1, dtype=torch.long), TARGETS], 1)
    assert torch.allclose(CCE()(padded_h, padded_t, TABLE), CCE()(HIDDEN, TARGETS, TABLE), atol=1e-6)


def test_padding_row_is_never_a_class():
    # the classes are the N rows of the table: a huge padding embedding in the model's input
    # table does not reach them (tied_table drops it), and every row is a class
    emb = torch.nn.Embedding(N + 1, D, padding_idx=0)
    with torch.no_grad():
        emb.weight.copy_(ITEM_EMB)
        emb.weight[0] = 100.0
    assert torch.allclose(CCE()(HIDDEN, TARGETS, tied_table(emb)), CCE()(HIDDEN, TARGETS, TABLE))
    assert tied_table(emb).shape == (N, D)


def test_ce_uses_only_the_last_position():
    expected = torch.stack([reference_ce(HIDDEN[b, -1], TARGETS[b, -1]) for b in range(2)]).mean()
    assert torch.allclose(CE()(HIDDEN, TARGETS, TABLE), expected, atol=1e-6)
    hidden = HIDDEN.clone()
    hidden[:, :-1] = torch.randn(2, 3, D)
    assert torch.allclose(CE()(hidden, TARGETS, TABLE), expected, atol=1e-6)


def test_bce_formula_with_one_and_two_negatives():
    negatives = torch.tensor([[[1], [1], [6], [2]], [[3], [3], [5], [6]]])
    terms = []
    for b in range(2):
        for t in range(4):
            if TARGETS[b, t] == 0:
                continue
            pos = HIDDEN[b, t] @ ITEM_EMB[TARGETS[b, t]]
            neg = HIDDEN[b, t] @ ITEM_EMB[negatives[b, t, 0]]
            terms.append(-math.log(torch.sigmoid(pos)) - math.log(1 - torch.sigmoid(neg)))
    assert BCE()(HIDDEN, TARGETS, TABLE, negatives=NegativeBatch(negatives)).item() == pytest.approx(
        sum(terms) / len(terms), rel=1e-5
    )

    two = torch.cat([negatives, negatives], dim=2)  # each negative counted twice
    extra = [
        -math.log(1 - torch.sigmoid(HIDDEN[b, t] @ ITEM_EMB[negatives[b, t, 0]]))
        for b in range(2)
        for t in range(4)
        if TARGETS[b, t]
    ]
    expected_two = (sum(terms) + sum(extra)) / len(terms)
    assert BCE(num_negatives=2)(HIDDEN, TARGETS, TABLE, negatives=NegativeBatch(two)).item() == pytest.approx(
        expected_two, rel=1e-5
    )


def test_bce_needs_negatives():
    with pytest.raises(ValueError, match="negatives"):
        BCE()(HIDDEN, TARGETS, TABLE)


def test_cce_gradients_reach_item_table_but_not_padding_row():
    emb = torch.nn.Embedding(N + 1, D, padding_idx=0)
    h = HIDDEN.clone().requires_grad_()
    CCE()(h, TARGETS, tied_table(emb)).backward()
    assert emb.weight.grad[1:].abs().sum() > 0
    assert torch.all(emb.weight.grad[0] == 0)
    assert torch.all(h.grad[0, :2] == 0)  # padding positions get no gradient


@pytest.mark.parametrize("loss", [CCE(), CE(), CCE(chunk_size=3), CE(chunk_size=2)])
def test_chunked_softmax_losses_match_unchunked(loss):
    full = type(loss)()(HIDDEN, TARGETS, TABLE)
    assert torch.allclose(loss(HIDDEN, TARGETS, TABLE), full, atol=1e-6)


@pytest.mark.parametrize("chunk_size", ["auto", None, 1, 5])
def test_chunk_size_never_changes_value_or_gradients(chunk_size):
    def value_and_grads(chunk):
        emb = TABLE.clone().requires_grad_()
        h = HIDDEN.clone().requires_grad_()
        value = CCE(chunk_size=chunk)(h, TARGETS, emb)
        value.backward()
        return value, h.grad, emb.grad

    ref = value_and_grads(None)
    for a, b in zip(value_and_grads(chunk_size), ref):
        assert torch.allclose(a, b, atol=1e-6)


def test_bf16_autocast_keeps_the_loss_close_and_in_fp32():
    with torch.autocast(device_type="cpu", dtype=torch.bfloat16):
        low = CCE()(HIDDEN, TARGETS, TABLE)
    assert low.dtype == torch.float32
    assert low.item() == pytest.approx(CCE()(HIDDEN, TARGETS, TABLE).item(), rel=2e-2)


def test_bad_chunk_size_is_a_value_error_naming_it():
    with pytest.raises(ValueError, match="chunk_size='big'"):
        CCE(chunk_size="big")
    with pytest.raises(ValueError, match="chunk_size=0"):
        CE(chunk_size=0)


def test_auto_chunk_size_by_device_and_catalogue():
    from seqrec.losses.softmax import resolve_chunk_size

    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    assert resolve_chunk_size("auto", 12_101, cpu) == 2**20 // 12_101 == 86  # Beauty: ~4 MB of logits
    assert resolve_chunk_size("auto", 3_646, cpu) == 287  # LastFM
    assert resolve_chunk_size("auto", 1_000_000, cpu) == 32  # never thinner than 32 rows
    assert resolve_chunk_size("auto", 10, cpu) == 4096  # tiny catalogue: capped
    assert resolve_chunk_size("auto", 1_000_000, cuda) == 2**27 // 1_000_000 == 134
    assert resolve_chunk_size(None, 100, cpu) is None and resolve_chunk_size(7, 100, cpu) == 7
    for bad in ("big", 0, -3):
        with pytest.raises(ValueError, match="chunk_size"):
            resolve_chunk_size(bad, 100, cpu)
