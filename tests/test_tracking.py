"""Experiment trackers (seqrec.runs.tracking): what TensorBoard and MLflow record equals epochs.csv and
metrics.json, also after an interruption and a resume, read back with each library's own reader."""

from __future__ import annotations

import json
import re

import pandas as pd
import pytest
import yaml
from conftest import tiny_config

from seqrec.errors import ConfigError, RunInterrupted, SeqrecError
from seqrec.runs.pipeline import run

pytest.importorskip("tensorboard", reason="the tensorboard package (pip install -e '.[track]')")
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator  # noqa: E402


def _cfg(tmp_path, out, *extra):
    overrides = ["trainer.max_epochs=4", "trainer.patience=100", "trainer.batch_size=8", "logger=[csv,tensorboard]"]
    return tiny_config(tmp_path, out, *overrides, *extra, users=40, per_user=9)


def _scalars(folder) -> dict[str, list[tuple[int, float]]]:
    events = EventAccumulator(str(folder)).Reload()
    return {tag: [(e.step, e.value) for e in events.Scalars(tag)] for tag in events.Tags()["scalars"]}


def _f32(x: float) -> float:
    import numpy as np

    return float(np.float32(x))  # TensorBoard stores float32


def assert_tensorboard_matches_the_run(out):
    epochs = pd.read_csv(out / "epochs.csv")
    metrics = json.loads((out / "metrics.json").read_text())
    scalars = _scalars(out / "tensorboard")
    assert scalars["train/loss"] == [(int(r.epoch), _f32(r.train_loss)) for r in epochs.itertuples()]
    for column in ("valid/ndcg@20", "valid/hr@10"):
        assert scalars[column] == [(int(e), _f32(v)) for e, v in zip(epochs["epoch"], epochs[column])]
    assert [step for step, _ in scalars["time/epoch_seconds"]] == epochs["epoch"].tolist()
    for key in ("test/ndcg@10", "test/hr@20", "valid/ndcg@20"):
        assert scalars[f"final/{key}"] == [(metrics["best_epoch"], _f32(metrics[key]))]


def test_tensorboard_records_equal_the_runs_files(tmp_path):
    out = tmp_path / "run"
    run(_cfg(tmp_path, out))
    assert_tensorboard_matches_the_run(out)
    config = EventAccumulator(str(out / "tensorboard"), size_guidance={"tensors": 0}).Reload()
    assert "config/text_summary" in config.Tags()["tensors"]


def _stop_in_epoch_3(monkeypatch, cfg) -> None:
    """Run ``cfg`` and stop it by SIGTERM in its third epoch (its last.pt holds epoch 2)."""
    import os
    import signal

    from seqrec.training.trainer import Trainer

    calls = {"n": 0}
    original = Trainer._autocast

    def sigterm_in_epoch_3(self):  # 40 users / 8 = 5 batches an epoch: batch 12 is in epoch 3
        calls["n"] += 1
        if calls["n"] == 12:
            os.kill(os.getpid(), signal.SIGTERM)
        return original(self)

    monkeypatch.setattr(Trainer, "_autocast", sigterm_in_epoch_3)
    with pytest.raises(RunInterrupted):
        run(cfg)
    monkeypatch.setattr(Trainer, "_autocast", original)


def test_a_resumed_run_continues_the_same_record_without_repeated_steps(tmp_path, monkeypatch):
    out = tmp_path / "run"
    _stop_in_epoch_3(monkeypatch, _cfg(tmp_path, out))
    assert [s for s, _ in _scalars(out / "tensorboard")["train/loss"]] == [1, 2]
    # a process killed (kill -9) after logging epoch 3 but before saving it leaves a stale event
    from torch.utils.tensorboard import SummaryWriter

    with SummaryWriter(str(out / "tensorboard")) as stale:
        stale.add_scalar("train/loss", 999.0, 3)
    run(_cfg(tmp_path, out, f"resume={out}"), overrides=[f"resume={out}"])
    assert_tensorboard_matches_the_run(out)  # epochs 1..4 once each, equal to epochs.csv


def test_an_unknown_tracker_or_option_is_one_paragraph(tmp_path):
    from seqrec.config.schema import validate_config
    from seqrec.runs.tracking import check_loggers

    with pytest.raises(ConfigError, match=r"logger: unknown tracker 'wandb'; choose from csv, tensorboard, mlflow"):
        check_loggers({"wandb": {}})
    with pytest.raises(ConfigError, match=r"logger.tensorboard.flush"):
        validate_config(_cfg(tmp_path, tmp_path / "r", "+logger.tensorboard.flush=3"))


# ---- MLflow ----
def _mlflow_cfg(tmp_path, out, *extra):
    return _cfg(
        tmp_path, out, "logger=[csv,mlflow]", f"logger.mlflow.tracking_uri=sqlite:///{tmp_path}/mlflow.db", *extra
    )


@pytest.mark.parametrize(
    "override, message",
    [
        ("logger.mlflow.experiment=''", "MLflow needs a non-empty experiment name"),
        ("logger.mlflow.tracking_uri=/tmp/mlruns", "names a file store"),
        ("logger.mlflow.tracking_uri=file:///tmp/mlruns", "tracking_uri=sqlite:////tmp/mlruns/mlflow.db"),
        ("logger.mlflow.tracking_uri=file:./mlruns", "tracking_uri=sqlite:///./mlruns/mlflow.db"),
        ("logger.tensorboard.flush_secs=-1", "logger.tensorboard.flush_secs=-1"),
    ],
    ids=["empty-experiment", "path", "file-uri", "relative-file-uri", "flush"],
)
def test_tracker_settings_mlflow_refuses_mid_run_are_refused_before_the_run(tmp_path, override, message):
    from seqrec.config.schema import validate_config

    extra = ["logger=[csv,tensorboard,mlflow]", override]
    with pytest.raises(ConfigError, match=re.escape(message)):
        validate_config(_cfg(tmp_path, tmp_path / "r", *extra))


def test_mlflows_own_file_store_opt_in_is_respected(tmp_path, monkeypatch):
    from seqrec.runs.tracking import check_loggers

    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
    assert check_loggers({"mlflow": {"tracking_uri": str(tmp_path / "mlruns")}})["mlflow"]["tracking_uri"]


def test_an_unreachable_mlflow_server_is_one_paragraph_before_the_run_writes_its_files(tmp_path):
    pytest.importorskip("mlflow", reason="the mlflow package (pip install -e '.[track]')")
    import os
    import socket

    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    out = tmp_path / "run"
    cfg = _cfg(tmp_path, out, "logger=[csv,mlflow]", f"logger.mlflow.tracking_uri=http://127.0.0.1:{port}")
    with pytest.raises(SeqrecError, match=rf"cannot use the tracking store http://127.0.0.1:{port} \(") as err:
        run(cfg)
    assert "Start the MLflow server" in str(err.value)
    assert not (out / "config.yaml").exists() and not (out / "ids.npz").exists()
    assert "MLFLOW_HTTP_REQUEST_MAX_RETRIES" not in os.environ  # the quick setting does not outlive the check


def assert_mlflow_matches_the_run(out, tmp_path):
    pytest.importorskip("mlflow", reason="the mlflow package (pip install -e '.[track]')")
    from mlflow import MlflowClient

    from seqrec.runs.tracking import mlflow_key

    client = MlflowClient(tracking_uri=f"sqlite:///{tmp_path}/mlflow.db")
    run_id = json.loads((out / "mlflow.json").read_text())["run_id"]
    found = client.get_run(run_id)
    epochs = pd.read_csv(out / "epochs.csv")
    metrics = json.loads((out / "metrics.json").read_text())
    for column in ("train_loss", "valid/ndcg@20", "valid/hr@10", "epoch_seconds"):
        history = sorted((m.step, m.value) for m in client.get_metric_history(run_id, mlflow_key(column)))
        assert history == list(zip(epochs["epoch"], epochs[column]))  # each epoch once, the same double
    for key in ("test/ndcg@10", "test/hr@20", "valid/ndcg@20"):
        (final,) = client.get_metric_history(run_id, mlflow_key(f"final/{key}"))
        assert (final.step, final.value) == (metrics["best_epoch"], metrics[key])
    assert found.info.status == "FINISHED"
    assert found.data.params["model.hidden_size"] == str(
        yaml.safe_load((out / "config.yaml").read_text())["model"]["hidden_size"]
    )
    tags = found.data.tags
    assert (tags["dataset"], tags["model"], tags["loss"], tags["seed"]) == (
        metrics["dataset"],
        metrics["model"],
        metrics["loss"],
        str(metrics["seed"]),
    )
    assert tags.get("commit") == metrics.get("git_commit") or metrics.get("git_commit") is None
    assert sorted(a.path for a in client.list_artifacts(run_id)) == ["config.yaml", "metrics.json"]
    return client, run_id


def test_mlflow_records_equal_the_runs_files(tmp_path):
    out = tmp_path / "run"
    run(_mlflow_cfg(tmp_path, out))
    assert_mlflow_matches_the_run(out, tmp_path)
    assert not (tmp_path / "mlruns").exists() and (tmp_path / "artifacts").is_dir()  # beside the store


def test_a_resumed_run_continues_the_same_mlflow_run_without_repeated_steps(tmp_path, monkeypatch):
    from seqrec.runs.outputs import RunWriter

    pytest.importorskip("mlflow", reason="the mlflow package (pip install -e '.[track]')")
    from mlflow import MlflowClient

    out = tmp_path / "run"
    _stop_in_epoch_3(monkeypatch, _mlflow_cfg(tmp_path, out))
    client = MlflowClient(tracking_uri=f"sqlite:///{tmp_path}/mlflow.db")
    run_id = json.loads((out / "mlflow.json").read_text())["run_id"]
    assert client.get_run(run_id).info.status == "KILLED"
    assert sorted(m.step for m in client.get_metric_history(run_id, "train_loss")) == [1, 2]

    # a process that dies while saving epoch 3 (kill -9): epochs.csv has its row, last.pt and MLflow do not
    saving = RunWriter.save_last

    def die_saving_epoch_3(self, state):
        if state["loop"]["epoch"] == 3:
            raise SystemExit("killed")
        saving(self, state)

    monkeypatch.setattr(RunWriter, "save_last", die_saving_epoch_3)
    with pytest.raises(SystemExit):
        run(_mlflow_cfg(tmp_path, out, f"resume={out}"), overrides=[f"resume={out}"])
    monkeypatch.setattr(RunWriter, "save_last", saving)
    assert len(pd.read_csv(out / "epochs.csv")) == 3
    assert sorted(m.step for m in client.get_metric_history(run_id, "train_loss")) == [1, 2]

    run(_mlflow_cfg(tmp_path, out, f"resume={out}"), overrides=[f"resume={out}"])
    _, resumed = assert_mlflow_matches_the_run(out, tmp_path)  # epochs 1..4 once each, equal to epochs.csv
    assert resumed == run_id and len(client.search_runs([client.get_run(run_id).info.experiment_id])) == 1


@pytest.mark.realdata
def test_pretraining_logs_its_objectives_per_epoch(tmp_path, lastfm_data_dir):
    pytest.importorskip("mlflow", reason="the mlflow package (pip install -e '.[track]')")
    import torch
    from conftest import compose_config
    from mlflow import MlflowClient

    out = tmp_path / "pre"
    cfg = compose_config(
        [
            f"data_dir={lastfm_data_dir}",
            f"output_dir={out}",
            "dataset.max_users=20",
            "model=s3rec",
            "stage=pretrain",
            "model.pretrain.epochs=2",
            f"model.pretrain.dir={tmp_path / 'store'}",
            "trainer.progress=false",
            "logger=[csv,tensorboard,mlflow]",
            f"logger.mlflow.tracking_uri=sqlite:///{tmp_path}/mlflow.db",
        ]
    )
    run(cfg)
    (state,) = [torch.load(p, weights_only=True) for p in (tmp_path / "store").glob("*/epoch-2.pt")]
    history = pd.DataFrame(state["history"])  # the pre-training's own rows: epoch, aap, mip, map, sp, loss
    scalars = _scalars(out / "tensorboard")
    client = MlflowClient(tracking_uri=f"sqlite:///{tmp_path}/mlflow.db")
    run_id = json.loads((out / "mlflow.json").read_text())["run_id"]
    for objective in ("aap", "mip", "map", "sp", "loss"):
        expected = list(zip(history["epoch"], history[objective]))
        assert scalars[f"pretrain/{objective}"] == [(e, _f32(v)) for e, v in expected]
        assert sorted((m.step, m.value) for m in client.get_metric_history(run_id, f"pretrain/{objective}")) == expected
    assert client.get_run(run_id).info.status == "FINISHED"


@pytest.mark.slow
def test_a_sweep_gives_one_tracked_run_per_job(tmp_path, lastfm_data_dir):
    import subprocess
    import sys

    from conftest import ROOT

    pytest.importorskip("mlflow", reason="the mlflow package (pip install -e '.[track]')")
    from mlflow import MlflowClient

    store = f"sqlite:///{tmp_path}/mlflow.db"
    done = subprocess.run(
        [
            sys.executable,
            "train.py",
            "-m",
            f"data_dir={lastfm_data_dir}",
            "dataset=lastfm",
            "dataset.max_users=40",
            "trainer.max_epochs=2",
            "trainer.progress=false",
            "seed=1,2",
            "logger=[csv,mlflow]",
            f"logger.mlflow.tracking_uri={store}",
            f"hydra.sweep.dir={tmp_path / 'sweep'}",
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    client = MlflowClient(tracking_uri=store)
    runs = client.search_runs([client.get_experiment_by_name("seqrec").experiment_id])
    assert sorted(r.data.tags["seed"] for r in runs) == ["1", "2"]
    records = sorted((tmp_path / "sweep").rglob("mlflow.json"))
    assert len(records) == 2  # one per job's run folder
    for record in records:
        run_id = json.loads(record.read_text())["run_id"]
        assert run_id in {r.info.run_id for r in runs}
        assert len(client.get_metric_history(run_id, "train_loss")) == 2


@pytest.mark.parametrize("name, module", [("tensorboard", "tensorboard"), ("mlflow", "mlflow")])
def test_a_tracker_whose_package_is_missing_names_the_extra_before_any_data_is_read(
    tmp_path, monkeypatch, name, module
):
    import importlib.util

    from seqrec.runs.tracking import check_loggers

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda m, *a: None if m == module else real(m, *a))
    with pytest.raises(ConfigError, match=rf"logger={name} needs the {module} package.*pip install -e '\.\[track\]'"):
        check_loggers({"csv": {}, name: {}})
