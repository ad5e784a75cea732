"""The sampled-negative losses (BPR, TOP1, BPR-max, TOP1-max, sampled softmax, gBCE) against
their written formulas on a tiny hand-made batch, and the CCE paper's gradient expressions
w.r.t. the positive score (Eq. 9, 10, 13, 14) against autograd.

The references below are written out per position with Python floats (``math``) from the
papers' formulas; they share no code with ``seqrec.losses``.
"""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from seqrec.errors import ConfigError
from seqrec.losses.gbce import GBCE, gbce_beta, gbce_loss
from seqrec.losses.pairwise import BPR, TOP1, BPRMax, TOP1Max, bpr_loss, bpr_max_loss, top1_loss, top1_max_loss
from seqrec.losses.sampled import BCE
from seqrec.losses.sampled_softmax import SampledSoftmax, sampled_softmax_loss
from seqrec.losses.samplers import NegativeBatch

torch.manual_seed(0)
N, D, K = 6, 3, 3
TABLE = torch.randn(N, D, dtype=torch.float64)  # item i = row i - 1
HIDDEN = torch.randn(3, 4, D, dtype=torch.float64)
# left-padded; row 2 is all padding (no target at all)
TARGETS = torch.tensor([[0, 0, 3, 5], [2, 6, 1, 4], [0, 0, 0, 0]])
NEG_ITEMS = torch.tensor(
    [
        [[1, 1, 1], [2, 4, 6], [1, 2, 4], [1, 5, 6]],  # (0, 3): 5 is the positive -> accidental hit
        [[3, 4, 5], [1, 2, 3], [6, 6, 2], [4, 4, 4]],  # (1, 3): every negative is the positive
        [[1, 2, 3], [1, 2, 3], [1, 2, 3], [1, 2, 3]],
    ]
)
LOG_Q = torch.log(torch.rand(3, 4, K, dtype=torch.float64) * 0.5 + 0.01)


def sig(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x))


def dot(b: int, t: int, item: int) -> float:
    return float(HIDDEN[b, t] @ TABLE[item - 1])


def positions(which: str) -> list[tuple[int, int]]:
    """The (row, column) pairs a loss with ``positions=which`` uses, written out."""
    if which == "last":
        return [(b, 3) for b in range(3) if TARGETS[b, 3] != 0]
    return [(b, t) for b in range(3) for t in range(4) if TARGETS[b, t] != 0]


def pos_neg(b: int, t: int) -> tuple[float, list[float], list[float]]:
    """s+, the scores of the negatives that differ from the positive, and their log q."""
    p = int(TARGETS[b, t])
    kept = [k for k in range(K) if int(NEG_ITEMS[b, t, k]) != p]
    return dot(b, t, p), [dot(b, t, int(NEG_ITEMS[b, t, k])) for k in kept], [float(LOG_Q[b, t, k]) for k in kept]


def ref_bpr(sp, sn, _lq):
    return sum(-math.log(sig(sp - s)) for s in sn) / len(sn) if sn else 0.0


def ref_top1(sp, sn, _lq):
    return sum(sig(s - sp) + sig(s * s) for s in sn) / len(sn) if sn else 0.0


def softmax(xs):
    z = sum(math.exp(x) for x in xs)
    return [math.exp(x) / z for x in xs]


def ref_bpr_max(sp, sn, _lq, reg=1.0):
    if not sn:
        return 0.0
    w = softmax(sn)
    return -math.log(sum(wj * sig(sp - s) for wj, s in zip(w, sn))) + reg * sum(wj * s * s for wj, s in zip(w, sn))


def ref_top1_max(sp, sn, _lq):
    w = softmax(sn)
    return sum(wj * (sig(s - sp) + sig(s * s)) for wj, s in zip(w, sn))


def ref_sampled_softmax(sp, sn, lq, logq=False):
    k = K  # the correction uses the number of draws K, accidental hits included
    terms = [math.exp(s - (math.log(k) + q if logq else 0.0)) for s, q in zip(sn, lq)]
    return -math.log(math.exp(sp) / (math.exp(sp) + sum(terms)))


def ref_gbce(sp, sn, _lq, t=0.75):
    alpha = K / (N - 1)
    beta = alpha * (t * (1 - 1 / alpha) + 1 / alpha)
    return -math.log(sig(sp) ** beta) - sum(math.log(1 - sig(s)) for s in sn)


def ref_bce(sp, sn, _lq):
    return -math.log(sig(sp)) - sum(math.log(1 - sig(s)) for s in sn)


CASES = [
    pytest.param(BCE, {}, ref_bce, id="bce"),
    pytest.param(BPR, {}, ref_bpr, id="bpr"),
    pytest.param(TOP1, {}, ref_top1, id="top1"),
    pytest.param(BPRMax, {}, ref_bpr_max, id="bpr_max"),
    pytest.param(BPRMax, {"bpreg": 0.3}, lambda sp, sn, lq: ref_bpr_max(sp, sn, lq, 0.3), id="bpr_max-bpreg0.3"),
    pytest.param(TOP1Max, {}, ref_top1_max, id="top1_max"),
    pytest.param(SampledSoftmax, {}, ref_sampled_softmax, id="sampled_softmax"),
    pytest.param(
        SampledSoftmax,
        {"logq": True},
        lambda sp, sn, lq: ref_sampled_softmax(sp, sn, lq, True),
        id="sampled_softmax-logq",
    ),
    pytest.param(GBCE, {}, ref_gbce, id="gbce"),
    pytest.param(GBCE, {"t": 0.2}, lambda sp, sn, lq: ref_gbce(sp, sn, lq, 0.2), id="gbce-t0.2"),
]


def reference_value(ref, which: str) -> float:
    per_position = [ref(*pos_neg(b, t)) for b, t in positions(which)]
    return sum(per_position) / len(per_position)


@pytest.mark.parametrize("which", ["all", "last"])
@pytest.mark.parametrize("cls,kwargs,ref", CASES)
def test_value_matches_the_written_formula(cls, kwargs, ref, which):
    loss = cls(num_negatives=K, positions=which, **kwargs)
    value = loss(HIDDEN, TARGETS, TABLE, NegativeBatch(NEG_ITEMS, LOG_Q))
    assert value.item() == pytest.approx(reference_value(ref, which), rel=1e-9, abs=1e-12)


def torch_reference(ref_name: str, hidden, table, which: str, **kw) -> torch.Tensor:
    """The same formulas once more, per position in torch (for gradients), looping in Python."""
    total = []
    for b, t in positions(which):
        p = int(TARGETS[b, t])
        negs = [int(i) for i in NEG_ITEMS[b, t] if int(i) != p]
        sp = hidden[b, t] @ table[p - 1]
        sn = torch.stack([hidden[b, t] @ table[i - 1] for i in negs]) if negs else None
        if ref_name == "bce":
            total.append(-torch.log(torch.sigmoid(sp)) - (torch.log(1 - torch.sigmoid(sn)).sum() if negs else 0))
        elif ref_name == "bpr":
            total.append(-torch.log(torch.sigmoid(sp - sn)).mean() if negs else sp * 0)
        elif ref_name == "top1":
            total.append((torch.sigmoid(sn - sp) + torch.sigmoid(sn**2)).mean() if negs else sp * 0)
        elif ref_name == "bpr_max":
            w = torch.exp(sn) / torch.exp(sn).sum() if negs else None
            total.append(-torch.log((w * torch.sigmoid(sp - sn)).sum()) + (w * sn**2).sum() if negs else sp * 0)
        elif ref_name == "top1_max":
            w = torch.exp(sn) / torch.exp(sn).sum() if negs else None
            total.append((w * (torch.sigmoid(sn - sp) + torch.sigmoid(sn**2))).sum() if negs else sp * 0)
        elif ref_name == "sampled_softmax":
            z = torch.exp(sp) + (torch.exp(sn).sum() if negs else 0)
            total.append(-torch.log(torch.exp(sp) / z))
        elif ref_name == "gbce":
            beta = 1 - 0.75 + 0.75 * K / (N - 1)
            total.append(-beta * torch.log(torch.sigmoid(sp)) - (torch.log(1 - torch.sigmoid(sn)).sum() if negs else 0))
    return torch.stack(total).mean()


@pytest.mark.parametrize("which", ["all", "last"])
@pytest.mark.parametrize("cls", [BCE, BPR, TOP1, BPRMax, TOP1Max, SampledSoftmax, GBCE], ids=lambda c: c.name)
def test_gradients_match_the_written_formula(cls, which):
    h1, e1 = HIDDEN.clone().requires_grad_(), TABLE.clone().requires_grad_()
    h2, e2 = HIDDEN.clone().requires_grad_(), TABLE.clone().requires_grad_()
    cls(num_negatives=K, positions=which)(h1, TARGETS, e1, NegativeBatch(NEG_ITEMS, LOG_Q)).backward()
    torch_reference(cls.name, h2, e2, which).backward()
    assert torch.allclose(h1.grad, h2.grad, atol=1e-10)
    assert torch.allclose(e1.grad, e2.grad, atol=1e-10)
    if which == "last":  # only the last column gets a gradient
        assert h1.grad[:, :3].abs().sum() == 0


@pytest.mark.parametrize("cls", [BCE, BPR, TOP1, BPRMax, TOP1Max, SampledSoftmax, GBCE], ids=lambda c: c.name)
def test_last_ignores_every_earlier_position(cls):
    loss = cls(num_negatives=K, positions="last")
    hidden, negatives = HIDDEN.clone(), NEG_ITEMS.clone()
    hidden[:, :3] = torch.randn(3, 3, D, dtype=torch.float64)
    negatives[:, :3] = torch.randint(1, N + 1, (3, 3, K))
    batch = NegativeBatch(NEG_ITEMS, LOG_Q)
    assert loss(hidden, TARGETS, TABLE, NegativeBatch(negatives, LOG_Q)) == loss(HIDDEN, TARGETS, TABLE, batch)
    # and "all" does not
    full = cls(num_negatives=K, positions="all")
    assert full(hidden, TARGETS, TABLE, batch) != full(HIDDEN, TARGETS, TABLE, batch)


# -- the CCE paper's gradients w.r.t. the positive score ------------------------------------------
S_POS = 0.4
S_NEG = [1.3, -0.2, 0.9, 2.5]


def grad_wrt_positive(fn, **kw) -> float:
    pos = torch.tensor([S_POS], dtype=torch.float64, requires_grad=True)
    neg = torch.tensor([S_NEG], dtype=torch.float64, requires_grad=True)
    fn(pos, neg, torch.ones_like(neg, dtype=torch.bool), **kw).sum().backward()
    return pos.grad.item()


def test_eq9_bpr_gradient():
    eq9 = -sum(1 - sig(S_POS - s) for s in S_NEG) / len(S_NEG)
    assert grad_wrt_positive(bpr_loss) == pytest.approx(eq9, rel=1e-12)


def test_eq10_top1_gradient_up_to_the_papers_sign():
    # Eq. 10 prints +(1/Ns) Σ σ(b)(1 - σ(b)) with b = s⁻ - s⁺; but dσ(s⁻ - s⁺)/ds⁺ = -σ'(b): the
    # magnitude is the paper's, the sign is negative (raising s⁺ lowers TOP1). The regulariser
    # σ(s⁻²) does not depend on s⁺.
    eq10 = sum(sig(s - S_POS) * (1 - sig(s - S_POS)) for s in S_NEG) / len(S_NEG)
    assert grad_wrt_positive(top1_loss) == pytest.approx(-eq10, rel=1e-12)


def test_eq13_bpr_max_gradient():
    w = softmax(S_NEG)
    b = [S_POS - s for s in S_NEG]
    eq13 = -sum(wj * sig(x) * (1 - sig(x)) for wj, x in zip(w, b)) / sum(wj * sig(x) for wj, x in zip(w, b))
    assert grad_wrt_positive(bpr_max_loss) == pytest.approx(eq13, rel=1e-12)
    assert grad_wrt_positive(bpr_max_loss, bpreg=5.0) == pytest.approx(eq13, rel=1e-12)  # λ-term: no s⁺


def test_eq14_top1_max_gradient():
    w = softmax(S_NEG)
    eq14 = -sum(wj * sig(s - S_POS) * (1 - sig(s - S_POS)) for wj, s in zip(w, S_NEG))
    assert grad_wrt_positive(top1_max_loss) == pytest.approx(eq14, rel=1e-12)


def test_eq21_bce_gradient_is_gbce_at_t0():
    # gBCE with t = 0 is BCE (Eq. 20): ∂/∂s⁺ = -(1 - σ(s⁺)) (Eq. 21)
    beta = gbce_beta(len(S_NEG), 100, 0.0)
    assert beta == pytest.approx(1.0, rel=1e-15)
    assert grad_wrt_positive(gbce_loss, beta=beta) == pytest.approx(-(1 - sig(S_POS)), rel=1e-12)


# -- logQ correction ------------------------------------------------------------------------------
def test_logq_is_the_textbook_importance_sampling_correction():
    # -log( e^{s⁺} / (e^{s⁺} + Σ_k e^{s⁻_k} / (K q_k)) )  (Bengio & Senécal 2008; Blanc & Rendle 2018)
    q = [0.05, 0.3, 0.01, 0.2]
    textbook = -math.log(
        math.exp(S_POS) / (math.exp(S_POS) + sum(math.exp(s) / (len(q) * qk) for s, qk in zip(S_NEG, q)))
    )
    pos = torch.tensor([S_POS], dtype=torch.float64)
    neg = torch.tensor([S_NEG], dtype=torch.float64)
    log_q = torch.tensor([q], dtype=torch.float64).log()
    valid = torch.ones_like(neg, dtype=torch.bool)
    assert sampled_softmax_loss(pos, neg, valid, log_q).item() == pytest.approx(textbook, rel=1e-12)
    plain = -math.log(math.exp(S_POS) / (math.exp(S_POS) + sum(math.exp(s) for s in S_NEG)))
    assert sampled_softmax_loss(pos, neg, valid).item() == pytest.approx(plain, rel=1e-12)


def test_logq_with_every_other_item_once_is_full_softmax_ce():
    # K = N - 1 negatives = every other item, q = 1/K: the corrected estimate is exact
    logits = torch.randn(N, dtype=torch.float64)
    target = 2
    others = [i for i in range(N) if i != target]
    pos, neg = logits[target].view(1), logits[others].view(1, -1)
    log_q = torch.full_like(neg, -math.log(len(others)))
    loss = sampled_softmax_loss(pos, neg, torch.ones_like(neg, dtype=torch.bool), log_q)
    assert loss.item() == pytest.approx(F.cross_entropy(logits.view(1, -1), torch.tensor([target])).item(), rel=1e-12)


def test_logq_needs_log_probabilities():
    with pytest.raises(ValueError, match="log_q"):
        SampledSoftmax(num_negatives=K, logq=True)(HIDDEN, TARGETS, TABLE, NegativeBatch(NEG_ITEMS, None))


# -- gBCE's β ------------------------------------------------------------------------------------
def test_gbce_beta_is_the_gsasrec_definition():
    # gSASRec (Petrov & Macdonald 2023): α = K / (|I| - 1), β = α (t (1 - 1/α) + 1/α);
    # t = 0 → plain BCE (β = 1), t = 1 → β = α; in between β = 1 - t (1 - α).
    k, n = 256, 12101
    alpha = k / (n - 1)
    assert gbce_beta(k, n, 0.0) == pytest.approx(1.0)
    assert gbce_beta(k, n, 1.0) == pytest.approx(alpha)
    for t in (0.25, 0.75, 0.9):
        assert gbce_beta(k, n, t) == pytest.approx(1 - t * (1 - alpha), rel=1e-12)
    assert gbce_beta(k, n, 0.75) == pytest.approx(0.25 + 0.75 * 256 / 12100, rel=1e-12)
    with pytest.raises(ValueError):
        gbce_beta(10, 10, 0.75)


# -- edge cases and config errors ----------------------------------------------------------------
@pytest.mark.parametrize("cls", [BCE, BPR, TOP1, BPRMax, TOP1Max, SampledSoftmax, GBCE], ids=lambda c: c.name)
def test_no_position_gives_a_zero_with_a_graph(cls):
    h, e = HIDDEN.clone().requires_grad_(), TABLE.clone().requires_grad_()
    targets = torch.zeros_like(TARGETS)
    value = cls(num_negatives=K)(h, targets, e, NegativeBatch(NEG_ITEMS, LOG_Q))
    value.backward()
    assert value.item() == 0.0 and h.grad.abs().sum() == 0 and e.grad.abs().sum() == 0


@pytest.mark.parametrize("cls", [BCE, BPR, TOP1, BPRMax, TOP1Max, SampledSoftmax, GBCE], ids=lambda c: c.name)
def test_finite_for_large_scores(cls):
    hidden = HIDDEN * 40  # score gaps of hundreds: no overflow, no NaN gradient
    h, e = hidden.clone().requires_grad_(), TABLE.clone().requires_grad_()
    value = cls(num_negatives=K)(h.float(), TARGETS, e.float(), NegativeBatch(NEG_ITEMS, LOG_Q.float()))
    value.backward()
    assert torch.isfinite(value) and torch.isfinite(h.grad).all() and torch.isfinite(e.grad).all()


@pytest.mark.parametrize("cls", [BCE, BPR, TOP1, BPRMax, TOP1Max, SampledSoftmax, GBCE], ids=lambda c: c.name)
def test_bad_options_are_value_errors_naming_the_argument(cls):
    with pytest.raises(ValueError, match="positions='first'"):
        cls(num_negatives=K, positions="first")
    with pytest.raises(ValueError, match="num_negatives >= 1"):
        cls(num_negatives=0)
    with pytest.raises(ValueError, match="negatives"):
        cls(num_negatives=K)(HIDDEN, TARGETS, TABLE, None)


def test_bad_loss_specific_options():
    with pytest.raises(ValueError, match="bpreg=-1.0"):
        BPRMax(bpreg=-1.0)
    with pytest.raises(ValueError, match="t=1.5"):
        GBCE(t=1.5)
    with pytest.raises(ValueError, match=f"num_negatives={N} is too large for gBCE on a catalogue of {N} items"):
        GBCE(num_negatives=N)(HIDDEN, TARGETS, TABLE, NegativeBatch(torch.ones(3, 4, N, dtype=torch.long)))


def test_class_attributes_follow_the_contract():
    for cls in (BPR, TOP1, BPRMax, TOP1Max, SampledSoftmax, GBCE):
        loss = cls(num_negatives=5, positions="last")
        assert isinstance(loss, torch.nn.Module) and loss.num_negatives == 5 and loss.positions == "last"
    assert [c.name for c in (BPR, TOP1, BPRMax, TOP1Max, SampledSoftmax, GBCE)] == [
        "bpr",
        "top1",
        "bpr_max",
        "top1_max",
        "sampled_softmax",
        "gbce",
    ]


def test_both_ways_to_the_negative_scores_agree():
    from seqrec.losses.negatives import negative_scores

    h = torch.randn(5, 2, dtype=torch.float64)
    table = torch.randn(N, 2, dtype=torch.float64)
    items = torch.randint(1, N + 1, (5, 4))  # K·d = 8 > N = 6: full scores, then gather
    gathered = torch.einsum("pd,pkd->pk", h, table[items - 1])
    assert torch.allclose(negative_scores(h, table, items), gathered)
    few = items[:, :2]  # K·d = 4 <= 6: gathered item vectors
    assert torch.allclose(negative_scores(h, table, few), gathered[:, :2])


# -- Eq. 21, 22, 24, 25 through the BCE and CE modules: with d = 1 and h = 1 a score is its item's
# table entry, so the table's gradient is the gradient w.r.t. the scores ------------------------
def score_grads(loss, scores: list[float], target: int, negatives: list[int] | None = None) -> list[float]:
    table = torch.tensor(scores, dtype=torch.float64).view(-1, 1).requires_grad_()
    hidden = torch.ones(1, 1, 1, dtype=torch.float64)
    batch = None if negatives is None else NegativeBatch(torch.tensor([[negatives]]))
    loss(hidden, torch.tensor([[target]]), table, batch).backward()
    return table.grad.view(-1).tolist()


def test_eq21_eq22_bce_gradients():
    from seqrec.losses import BCE

    scores = [0.4, -1.1, 2.0, 0.3]  # items 1..4; positive 1, negative 3
    grads = score_grads(BCE(num_negatives=1), scores, target=1, negatives=[3])
    # (BCE computes in float32)
    assert grads[0] == pytest.approx(-(1 - sig(0.4)), rel=1e-6)  # Eq. 21
    # Eq. 22 prints (1 - σ(1 - r_neg)): "1 - r" is the negative class's logit -r, so 1 - σ(-r) = σ(r)
    assert grads[2] == pytest.approx(1 - sig(-2.0), rel=1e-6)
    assert grads[1] == grads[3] == 0.0


def test_eq24_eq25_ce_gradients():
    from seqrec.losses import CE

    scores = [0.4, -1.1, 2.0, 0.3]
    grads = score_grads(CE(chunk_size=None), scores, target=2)
    p = softmax(scores)
    assert grads[1] == pytest.approx(p[1] - 1, rel=1e-12)  # Eq. 24
    for j in (0, 2, 3):
        assert grads[j] == pytest.approx(p[j], rel=1e-12)  # Eq. 25


def test_bce_with_the_popularity_sampler_never_scores_a_positive_as_its_negative():
    # item 1 is half of the training interactions: the popularity sampler draws it often, also at
    # positions whose positive is 1; those draws must drop out, not push the positive down
    from test_samplers_extra import make_split

    from seqrec.losses.samplers_extra import PopularitySampler

    split = make_split()
    sampler = PopularitySampler().bind(split)
    targets = torch.tensor([[1, 2, 1, 3], [0, 0, 2, 2]])
    negatives = sampler.sample(torch.tensor([0, 1]), targets, 8, torch.Generator().manual_seed(3))
    hits = negatives.items == targets.unsqueeze(-1)
    assert hits[targets != 0].any()  # the case happens
    torch.manual_seed(1)
    hidden, table = torch.randn(2, 4, 5, dtype=torch.float64), torch.randn(8, 5, dtype=torch.float64)
    loss = BCE(num_negatives=8, sampler=sampler)
    value = loss(hidden, targets, table, negatives)
    terms = []
    for b, t in zip(*torch.nonzero(targets, as_tuple=True)):
        h, p = hidden[b, t], int(targets[b, t])
        kept = [int(i) for i in negatives.items[b, t] if int(i) != p]
        terms.append(
            -math.log(sig(float(h @ table[p - 1]))) - sum(math.log(1 - sig(float(h @ table[i - 1]))) for i in kept)
        )
    assert value.item() == pytest.approx(sum(terms) / len(terms), rel=1e-12)


def test_gbce_with_more_negatives_than_items_is_refused_before_the_run_writes_anything(tmp_path):
    from conftest import tiny_config

    from seqrec.runs.pipeline import run

    out = tmp_path / "run"
    cfg = tiny_config(tmp_path, out, "loss=gbce", "loss.num_negatives=64")  # 40 items
    with pytest.raises(ConfigError, match=r"the loss gbce-k64 does not fit this dataset \(40 items\): num_negatives=64 "
                                          r"is too large for gBCE on a catalogue of 40 items"):  # fmt: skip
        run(cfg)
    assert not (out / "config.yaml").exists()
    loss = GBCE(num_negatives=8)
    loss.bind_catalogue(40)  # fits
    with pytest.raises(ValueError, match=r"catalogue of 8 items.*Set loss.num_negatives to at most 7\."):
        loss.bind_catalogue(8)
    GBCE(num_negatives=7).bind_catalogue(8)  # K = N - 1: α = 1, the largest that fits
