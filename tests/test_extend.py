"""Adding a loss is a new class plus a config entry: a toy loss trains through the pipeline and
reaches Table 2 and the t-tests as the proposed loss (README, "Add a model or a loss")."""

from __future__ import annotations

import pandas as pd
import pytest
import torch
import torch.nn.functional as F
from conftest import compose_config
from hydra.core.config_store import ConfigStore

from seqrec.losses import Loss
from seqrec.models.scoring import item_rows
from seqrec.report.__main__ import main as report_main
from seqrec.runs.pipeline import build, run

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
    from seqrec.losses.samplers import NegativeBatch

    value = ToyLoss()(hidden, targets, table, NegativeBatch(torch.tensor([[[2], [2]]])))
    # h = (2, 1): s_pos = 2 (item 1), s_neg = 1 (item 2) -> -log σ(1)
    assert value.item() == pytest.approx(-torch.nn.functional.logsigmoid(torch.tensor(1.0)).item())


def test_a_new_loss_reaches_table2_and_the_ttests(tmp_path, lastfm_data_dir, capsys):
    # what conf/loss/toy.yaml would hold, registered in-process (the sampler: conf/loss/sampler/)
    ConfigStore.instance().store(
        group="loss",
        name="toy",
        node={
            "_target_": f"{__name__}.ToyLoss",
            "num_negatives": 1,
            "sampler": {"_target_": "seqrec.losses.samplers.UniformSampler"},
        },
    )
    for loss in ("toy", "cce"):
        cfg = compose_config(
            [
                f"loss={loss}",
                f"data_dir={lastfm_data_dir}",
                f"output_dir={tmp_path / 'runs' / loss}",
                "dataset.max_users=150",
                "trainer.max_epochs=1",
                "trainer.progress=false",
                "device=cpu",
            ]
        )
        if loss == "toy":  # the loss's own parameter is trained with the model's
            exp = build(cfg)
            assert any(p is exp.loss.scale for group in exp.optimizer.param_groups for p in group["params"])
            exp.trainer.train_epoch(1, max_batches=1)
            assert exp.loss.scale.item() != 1.0
        assert run(cfg)["loss"] == loss
        if loss == "toy":  # the trained scale is saved with the selected state, and restored from it
            saved = torch.load(tmp_path / "runs" / "toy" / "best.pt", weights_only=True)["loss"]["scale"]
            assert saved.item() != 1.0
            assert torch.equal(
                torch.load(tmp_path / "runs" / "toy" / "last.pt", weights_only=True)["loss"]["scale"], saved
            )
    assert (
        report_main(
            ["--runs", str(tmp_path / "runs"), "--proposed", "toy", "--baselines", "cce", "--no-plots", "--no-paper"]
        )
        == 0
    )
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


# --- adding a model -----------------------------------------------------------------------------
class ToyModel(torch.nn.Module):
    """A model in one file, with parameter names no shipped model uses: the hidden state at t is
    the running mean of the item vectors up to t (causal), scored against a separate output table."""

    name = "toy_model"
    causal = True

    def __init__(self, n_items: int, max_len: int = 50, hidden_size: int = 16):
        super().__init__()
        self.vectors = torch.nn.Embedding(n_items + 1, hidden_size, padding_idx=0)
        self.outputs = torch.nn.Parameter(torch.randn(n_items, hidden_size) * 0.1)

    def forward(self, item_seq: torch.Tensor) -> torch.Tensor:
        x = self.vectors(item_seq)  # [B, L, d]
        count = (item_seq != 0).cumsum(1).clamp(min=1).unsqueeze(-1)  # [B, L, 1]
        return x.cumsum(1) / count  # [B, L, d]: padding adds zeros

    def output_table(self) -> torch.Tensor:
        return self.outputs  # [N, d]


class NoOutputTable(torch.nn.Module):
    """ToyModel without ``output_table``: it breaks the model protocol."""

    name = "broken"

    def __init__(self, n_items: int, max_len: int = 50):
        super().__init__()
        self.vectors = torch.nn.Embedding(n_items + 1, 8, padding_idx=0)

    def forward(self, item_seq: torch.Tensor) -> torch.Tensor:
        return self.vectors(item_seq)


def _toy_cfg(tmp_path, lastfm_data_dir, out, *extra):
    # what conf/model/toy_model.yaml would hold, registered in-process
    ConfigStore.instance().store(
        group="model", name="toy_model", node={"_target_": f"{__name__}.ToyModel", "hidden_size": 16}
    )
    return compose_config(
        [
            "model=toy_model",
            f"data_dir={lastfm_data_dir}",
            f"output_dir={out}",
            "dataset.max_users=150",
            "trainer.max_epochs=2",
            "trainer.progress=false",
            "device=cpu",
            *extra,
        ]
    )


def test_a_new_model_goes_through_train_resume_recommend_report_and_analysis(tmp_path, lastfm_data_dir):
    import seqrec
    from seqrec.analysis.positions import per_position_metrics, position_ranks
    from seqrec.runs.rundir import load_trained

    runs = tmp_path / "runs"
    first = run(_toy_cfg(tmp_path, lastfm_data_dir, runs / "cce"))
    assert first["model"] == "toy_model" and first["epochs_run"] == 2
    run(_toy_cfg(tmp_path, lastfm_data_dir, runs / "ce", "loss=ce"))
    # resume: the interrupted run (no metrics.json) continues from last.pt to the same numbers
    (runs / "cce" / "metrics.json").unlink()
    resumed = run(
        _toy_cfg(tmp_path, lastfm_data_dir, runs / "cce", f"resume={runs / 'cce'}"),
        overrides=[f"resume={runs / 'cce'}"],
    )
    assert {k: v for k, v in resumed.items() if k.startswith("test/")} == {
        k: v for k, v in first.items() if k.startswith("test/")
    }
    # recommend: rebuilt from the constructor arguments best.pt saved (it has no item_emb table)
    recs = seqrec.load_run(runs / "cce").recommend({"s": ["2", "15", "7"]}, k=5)
    assert len(recs) == 5 and not set(recs["item_id"]) & {"2", "15", "7"}
    # the report, with the model's own name
    assert report_main(["--runs", str(runs), "--proposed", "cce", "--baselines", "ce", "--no-plots", "--no-paper"]) == 0
    assert "toy_model" in (runs / "report" / "table2.csv").read_text()
    # the per-position analysis: its last position is the test evaluation
    loaded = load_trained(runs / "cce")
    per_position = per_position_metrics(position_ranks(loaded.model, loaded.split))
    assert per_position["ndcg@10"].iloc[-1] == pytest.approx(first["test/ndcg@10"], abs=1e-12)


def test_a_model_without_output_table_is_refused_with_the_protocol(tmp_path, lastfm_data_dir):
    from seqrec.errors import ConfigError

    ConfigStore.instance().store(group="model", name="broken", node={"_target_": f"{__name__}.NoOutputTable"})
    cfg = compose_config(
        [
            "model=broken",
            f"data_dir={lastfm_data_dir}",
            f"output_dir={tmp_path / 'run'}",
            "dataset.max_users=150",
            "trainer.max_epochs=1",
            "trainer.progress=false",
            "device=cpu",
        ]
    )
    with pytest.raises(ConfigError, match=r"does not implement seqrec's model protocol.*lacks output_table\(\)"):
        run(cfg)
    assert not (tmp_path / "run" / "config.yaml").exists()
