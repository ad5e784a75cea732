"""Adding a loss is a new class plus a config entry: a toy loss trains through the pipeline and
reaches Table 2 and the t-tests as the proposed loss (README, "Add a model or a loss")."""

from __future__ import annotations

import pandas as pd
import pytest
import torch
import torch.nn.functional as F
from hydra.core.config_store import ConfigStore

from conftest import compose_config
from seqrec.losses import Loss
from seqrec.models.scoring import item_rows
from seqrec.pipeline import build, run
from seqrec.report.__main__ import main as report_main

pytestmark = pytest.mark.realdata


class ToyLoss(Loss):
    """BPR at every position with a learned scale: ``-log σ(s · (h·e_pos - h·e_neg))``, one sampled
    negative, ``s`` a parameter of the loss (starts at 1)."""

    name = "toy"
    positions = "all"

    def __init__(self, num_negatives: int = 1, sampler=None):
        super().__init__(num_negatives=num_negatives, sampler=sampler)
        self.scale = torch.nn.Parameter(torch.ones(()))

    def forward(self, hidden, targets, table, negatives=None):
        mask = targets != 0  # [B, L]
        h = hidden[mask]  # [P, d]
        pos = (h * table[item_rows(targets[mask])]).sum(-1)  # [P]
        neg = (h * table[item_rows(negatives.items[mask][:, 0])]).sum(-1)  # [P]
        return -F.logsigmoid(self.scale * (pos - neg)).mean()


def test_toy_loss_formula():
    table = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])  # items 1, 2, 3
    hidden = torch.tensor([[[0.0, 0.0], [2.0, 1.0]]])  # [1, 2, 2]; position 0 is padding
    targets = torch.tensor([[0, 1]])
    from seqrec.samplers import NegativeBatch

    value = ToyLoss()(hidden, targets, table, NegativeBatch(torch.tensor([[[2], [2]]])))
    # h = (2, 1): s_pos = 2 (item 1), s_neg = 1 (item 2) -> -log σ(1)
    assert value.item() == pytest.approx(-torch.nn.functional.logsigmoid(torch.tensor(1.0)).item())


def test_a_new_loss_reaches_table2_and_the_ttests(tmp_path, lastfm_data_dir, capsys):
    # what conf/loss/toy.yaml would hold, registered in-process (the sampler: conf/loss/sampler/)
    ConfigStore.instance().store(group="loss", name="toy", node={
        "_target_": f"{__name__}.ToyLoss", "num_negatives": 1,
        "sampler": {"_target_": "seqrec.samplers.UniformSampler"}})
    for loss in ("toy", "cce"):
        cfg = compose_config([
            f"loss={loss}", f"data_dir={lastfm_data_dir}", f"output_dir={tmp_path / 'runs' / loss}",
            "dataset.max_users=150", "trainer.max_epochs=1", "trainer.progress=false", "device=cpu"])
        if loss == "toy":  # the loss's own parameter is trained with the model's
            exp = build(cfg)
            assert any(p is exp.loss.scale for group in exp.optimizer.param_groups for p in group["params"])
            exp.trainer.train_epoch(1, max_batches=1)
            assert exp.loss.scale.item() != 1.0
        assert run(cfg)["loss"] == loss
        if loss == "toy":  # the trained scale is saved with the selected state, and restored from it
            saved = torch.load(tmp_path / "runs" / "toy" / "best.pt", weights_only=True)["loss"]["scale"]
            assert saved.item() != 1.0
            assert torch.equal(torch.load(tmp_path / "runs" / "toy" / "last.pt", weights_only=True)["loss"]["scale"], saved)
    assert report_main(["--runs", str(tmp_path / "runs"), "--proposed", "toy", "--baselines", "cce",
                        "--no-plots", "--no-paper"]) == 0
    report = tmp_path / "runs" / "report"
    assert "| SASRec CCE | SASRec TOY | SASRec Improve |" in (report / "table2.md").read_text()
    wide = pd.read_csv(report / "table2.csv")
    assert list(wide.columns) == ["dataset", "metric", "sasrec_cce", "sasrec_toy", "sasrec_improve_pct"]
    row = wide[wide.metric == "NDCG@10"].iloc[0]
    assert row.sasrec_improve_pct == pytest.approx((row.sasrec_toy - row.sasrec_cce) / row.sasrec_cce * 100, rel=1e-6)
    sig = pd.read_csv(report / "significance.csv")
    assert set(sig["proposed"]) == {"toy"} and set(sig["baseline"]) == {"cce"} and len(sig) == 6
    # the paper's default comparison has no BCE/CE runs here: a clear error, exit 1
    capsys.readouterr()
    assert report_main(["--runs", str(tmp_path / "runs"), "--no-plots"]) == 1
    assert "bce, ce" in capsys.readouterr().err
