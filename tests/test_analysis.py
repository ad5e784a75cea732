"""RQ3 per-position accuracy (seqrec.analysis.positions, seqrec.analysis.rq3) and the Table 2 sweep (experiment=table2).

Per-position ranks are checked against hand-computed values on a hand-made model whose prediction
at each position is known, and against the project's own test/valid evaluation on real models.
The slow test runs the `make table2-smoke` pipeline end to end on a LastFM slice.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
import torch
from conftest import CONF, ROOT, compose_config
from hydra import compose, initialize_config_dir
from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
from hydra.core.override_parser.overrides_parser import OverridesParser
from torch import nn

from seqrec.analysis.__main__ import main as plots_main
from seqrec.analysis.positions import per_position_metrics, position_ranks, position_targets
from seqrec.analysis.rq3 import main as rq3_main
from seqrec.analysis.rq3 import rq3_figure, rq3_runs
from seqrec.data.preprocess import SequenceData
from seqrec.data.split import LeaveOneOut
from seqrec.errors import SeqrecError
from seqrec.evaluation import MASKED_RANK, evaluate_ranks
from seqrec.models import GRU4Rec, SASRec
from seqrec.resolvers import seed_list, threads_per_job

N_ITEMS = 10


def make_split(seqs: list[list[int]], n_items: int = N_ITEMS, max_len: int = 5) -> LeaveOneOut:
    lengths = [len(s) for s in seqs]
    data = SequenceData(
        name="hand",
        items=np.array([i for s in seqs for i in s], dtype=np.int64),
        offsets=np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64),
        n_items=n_items,
        user_tokens=np.array([f"u{u}" for u in range(len(seqs))]),
        item_tokens=np.array(["[PAD]"] + [str(i) for i in range(1, n_items + 1)]),
        fingerprint="0" * 16,
    )
    return LeaveOneOut.build(data, max_len=max_len)


class PredictNext(nn.Module):
    """Scores 1 for item ``x + 1`` after item ``x`` and 0 for every other item (one-hot hidden
    states against an identity embedding table), so a target ranks 1 exactly when it is
    ``input + 1`` and otherwise ties with every unmasked item but one."""

    def __init__(self, n_items: int = N_ITEMS):
        super().__init__()
        self.n_items = n_items
        self.item_emb = nn.Embedding(n_items + 1, n_items + 1)
        with torch.no_grad():
            self.item_emb.weight.copy_(torch.eye(n_items + 1))

    def forward(self, item_seq: torch.Tensor) -> torch.Tensor:
        return self.item_emb.weight[(item_seq + 1).clamp(max=self.n_items)]  # [B, L, N+1]

    def output_table(self) -> torch.Tensor:
        return self.item_emb.weight[1:]  # [N, N+1]: item i is row i - 1


# user 0: [1 2 3 7 8]   inputs 0 1 2 3 7 → targets 0 2 3 7 8: miss at position 4 only
# user 1: [4 5 6]       inputs 0 0 0 4 5 → targets 0 0 0 5 6
# user 2: [2 3 2 3 4 5 6 7]  window of s[:-1] = 3 4 5 6 ... starts at s[2]: inputs 2 3 4 5 6 →
#         targets 3 4 5 6 7; the target 3 at position 1 was consumed before (s[1])
SEQS = [[1, 2, 3, 7, 8], [4, 5, 6], [2, 3, 2, 3, 4, 5, 6, 7]]


def test_targets_are_the_next_item_then_the_test_item():
    inputs, targets = position_targets(make_split(SEQS))
    assert inputs.tolist() == [[0, 1, 2, 3, 7], [0, 0, 0, 4, 5], [2, 3, 4, 5, 6]]
    assert targets.tolist() == [[0, 2, 3, 7, 8], [0, 0, 0, 5, 6], [3, 4, 5, 6, 7]]


@pytest.mark.parametrize("max_scores", [1, 2**26])  # one user per batch / everyone at once
def test_ranks_at_every_position_by_hand(max_scores):
    split = make_split(SEQS)
    masked = position_ranks(PredictNext(), split, mask_history=True, max_scores=max_scores)
    # user 0, position 4: target 7 scores 0 like every item but 4 (score 1); pessimistic rank =
    # all 10 items minus the 3 masked history items 1, 2, 3 → 7. User 2, position 1: the target 3
    # repeats the history s[:3] = 2 3 2; item 2 is masked, the target never is, and it scores 1
    # after input 2: rank 1 (before, it was masked into a miss).
    assert masked.tolist() == [[0, 1, 1, 7, 1], [0, 0, 0, 1, 1], [1, 1, 1, 1, 1]]
    unmasked = position_ranks(PredictNext(), split, mask_history=False, max_scores=max_scores)
    assert unmasked.tolist() == [[0, 1, 1, 10, 1], [0, 0, 0, 1, 1], [1, 1, 1, 1, 1]]
    # eval.rank_repeats=false (the paper's protocol): user 2's repeated target 3 is masked, a miss
    paper = position_ranks(PredictNext(), split, mask_history=True, max_scores=max_scores, rank_repeats=False)
    assert paper.tolist() == [[0, 1, 1, 7, 1], [0, 0, 0, 1, 1], [MASKED_RANK, 1, 1, 1, 1]]


def test_per_position_means_and_user_counts():
    frame = per_position_metrics(position_ranks(PredictNext(), make_split(SEQS), mask_history=True))
    assert frame["position"].tolist() == [1, 2, 3, 4, 5]
    assert frame["n_users"].tolist() == [1, 2, 2, 3, 3]
    # position 1: user 2's repeated target 3 ranks 1 (ranked, not masked; see above)
    assert frame["hr@10"].tolist() == [1.0, 1.0, 1.0, 1.0, 1.0]
    expected_ndcg = [1.0, 1.0, 1.0, (1 / math.log2(8) + 1 + 1) / 3, 1.0]
    assert frame["ndcg@10"].tolist() == pytest.approx(expected_ndcg, abs=1e-12)


def test_a_position_without_users_is_nan_not_zero():
    frame = per_position_metrics(position_ranks(PredictNext(), make_split([[1, 2, 3]], max_len=4)))
    assert frame["n_users"].tolist() == [0, 0, 1, 1]
    assert frame["ndcg@10"].isna().tolist() == [True, True, False, False]


@pytest.mark.parametrize("model_cls", [GRU4Rec, SASRec])
def test_last_position_is_the_test_evaluation(model_cls):
    # users longer than the window, repeated items, short users
    g = torch.Generator().manual_seed(0)
    seqs = [torch.randint(1, 41, (int(n),), generator=g).tolist() for n in torch.randint(3, 16, (40,), generator=g)]
    split = make_split(seqs, n_items=40, max_len=8)
    torch.manual_seed(0)
    model = model_cls(n_items=40, max_len=8).eval()
    for mask, repeats in ((True, True), (True, False), (False, True)):
        ranks = position_ranks(model, split, mask_history=mask, max_scores=40 * 8 * 3, rank_repeats=repeats)
        history = (lambda users: split.history(users, "test")) if mask else None
        expected = evaluate_ranks(model, split.test_input, split.test_target, history, rank_repeats=repeats)
        assert torch.equal(ranks[:, -1], expected)
    assert split.repeated_targets("test").any()  # the case the two rules differ on is there
    if model_cls is GRU4Rec:  # no positions: position L-1 sees what the valid input ends with
        short = (split.offsets[1:] - split.offsets[:-1]) <= split.max_len + 1
        valid = evaluate_ranks(
            model, split.valid_input, split.valid_target, lambda users: split.history(users, "valid")
        )
        assert torch.equal(position_ranks(model, split)[short, -2], valid[short])


def test_figure_has_a_panel_per_dataset_and_a_line_per_loss():
    rows = [
        {
            "dataset": d,
            "model": "gru4rec",
            "loss": loss,
            "seed": 42,
            "position": p,
            "ndcg@10": 0.01 * p,
            "hr@10": 0.02,
            "n_users": 3,
            "mask_history": True,
        }
        for d in ("lastfm", "beauty")
        for loss in ("bce", "ce", "cce")
        for p in (1, 2, 3)
    ]
    fig = rq3_figure(pd.DataFrame(rows))
    axes = fig.get_axes()
    assert [ax.get_title() for ax in axes] == ["Beauty · GRU4Rec", "LastFM · GRU4Rec"]
    assert [line.get_label() for line in axes[0].get_lines() if not line.get_label().startswith("_")] == [
        "BCE",
        "CE",
        "CCE",
    ]


def test_cli_without_runs_is_one_paragraph_and_status_1(tmp_path, capsys):
    assert rq3_main(["--runs", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: No finished run") and "Traceback" not in err
    assert plots_main(["--runs", str(tmp_path / "missing")]) == 1


# ---- experiment=table2: the sweep the basic sweeper launches ----


def sweep_jobs(overrides: list[str]) -> list[dict[str, str]]:
    """The jobs `python train.py -m <overrides>` would launch: params first, then the command line,
    exactly as hydra's BasicSweeper.sweep combines them."""
    parser = OverridesParser.create()
    primary = [o.input_line for o in parser.parse_overrides(overrides) if not o.is_sweep_override()]
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        cfg = compose(config_name="config", overrides=primary, return_hydra_config=True)
    params = [f"{k}={v}" for k, v in cfg.hydra.sweeper.params.items()]
    parsed = parser.parse_overrides(params + overrides)
    (batch,) = BasicSweeper.split_arguments(parsed, None)
    return [dict(o.split("=", 1) for o in job) for job in batch]


def test_table2_sweeps_every_dataset_model_and_loss_once():
    jobs = sweep_jobs(["experiment=table2"])
    keys = {(j["dataset"], j["model"], j["loss"], j["seed"]) for j in jobs}
    assert len(jobs) == len(keys) == 45
    assert {k[0] for k in keys} == {"sports", "toys", "yelp", "beauty", "lastfm"}
    assert {k[1] for k in keys} == {"gru4rec", "sasrec", "s3rec"}
    assert {k[2] for k in keys} == {"bce", "ce", "cce"} and {k[3] for k in keys} == {"42"}


def test_seeds_and_subsets_are_overrides():
    jobs = sweep_jobs(["experiment=table2", "seeds=3", "dataset=lastfm", "model=gru4rec,sasrec"])
    assert len(jobs) == 1 * 2 * 3 * 3
    assert {j["dataset"] for j in jobs} == {"lastfm"} and {j["seed"] for j in jobs} == {"42", "43", "44"}
    assert {j["seed"] for j in sweep_jobs(["experiment=table2", "seed=7", "dataset=lastfm"])} == {"7"}
    assert seed_list(42, 3) == "42,43,44"
    with pytest.raises(ValueError, match="seeds"):
        seed_list(42, 0)


def test_table2_folders_are_stable_and_unique_per_run():
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        cfg = compose(config_name="config", overrides=["experiment=table2"], return_hydra_config=True)
    assert cfg.hydra.sweep.dir == "outputs/table2"
    subdir = cfg.hydra.sweep._get_node("subdir")._value()
    assert all(key in subdir for key in ("${dataset.name}", "choices.model", "choices.loss", "${seed}"))
    assert "${now:" not in subdir and "job.num" not in subdir  # a rerun overwrites, never duplicates


def test_threads_per_job_divides_the_cores():
    assert threads_per_job(None, cores=16) is None
    assert threads_per_job(4, cores=16) == 4 and threads_per_job(3, cores=16) == 5
    assert threads_per_job(32, cores=16) == 1 and threads_per_job(-1, cores=16) == 1
    assert threads_per_job(-2, cores=16) == 1 and threads_per_job(-15, cores=16) == 8


@pytest.mark.parametrize("launcher,key,value", [("local", "n_jobs", 3), ("slurm", "gpus_per_node", 1)])
def test_launcher_presets_compose(launcher, key, value, monkeypatch):
    plugin = {"local": "hydra_plugins.hydra_joblib_launcher", "slurm": "hydra_plugins.hydra_submitit_launcher"}
    pytest.importorskip(plugin[launcher], reason="pip install -e '.[sweep]'")
    monkeypatch.setenv("SEQREC_JOBS", "3")
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        cfg = compose(
            config_name="config",
            overrides=["experiment=table2", f"hydra/launcher={launcher}"],
            return_hydra_config=True,
        )
    assert cfg.hydra.launcher[key] == value


# ---- on real data ----


def finished_run(tmp_path, data_dir, *overrides):
    from seqrec.runs.pipeline import run

    cfg = compose_config(
        [
            f"data_dir={data_dir}",
            f"output_dir={tmp_path}",
            "dataset.max_users=60",
            "trainer.max_epochs=1",
            "trainer.progress=false",
            "device=cpu",
            "num_threads=1",
            *overrides,
        ]
    )
    return run(cfg)


@pytest.mark.realdata
def test_rq3_of_a_trained_run_ends_with_its_test_metrics(tmp_path, lastfm_data_dir):
    metrics = finished_run(tmp_path / "runs" / "a", lastfm_data_dir, "model=gru4rec", "loss=cce")
    frame = rq3_runs(tmp_path / "runs")
    assert len(frame) == 50 and set(frame["loss"]) == {"cce"}
    last = frame[frame["position"] == 50].iloc[0]
    assert last["n_users"] == 60
    assert last["ndcg@10"] == pytest.approx(metrics["test/ndcg@10"], abs=1e-12)
    assert last["hr@10"] == pytest.approx(metrics["test/hr@10"], abs=1e-12)

    # data that changed since training is refused, not silently evaluated
    path = tmp_path / "runs" / "a" / "metrics.json"
    path.write_text(json.dumps({**json.loads(path.read_text()), "data_fingerprint": "f" * 16}))
    with pytest.raises(SeqrecError, match="data_fingerprint"):
        rq3_runs(tmp_path / "runs")
    with pytest.raises(SeqrecError, match="No finished sasrec run"):
        rq3_runs(tmp_path / "runs", model="sasrec")


@pytest.mark.slow
@pytest.mark.realdata
def test_table2_smoke_report_and_plots_end_to_end(tmp_path, lastfm_data_dir):
    """`make table2-smoke RUNS=… && make report && make plots` on a 150-user LastFM slice, 1 epoch."""
    runs = tmp_path / "runs"
    env = {**os.environ, "SEQREC_PRETRAIN_DIR": str(tmp_path / "pretrained")}
    models = "gru4rec,sasrec,s3rec" if (CONF / "model" / "s3rec.yaml").exists() else "gru4rec,sasrec"

    def call(*args):
        out = subprocess.run(
            [sys.executable, *args], capture_output=True, text=True, cwd=tmp_path, env=env, timeout=600
        )
        assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-4000:]
        return out

    call(
        str(ROOT / "train.py"),
        "-m",
        "experiment=table2",
        "dataset=lastfm",
        f"model={models}",
        f"data_dir={lastfm_data_dir}",
        "dataset.max_users=150",
        "trainer.max_epochs=1",
        "dataset.pretrain_epochs=1",
        "trainer.progress=false",
        "device=cpu",
        "num_threads=1",
        f"hydra.sweep.dir={runs}",
    )
    finished = sorted(p.parent.relative_to(runs).as_posix() for p in runs.rglob("metrics.json"))
    assert finished == sorted(f"lastfm/{m}-{loss}/seed42" for m in models.split(",") for loss in ("bce", "ce", "cce"))

    report = call("-m", "seqrec.report", "--runs", str(runs))
    assert "LastFM" in report.stdout
    rows = [
        line.strip("|").split("|")
        for line in (runs / "report" / "table2.md").read_text().splitlines()
        if line.startswith("| ") and "@" in line.split("|")[2]
    ]
    assert [r[0].strip() for r in rows] == ["LastFM"] + [""] * 5
    assert [r[1].strip() for r in rows] == ["HR@5", "HR@10", "HR@20", "NDCG@5", "NDCG@10", "NDCG@20"]
    for r in rows:  # a BCE, CE and CCE number for every model (Improve is blank when max(BCE, CE) = 0)
        assert len(r) == 2 + 4 * len(models.split(","))
        assert all(any(c.isdigit() for c in cell) for i, cell in enumerate(r[2:]) if i % 4 != 3)

    call("-m", "seqrec.analysis", "--runs", str(runs))
    for name in ("table2.md", "table2_vs_paper.md", "significance.csv", "rq2_lastfm.png", "rq3.png"):
        assert (runs / "report" / name).stat().st_size > 0
    rq3 = pd.read_csv(runs / "report" / "rq3_lastfm.csv")
    assert set(rq3["model"]) == {"gru4rec"} and set(rq3["loss"]) == {"bce", "ce", "cce"}
    assert len(rq3) == 3 * 50 and (rq3.loc[rq3["position"] == 50, "n_users"] == 150).all()


@pytest.mark.parametrize(
    "overrides, name",
    [
        (["loss=bce"], "bce"),
        (["loss=bce", "loss.positions=last"], "bce-last"),  # was the choice "bce", beside the all-position runs
        (["loss=bce", "loss.num_negatives=256", "loss/sampler=popularity"], "bce-k256-popularity"),
        (["loss=ce"], "ce"),
    ],
)
def test_run_folders_are_named_by_the_runs_loss_name(overrides, name):
    from hydra.core.hydra_config import HydraConfig
    from omegaconf import OmegaConf

    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        cfg = compose(config_name="config", overrides=["experiment=table2", *overrides], return_hydra_config=True)
    HydraConfig.instance().set_config(cfg)
    assert OmegaConf.to_container(cfg.hydra.sweep, resolve=True)["subdir"] == f"lastfm/sasrec-{name}/seed42"
