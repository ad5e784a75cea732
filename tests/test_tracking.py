"""Experiment trackers (seqrec.tracking): what TensorBoard records equals epochs.csv and
metrics.json, also after an interruption and a resume, read back with TensorBoard's own reader."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from conftest import tiny_config

from seqrec.errors import ConfigError, RunInterrupted
from seqrec.pipeline import run

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


def test_a_resumed_run_continues_the_same_record_without_repeated_steps(tmp_path, monkeypatch):
    import os
    import signal

    from seqrec.trainer import Trainer

    out = tmp_path / "run"
    calls = {"n": 0}
    original = Trainer._autocast

    def sigterm_in_epoch_3(self):  # 40 users / 8 = 5 batches an epoch: batch 12 is in epoch 3
        calls["n"] += 1
        if calls["n"] == 12:
            os.kill(os.getpid(), signal.SIGTERM)
        return original(self)

    monkeypatch.setattr(Trainer, "_autocast", sigterm_in_epoch_3)
    with pytest.raises(RunInterrupted):
        run(_cfg(tmp_path, out))
    monkeypatch.setattr(Trainer, "_autocast", original)
    assert [s for s, _ in _scalars(out / "tensorboard")["train/loss"]] == [1, 2]
    # a process killed (kill -9) after logging epoch 3 but before saving it leaves a stale event
    from torch.utils.tensorboard import SummaryWriter

    with SummaryWriter(str(out / "tensorboard")) as stale:
        stale.add_scalar("train/loss", 999.0, 3)
    run(_cfg(tmp_path, out, f"resume={out}"), overrides=[f"resume={out}"])
    assert_tensorboard_matches_the_run(out)  # epochs 1..4 once each, equal to epochs.csv


def test_an_unknown_tracker_or_option_is_one_paragraph(tmp_path):
    from seqrec.config.schema import validate_config
    from seqrec.tracking import check_loggers

    with pytest.raises(ConfigError, match=r"logger: unknown tracker 'wandb'; choose from csv, tensorboard"):
        check_loggers({"wandb": {}})
    with pytest.raises(ConfigError, match=r"logger.tensorboard.flush"):
        validate_config(_cfg(tmp_path, tmp_path / "r", "+logger.tensorboard.flush=3"))
