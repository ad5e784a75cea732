"""Exact resume: a run interrupted after epoch k (or in the middle of an epoch) and resumed writes
the same metrics.json, epochs.csv (timings aside) and per_user_test.csv as an uninterrupted run;
finished runs are skipped; a changed config is refused. Real SIGTERM and kill -9 in the slow tests."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time

import numpy as np
import pandas as pd
import pytest
import torch
import yaml
from conftest import ROOT, compose_config

from seqrec.errors import ConfigError, DataError, RunInterrupted, SeqrecError
from seqrec.runs import resume
from seqrec.runs.pipeline import run
from seqrec.training.trainer import Trainer

pytestmark = pytest.mark.realdata

TIMINGS = {"total_seconds", "seconds_per_epoch", "eval_seconds_per_epoch", "output_dir"}
EPOCH_TIMINGS = ["eval_seconds", "epoch_seconds", "train_seconds_cum"]
SMALL = [
    "dataset.max_users=120",
    "trainer.max_epochs=4",
    "trainer.patience=10",
    "trainer.progress=false",
    "device=cpu",
    "trainer.batch_size=32",
]


def config(out, data_dir, *overrides):
    return compose_config([f"data_dir={data_dir}", f"output_dir={out}", *SMALL, *overrides])


def assert_same_run(a, b):
    """metrics.json (timings aside), epochs.csv (timings aside) and per_user_test.csv are equal."""
    ma, mb = (json.loads((d / "metrics.json").read_text()) for d in (a, b))
    assert {k: v for k, v in ma.items() if k not in TIMINGS} == {k: v for k, v in mb.items() if k not in TIMINGS}
    ea, eb = (pd.read_csv(d / "epochs.csv").drop(columns=EPOCH_TIMINGS) for d in (a, b))
    pd.testing.assert_frame_equal(ea, eb)
    assert (a / "per_user_test.csv").read_text() == (b / "per_user_test.csv").read_text()


@pytest.fixture
def signal_at(monkeypatch):
    """Send SIGTERM to this process at the n-th training batch (``Trainer._autocast`` runs once per
    training batch in fp32) — the real signal handler then stops the loop after that batch."""

    def arm(n):
        calls = {"n": 0}
        original = Trainer._autocast

        def counting(self):
            calls["n"] += 1
            if calls["n"] == n:
                os.kill(os.getpid(), signal.SIGTERM)
            return original(self)

        monkeypatch.setattr(Trainer, "_autocast", counting)

    return arm


@pytest.mark.parametrize(
    "loss,batch", [("cce", 5), ("bce", 9), ("bce", 8)], ids=["cce-mid-epoch", "bce-mid-epoch", "bce-end-of-epoch-2"]
)
def test_interrupted_and_resumed_run_equals_the_uninterrupted_one(tmp_path, lastfm_data_dir, signal_at, loss, batch):
    # 120 users / 32 = 4 batches per epoch: batch 5 is inside epoch 2, batch 8 its last one
    ref, cut = tmp_path / "ref", tmp_path / "cut"
    run(config(ref, lastfm_data_dir, f"loss={loss}"))
    signal_at(batch)
    with pytest.raises(RunInterrupted, match=f"resume={cut}") as info:
        run(config(cut, lastfm_data_dir, f"loss={loss}"))
    assert info.value.exit_code == 128 + signal.SIGTERM
    assert not (cut / "metrics.json").exists()
    state = torch.load(cut / "last.pt", weights_only=True)
    assert (state["loop"]["epoch"], state["loop"]["batches_done"]) == (
        divmod(batch, 4) if batch % 4 else (batch // 4, 0)
    )
    signal_at(10**9)  # disarm
    run(config(tmp_path / "elsewhere", lastfm_data_dir, f"resume={cut}"), overrides=[f"resume={cut}"])
    assert_same_run(ref, cut)


def test_a_run_continued_in_another_folder_records_that_folder(tmp_path, lastfm_data_dir, signal_at):
    # a search moves a stopped trial's folder to its re-queued trial's; a user may move one by hand
    first, moved = tmp_path / "trial0", tmp_path / "trial1"
    signal_at(5)
    with pytest.raises(RunInterrupted):
        run(config(first, lastfm_data_dir))
    signal_at(10**9)  # disarm
    first.rename(moved)
    run(config(moved, lastfm_data_dir))  # re-run into the new fixed folder: continued from last.pt
    assert yaml.safe_load((moved / "config.yaml").read_text())["output_dir"] == str(moved)
    assert json.loads((moved / "metrics.json").read_text())["output_dir"] == str(moved)


def test_finished_run_is_skipped_not_retrained(tmp_path, lastfm_data_dir, capsys):
    out = tmp_path / "run"
    first = run(config(out, lastfm_data_dir, "trainer.max_epochs=1"))
    stamp = (out / "metrics.json").stat().st_mtime_ns
    again = run(config(out, lastfm_data_dir, "trainer.max_epochs=1"))
    assert again == first and (out / "metrics.json").stat().st_mtime_ns == stamp
    assert "already holds a finished run" in capsys.readouterr().out


def test_a_finished_run_of_another_config_is_refused_not_returned(tmp_path, lastfm_data_dir):
    out = tmp_path / "run"
    first = run(config(out, lastfm_data_dir, "trainer.max_epochs=1"))
    # e.g. a report's rerun folder after the search's best trial changed: not that config's metrics
    with pytest.raises(ConfigError, match=r"finished run of another config.*optimizer.lr: 0.001 → 0.01"):
        run(config(out, lastfm_data_dir, "trainer.max_epochs=1", "optimizer.lr=0.01"))
    with pytest.raises(ConfigError, match=r"seed: 42 → 43"):
        run(config(out, lastfm_data_dir, "trainer.max_epochs=1", "seed=43"))
    # options that do not change the result, and an option the saved config predates at the value
    # the old run computed with, are not compared
    saved = yaml.safe_load((out / "config.yaml").read_text())
    del saved["trainer"]["samples"]
    (out / "config.yaml").write_text(yaml.safe_dump(saved))
    again = run(config(out, lastfm_data_dir, "trainer.max_epochs=1", "num_threads=1", "trainer.progress=true"))
    assert again == first
    # ... but set otherwise it is: the old run did not train on prefixes
    with pytest.raises(ConfigError, match=r"trainer.samples: 'sequences' → 'prefixes'"):
        run(config(out, lastfm_data_dir, "trainer.max_epochs=1", "trainer.samples=prefixes"))
    # and a missing option without a known old value is a difference, not taken on trust
    del saved["trainer"]["patience"]
    (out / "config.yaml").write_text(yaml.safe_dump(saved))
    with pytest.raises(ConfigError, match=r"trainer.patience: '\(not set\)' → 10"):
        run(config(out, lastfm_data_dir, "trainer.max_epochs=1"))


def test_runs_saved_before_the_package_layout_changed_resume_and_load(tmp_path, lastfm_data_dir, signal_at):
    # config.yaml and last.pt of runs made before seqrec/training/ and seqrec/runs/ existed name
    # the trainer and the sampler by their old module paths: they resume, are skipped when
    # finished, and load, with the classes' new paths
    from seqrec.runs.rundir import load_trained

    old = {"trainer": "seqrec.trainer.Trainer", "sampler": "seqrec.samplers.UniformSampler"}

    def backdate(folder):
        saved = yaml.safe_load((folder / "config.yaml").read_text())
        saved["trainer"]["_target_"], saved["loss"]["sampler"]["_target_"] = old["trainer"], old["sampler"]
        (folder / "config.yaml").write_text(yaml.safe_dump(saved))
        for name in ("last.pt", "best.pt"):
            state = torch.load(folder / name, weights_only=True)
            state["config"]["trainer"]["_target_"] = old["trainer"]
            state["config"]["loss"]["sampler"]["_target_"] = old["sampler"]
            torch.save(state, folder / name)

    ref, cut = tmp_path / "ref", tmp_path / "cut"
    run(config(ref, lastfm_data_dir, "loss=bce"))
    signal_at(6)
    with pytest.raises(RunInterrupted):
        run(config(cut, lastfm_data_dir, "loss=bce"))
    backdate(cut)
    run(config(tmp_path / "unused", lastfm_data_dir, f"resume={cut}"))
    assert_same_run(ref, cut)

    backdate(ref)
    assert run(config(ref, lastfm_data_dir, "loss=bce")) == json.loads((ref / "metrics.json").read_text())
    trained = load_trained(ref)
    assert (
        type(trained.model).__name__ == "SASRec" and trained.cfg.trainer._target_ == "seqrec.training.trainer.Trainer"
    )


def test_changed_config_on_resume_names_the_keys(tmp_path, lastfm_data_dir, signal_at):
    out = tmp_path / "run"
    signal_at(2)
    with pytest.raises(RunInterrupted):
        run(config(out, lastfm_data_dir))
    signal_at(10**9)
    with pytest.raises(ConfigError, match=r"optimizer.lr: 0.001 → 0.01"):
        run(
            config(tmp_path / "x", lastfm_data_dir, f"resume={out}", "optimizer.lr=0.01"),
            overrides=[f"resume={out}", "optimizer.lr=0.01"],
        )
    # a sweep re-run into the same folder with another setting is refused the same way
    with pytest.raises(ConfigError, match=r"trainer.batch_size: 32 → 64"):
        run(config(out, lastfm_data_dir, "trainer.batch_size=64"))
    with pytest.raises(ConfigError, match="there is no folder"):
        run(config(tmp_path / "y", lastfm_data_dir, f"resume={tmp_path / 'nothing'}"), overrides=[])


@pytest.fixture(scope="module")
def stopped_in_epoch_3(tmp_path_factory, lastfm_data_dir):
    """An unfinished run stopped in epoch 3 (epochs 1 and 2 validated: best.pt written), and the
    best.pt of another finished run (BCE)."""
    root = tmp_path_factory.mktemp("stopped")
    with pytest.MonkeyPatch.context() as mp:
        calls = {"n": 0}
        original = Trainer._autocast

        def counting(self):
            calls["n"] += 1
            if calls["n"] == 10:  # 4 batches per epoch
                os.kill(os.getpid(), signal.SIGTERM)
            return original(self)

        mp.setattr(Trainer, "_autocast", counting)
        with pytest.raises(RunInterrupted):
            run(config(root / "run", lastfm_data_dir))
    run(config(root / "other", lastfm_data_dir, "loss=bce", "trainer.max_epochs=1"))
    return root


@pytest.mark.parametrize("damage", ["foreign", "missing", "truncated", "other epoch"])
def test_a_resumed_run_refuses_a_best_pt_that_is_not_its_own(tmp_path, lastfm_data_dir, stopped_in_epoch_3, damage):
    # the results are computed with best.pt at the end: a missing one once reported the last epoch's
    # weights as "best epoch 2", a copied one another run's numbers, without a word
    out = tmp_path / "run"
    shutil.copytree(stopped_in_epoch_3 / "run", out)
    best = out / "best.pt"
    if damage == "foreign":
        shutil.copy(stopped_in_epoch_3 / "other" / "best.pt", best)
        match = r"best.pt was written by another run.*loss"
    elif damage == "missing":
        best.unlink()
        match = r"best.pt is missing, but the run's last.pt records epoch [12] as its best"
    elif damage == "truncated":
        best.write_bytes(best.read_bytes()[:1000])
        match = r"best.pt is damaged: it cannot be read.*delete the folder"
    else:
        state = torch.load(best, weights_only=True)
        torch.save({**state, "epoch": 0}, best)  # older than the best epoch last.pt records
        match = r"best.pt holds epoch 0, but the run's last.pt records epoch [12]"
    with pytest.raises(SeqrecError, match=match):
        run(config(tmp_path / "x", lastfm_data_dir, f"resume={out}"), overrides=[f"resume={out}"])
    with pytest.raises(SeqrecError, match=match):  # a sweep re-run into the folder: the same check
        run(config(out, lastfm_data_dir))
    assert not (out / "metrics.json").exists()


# -- real processes ------------------------------------------------------------------------------
def train_cmd(data_dir, run_dir, *extra):
    return [
        sys.executable,
        str(ROOT / "train.py"),
        f"data_dir={data_dir}",
        f"hydra.run.dir={run_dir}",
        *SMALL,
        "trainer.max_epochs=6",
        "num_threads=1",
        *extra,
    ]


def wait_for_epoch(run_dir, epoch, proc, timeout=240):
    """Wait until ``last.pt`` records ``epoch`` completed epochs (it is replaced atomically)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if (run_dir / "last.pt").exists():
            if torch.load(run_dir / "last.pt", weights_only=True)["loop"]["epoch"] >= epoch:
                return
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.05)
    raise AssertionError("the run did not reach the epoch in time")


@pytest.mark.slow
def test_kill_9_and_sigterm_then_resume_equal_the_uninterrupted_run(tmp_path, lastfm_data_dir):
    ref = tmp_path / "ref"
    done = subprocess.run(train_cmd(lastfm_data_dir, ref), capture_output=True, text=True, cwd=tmp_path, timeout=600)
    assert done.returncode == 0, done.stderr

    for how, sig in (("kill", signal.SIGKILL), ("term", signal.SIGTERM)):
        cut = tmp_path / how
        proc = subprocess.Popen(
            train_cmd(lastfm_data_dir, cut), cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        wait_for_epoch(cut, 2, proc)
        proc.send_signal(sig)
        _, err = proc.communicate(timeout=300)
        if sig == signal.SIGTERM:
            assert proc.returncode == 128 + signal.SIGTERM, err
            assert f"resume={cut}" in err and "Traceback" not in err
        else:
            assert proc.returncode == -signal.SIGKILL
        assert not (cut / "metrics.json").exists()
        resumed = subprocess.run(
            train_cmd(lastfm_data_dir, tmp_path / "unused", f"resume={cut}")[:2]
            + [f"resume={cut}", f"data_dir={lastfm_data_dir}", "num_threads=1"],
            capture_output=True,
            text=True,
            cwd=tmp_path,
            timeout=600,
        )
        assert resumed.returncode == 0, resumed.stderr
        assert_same_run(ref, cut)
        # Hydra's record of the command that started the run stays; the resuming one's goes beside it
        started = yaml.safe_load((cut / ".hydra" / "overrides.yaml").read_text())
        assert "trainer.max_epochs=6" in started and not any(o.startswith("resume=") for o in started)
        assert f"resume={cut}" in yaml.safe_load((cut / ".hydra" / "resume" / "overrides.yaml").read_text())


def test_resume_of_no_run_folder_is_refused_before_anything_is_written(tmp_path):
    # resume= naming a missing folder, an ordinary folder or a file: one paragraph, exit 1, and
    # the path left exactly as it was (no Hydra log, no lock, no folder created or removed)
    notes = tmp_path / "notes"
    notes.mkdir()
    (notes / "notes.txt").write_text("mine")
    empty = tmp_path / "empty"
    empty.mkdir()
    broken = tmp_path / "broken"  # a run folder whose config.yaml was edited into invalid YAML
    broken.mkdir()
    (broken / "config.yaml").write_text("model: [1, 2\n")
    listed = tmp_path / "listed"  # valid YAML, but no mapping of settings
    listed.mkdir()
    (listed / "config.yaml").write_text("[1, 2]\n")
    cases = {
        tmp_path / "missing": "there is no folder",
        notes: "is not a run folder (it has no config.yaml)",
        empty: "is not a run folder",
        notes / "notes.txt": "names a file, not a run folder",
        broken: "config.yaml cannot be read as the run's config (ParserError",
        listed: "config.yaml cannot be read as the run's config (it holds no settings)",
        "": "resume= is empty (an unset shell variable?)",  # `resume=$RUN` with RUN unset
    }
    for path, message in cases.items():
        before = sorted(p.name for p in tmp_path.rglob("*"))
        done = subprocess.run(
            [sys.executable, str(ROOT / "train.py"), f"resume={path}"], capture_output=True, text=True, cwd=tmp_path
        )
        assert done.returncode == 1 and message in " ".join(done.stderr.split()), done.stderr
        assert "Traceback" not in done.stderr
        assert sorted(p.name for p in tmp_path.rglob("*")) == before, path
    # a run folder, but hydra.run.dir names another: Hydra's log would go there, the run here
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.yaml").write_text("seed: 42\n")
    before = sorted(p.name for p in tmp_path.rglob("*"))
    done = subprocess.run(
        [sys.executable, str(ROOT / "train.py"), f"resume={run}", f"hydra.run.dir={tmp_path / 'other'}"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert done.returncode == 1 and "names another one. Drop hydra.run.dir" in " ".join(done.stderr.split())
    assert sorted(p.name for p in tmp_path.rglob("*")) == before


@pytest.mark.slow
def test_sweep_rerun_skips_finished_runs(tmp_path, lastfm_data_dir):
    cmd = [
        sys.executable,
        str(ROOT / "train.py"),
        "-m",
        f"data_dir={lastfm_data_dir}",
        *SMALL,
        "trainer.max_epochs=1",
        "loss=bce,cce",
        f"hydra.sweep.dir={tmp_path}",
        "hydra.sweep.subdir=${hydra:runtime.choices.loss}",
    ]
    first = subprocess.run(cmd, capture_output=True, text=True, cwd=tmp_path, timeout=600)
    assert first.returncode == 0, first.stderr
    stamps = {p: p.stat().st_mtime_ns for p in tmp_path.glob("*/metrics.json")}
    assert len(stamps) == 2
    again = subprocess.run(cmd, capture_output=True, text=True, cwd=tmp_path, timeout=600)
    assert again.returncode == 0, again.stderr
    assert again.stdout.count("already holds a finished run") == 2
    assert {p: p.stat().st_mtime_ns for p in tmp_path.glob("*/metrics.json")} == stamps


def test_an_option_added_since_and_off_does_not_stop_an_older_run_from_continuing():
    from seqrec.runs.configs import config_differences

    saved = {"dataset": {"name": "custom", "kcore": 5}, "seed": 42}
    newer = {"dataset": {"name": "custom", "kcore": 5, "rating_col": None, "min_rating": None}, "seed": 42}
    assert config_differences(saved, newer) == []
    turned_on = {"dataset": {"name": "custom", "kcore": 5, "rating_col": "rating", "min_rating": 4.0}, "seed": 42}
    assert config_differences(saved, turned_on) == [
        "dataset.min_rating: '(not set)' → 4.0",
        "dataset.rating_col: '(not set)' → 'rating'",
    ]
    assert config_differences({**saved, "seed": 1}, newer) == ["seed: 1 → 42"]


def test_an_option_added_since_is_compared_with_the_value_older_runs_computed_with():
    from seqrec.runs.configs import config_differences

    saved = {"trainer": {"patience": 10}, "eval": {"mask_history": True}}
    assert config_differences(saved, {"trainer": {"patience": 10, "samples": "sequences"}, "eval": saved["eval"]}) == []
    assert config_differences(saved, {"trainer": {"patience": 10, "samples": "prefixes"}, "eval": saved["eval"]}) == [
        "trainer.samples: 'sequences' → 'prefixes'"
    ]
    # eval.rank_repeats had no one value before it existed: what a run did is read from its metrics
    from seqrec.runs.configs import with_legacy_options

    ranked = {
        "trainer": {**saved["trainer"], "rank_repeats": True},
        "eval": {"mask_history": True, "rank_repeats": True},
    }
    assert config_differences(saved, ranked) == [
        "eval.rank_repeats: '(not set)' → True",
        "trainer.rank_repeats: '(not set)' → True",
    ]
    masked_then = with_legacy_options(saved, {"test/ndcg@10": 0.1})  # before repeats were ranked
    assert config_differences(masked_then, ranked) == [
        "eval.rank_repeats: False → True",
        "trainer.rank_repeats: False → True",
    ]
    ranked_then = with_legacy_options(saved, {"test/ndcg@10": 0.1, "test/repeat_share": 0.0})
    assert ranked_then["eval"]["rank_repeats"] is True and config_differences(ranked_then, ranked) == []
    assert with_legacy_options(saved, None) == saved


def test_growing_a_sweep_with_more_seeds_continues_its_runs():
    # `make table2 SEEDS=3` after a 1-seed sweep: seed 42's folder holds seeds: 1; the run is the same
    from seqrec.runs.configs import config_differences

    assert config_differences({"seed": 42, "seeds": 1}, {"seed": 42, "seeds": 3}) == []
    assert config_differences({"seed": 42, "seeds": 1}, {"seed": 43, "seeds": 3}) == ["seed: 42 → 43"]


def test_a_checkpoint_that_cannot_be_opened_is_not_called_damaged(tmp_path):
    from seqrec.training.checkpoints import DamagedCheckpoint, read_checkpoint

    with pytest.raises(SeqrecError, match="cannot open the checkpoint") as err:
        read_checkpoint(tmp_path / "missing.pt")
    assert not isinstance(err.value, DamagedCheckpoint)
    (tmp_path / "cut.pt").write_bytes(b"PK\x03\x04 not a whole zip")
    with pytest.raises(DamagedCheckpoint, match=r"cut.pt is damaged: it cannot be read"):
        read_checkpoint(tmp_path / "cut.pt")


def _custom_log(path, extra_rows=()):
    rng = np.random.default_rng(0)
    rows = [f"u{u},i{int(i)},{t}" for u in range(40) for t, i in enumerate(rng.integers(1, 16, size=8))]
    path.write_text("user_id,item_id,timestamp\n" + "\n".join([*rows, *extra_rows]) + "\n")


def test_a_finished_run_is_not_returned_for_changed_data(tmp_path, capsys):
    # the same command after the data file changed used to print "not retrained" and hand back the
    # metrics of the old data
    log, out = tmp_path / "log.csv", tmp_path / "run"
    _custom_log(log)
    small = ["dataset=custom", f"dataset.path={log}", "dataset.kcore=0", "model.hidden_size=8", "model.num_heads=1"]
    first = run(config(out, tmp_path / "data", *small, "trainer.max_epochs=1"))
    assert run(config(out, tmp_path / "data", *small, "trainer.max_epochs=1")) == first
    _custom_log(log, ["u0,i3,999"])
    with pytest.raises(
        DataError, match=rf"trained on data with data_fingerprint {first['data_fingerprint']}.*{log} now gives"
    ):
        run(config(out, tmp_path / "data", *small, "trainer.max_epochs=1"))


def test_a_run_whose_data_changed_is_told_so_not_that_its_checkpoint_is_foreign(tmp_path):
    config = {"seed": 1, "dataset": {"name": "mine", "path": "/data/log.csv"}}
    checkpoint = {"config": config, "data_fingerprint": "aaaa"}
    resume.check_identity(checkpoint, config, tmp_path / "last.pt", "aaaa")  # the same data: fine
    with pytest.raises(
        DataError, match=r"trained on data with data_fingerprint aaaa, but /data/log.csv now gives bbbb"
    ):
        resume.check_identity(checkpoint, config, tmp_path / "last.pt", "bbbb")
    # another run's checkpoint is still named as such, the data difference listed with the rest
    with pytest.raises(SeqrecError, match=r"written by another run.*seed: 2 → 1; data_fingerprint"):
        resume.check_identity({**checkpoint, "config": {**config, "seed": 2}}, config, tmp_path / "last.pt", "bbbb")
