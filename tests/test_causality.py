"""The causality guard (seqrec.models.causality): a model that sees the items after a position is
refused before an all-position loss trains it; every shipped model passes."""

from __future__ import annotations

import pytest
import torch
from conftest import tiny_config
from torch import nn

from seqrec.errors import ConfigError
from seqrec.models import GRU4Rec, S3Rec, SASRec
from seqrec.models.bsarec import BSARec
from seqrec.models.causality import check_causal, future_dependence
from seqrec.runs.pipeline import run


class WindowMean(nn.Module):
    """Leaks on purpose: each position's output adds the mean embedding of the whole window, as an
    FFT filter over the window (BSARec, FMLP-Rec) lets every position see every other."""

    name = "window_mean"

    def __init__(self, n_items: int, max_len: int = 50, hidden_size: int = 8, causal: bool | None = None):
        super().__init__()
        self.emb = nn.Embedding(n_items + 1, hidden_size, padding_idx=0)
        if causal is not None:
            self.causal = causal

    def forward(self, item_seq: torch.Tensor) -> torch.Tensor:
        x = self.emb(item_seq)  # [B, L, d]
        return x + x.mean(dim=1, keepdim=True)

    def output_table(self) -> torch.Tensor:
        return self.emb.weight[1:]


class PaddingLeak(WindowMean):
    """Causal on a full window, leaky on a padded one: padding positions hold the mean of the
    window's real items (as padding queries of an attention no causal mask covers would), and
    every position sums the states up to it (as a causal filter over the window does)."""

    def forward(self, item_seq: torch.Tensor) -> torch.Tensor:
        x = self.emb(item_seq)  # [B, L, d]
        real = (item_seq != 0).unsqueeze(-1)  # [B, L, 1]
        mean = (x * real).sum(1, keepdim=True) / real.sum(1, keepdim=True)  # [B, 1, d]
        return torch.where(real, x, mean).cumsum(dim=1)


@pytest.mark.parametrize(
    "model",
    [SASRec(30, 50), GRU4Rec(30, 50), S3Rec(30, 50, n_attributes=4), BSARec(30, 50, causal_filter=True)],
    ids=["sasrec", "gru4rec", "s3rec", "bsarec_causal"],
)
def test_every_shipped_model_is_causal(model):
    assert model.causal is True
    assert future_dependence(model, 30, 50) == 0.0
    check_causal(model, 30, 50, "cce")  # no error


def test_a_leak_through_padding_is_seen():
    # the check's batch is left-padded like training input; a full-window batch would pass this model
    assert future_dependence(PaddingLeak(30), 30, 20) > 1e-3
    full = torch.randint(1, 31, (2, 20))
    changed = full.clone()
    changed[:, 10:] = torch.randint(1, 31, (2, 10))
    leak = PaddingLeak(30)
    assert torch.equal(leak(full)[:, :10], leak(changed)[:, :10])  # causal without padding


@pytest.mark.parametrize("max_len", [1, 2])
def test_the_check_stays_inside_a_short_window(max_len):
    # the check's sequences must fit the model: max_len 1 once failed with "input length 2
    # exceeds max_len 1" before any training; one position has no future to leak
    for model in (SASRec(30, max_len), GRU4Rec(30, max_len), BSARec(30, max_len, causal_filter=True)):
        assert future_dependence(model, 30, max_len) == 0.0
        check_causal(model, 30, max_len, "cce")
    assert future_dependence(WindowMean(30), 30, 2) > 1e-3  # two positions: a leak is still seen


def test_a_run_with_a_one_item_window_trains(tmp_path):
    metrics = run(_tiny(tmp_path, "dataset.max_len=1"))
    assert metrics["epochs_run"] == 1


def test_a_leaking_model_is_refused_whatever_it_declares():
    assert future_dependence(WindowMean(30), 30, 20) > 1e-3
    with pytest.raises(ConfigError, match="does not declare whether it is causal, and changing the items after"):
        check_causal(WindowMean(30), 30, 20, "cce")
    with pytest.raises(ConfigError, match="declares causal = True, but changing the items after.*loss=bce"):
        check_causal(WindowMean(30, causal=True), 30, 20, "bce")
    with pytest.raises(ConfigError, match="declares causal = False.*numbers would be void.*loss.positions=last"):
        check_causal(WindowMean(30, causal=False), 30, 20, "cce")


def test_the_check_takes_nothing_from_the_runs_random_streams():
    torch.manual_seed(5)
    model = SASRec(30, 20).train()
    before = torch.get_rng_state()
    check_causal(model, 30, 20, "cce")
    assert torch.equal(torch.get_rng_state(), before) and model.training


def _tiny(tmp_path, *extra):
    return tiny_config(tmp_path, tmp_path / "run", "trainer.max_epochs=1", *extra)


def test_a_run_refuses_a_bidirectional_model_with_cce_before_writing(tmp_path):
    with pytest.raises(ConfigError, match="model sasrec declares causal = False"):
        run(_tiny(tmp_path, "+model.bidirectional=true"))
    assert not (tmp_path / "run" / "config.yaml").exists()


def test_a_last_position_loss_may_train_a_non_causal_model(tmp_path):
    metrics = run(_tiny(tmp_path, "+model.bidirectional=true", "loss=ce"))
    assert metrics["loss"] == "ce" and metrics["epochs_run"] == 1
