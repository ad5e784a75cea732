"""BSARec (seqrec.models.bsarec): its frequency filter against a written-out FFT low-pass, the
causal variant's convolution, what the causality guard says of each, and the published settings."""

from __future__ import annotations

import pytest
import torch
from conftest import compose_config

from seqrec.config.schema import validate_config
from seqrec.errors import ConfigError
from seqrec.models import BSARec
from seqrec.models.bsarec import FrequencyFilter, low_pass_kernel
from seqrec.models.causality import check_causal, future_dependence


def test_the_low_pass_keeps_the_lowest_frequencies():
    # L = 8, c = 3: frequencies 0 and 1 kept. A constant passes, a frequency-3 cosine is removed,
    # a frequency-1 cosine passes unchanged.
    L, t = 8, torch.arange(8, dtype=torch.float64)
    filt = FrequencyFilter(1, 3, 0.0, causal=False, max_len=L).double()
    for signal, expected in ((torch.ones(L), torch.ones(L)), (torch.cos(2 * torch.pi * 3 * t / L), torch.zeros(L)),
                             (torch.cos(2 * torch.pi * t / L), torch.cos(2 * torch.pi * t / L))):  # fmt: skip
        out = filt.low(signal.double().view(1, L, 1)).view(L)
        assert torch.allclose(out, expected.double(), atol=1e-12)
    # the kernel is the circulant's first column: circular convolution with it is the FFT low-pass
    x = torch.randn(L, dtype=torch.float64)
    p = low_pass_kernel(L, 3)
    circular = torch.stack([sum(p[(i - j) % L] * x[j] for j in range(L)) for i in range(L)])
    assert torch.allclose(circular, filt.low(x.view(1, L, 1)).view(L), atol=1e-12)


def test_the_causal_filter_is_the_window_low_pass_at_each_windows_end():
    L, d = 10, 3
    x = torch.randn(2, L, d, dtype=torch.float64)
    fft = FrequencyFilter(d, 5, 0.0, causal=False, max_len=L).double()
    causal = FrequencyFilter(d, 5, 0.0, causal=True, max_len=L).double()
    for t in range(L):  # the window of L positions ending at t, zeros before the sequence
        window = torch.cat([torch.zeros(2, L - 1 - t, d, dtype=torch.float64), x[:, : t + 1]], dim=1)
        assert torch.allclose(causal.low(x)[:, t], fft.low(window)[:, -1], atol=1e-12)


def test_the_published_model_is_refused_for_cce_and_the_causal_variant_passes():
    published, variant = BSARec(30, 20), BSARec(30, 20, causal_filter=True)
    assert published.causal is False and future_dependence(published, 30, 20) > 1e-3
    with pytest.raises(ConfigError, match="model bsarec declares causal = False"):
        check_causal(published, 30, 20, "cce")
    assert variant.causal is True and future_dependence(variant, 30, 20) == 0.0
    check_causal(variant, 30, 20, "cce")


def test_a_trimmed_input_gives_the_same_outputs():
    # the window FFT depends on the window's length: the model pads every input to max_len itself
    model = BSARec(30, 12).eval()
    seq = torch.cat([torch.zeros(3, 4, dtype=torch.long), torch.randint(1, 31, (3, 8))], dim=1)  # [3, 12]
    assert torch.allclose(model(seq)[:, -8:], model(seq[:, -8:]), atol=1e-6)


@pytest.mark.parametrize("dataset, alpha, c, lr", [("lastfm", 0.9, 3, 0.001), ("beauty", 0.7, 5, 0.0005)])
def test_the_published_settings(dataset, alpha, c, lr):
    cfg = compose_config([f"experiment=bsarec_{dataset}"])
    checked = validate_config(cfg)
    assert (checked.model["alpha"], checked.model["c"], checked.model["num_heads"]) == (alpha, c, 1)
    assert cfg.optimizer.lr == lr and cfg.loss.positions == "last" and checked.trainer["samples"] == "prefixes"
    with pytest.raises(ValueError, match="alpha=1.5"):
        BSARec(30, 20, alpha=1.5)


def test_the_reference_padding_row_is_random_untrained_and_reaches_the_real_positions():
    torch.manual_seed(0)
    zero = BSARec(30, 12, dropout=0.0)
    torch.manual_seed(0)
    reference = BSARec(30, 12, dropout=0.0, random_padding_row=True)
    row = reference.item_emb.weight[0].detach()
    assert zero.item_emb.weight[0].abs().max() == 0
    assert 0.01 < row.std().item() < 0.03  # N(0, init_std = 0.02) over 64 values
    # the same draws elsewhere: only the padding row differs
    assert torch.equal(zero.item_emb.weight[1:], reference.item_emb.weight[1:])
    seq = torch.cat([torch.zeros(2, 5, dtype=torch.long), torch.randint(1, 31, (2, 7))], dim=1)  # [2, 12]
    # the window FFT carries the padding row into the real positions
    assert not torch.allclose(zero.eval()(seq)[:, -1], reference.eval()(seq)[:, -1], atol=1e-4)
    # padding_idx keeps the row out of training: its gradient is zero
    reference.train()(seq).sum().backward()
    assert reference.item_emb.weight.grad[0].abs().max() == 0
    assert reference.item_emb.weight.grad[1:].abs().max() > 0


def test_the_padding_row_option_reaches_the_model():
    from seqrec.config.schema import build_object

    cfg = compose_config(["experiment=bsarec_lastfm", "model.random_padding_row=true"])
    model = build_object(validate_config(cfg).model, "model", n_items=30, max_len=50)
    assert model.random_padding_row is True and model.item_emb.weight[0].abs().sum() > 0


def test_the_causal_variant_has_a_name_of_its_own():
    # reports key runs on (dataset, model, loss, seed): the two models must not be taken for seeds of one
    assert BSARec(30, 12).name == "bsarec" and BSARec(30, 12, causal_filter=True).name == "bsarec_causal"
    cfg = compose_config(["model=bsarec_causal"])
    assert cfg.model.causal_filter is True
