"""A run folder belongs to one run: its lock, checkpoint identity, clean failure, and one-paragraph
I/O errors at every entry point (issue: a folder is not owned by its run)."""

from __future__ import annotations

import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
from conftest import ROOT, tiny_config

from seqrec.errors import DataError, SeqrecError
from seqrec.locks import RUN_LOCK, FolderInUse, exclusive
from seqrec.runs.cli import remove_unused_run_dir
from seqrec.runs.outputs import OutputError, RunWriter
from seqrec.runs.pipeline import run
from seqrec.runs.rundir import load_trained
from seqrec.training.trainer import Trainer


def tiny_cfg(tmp_path: Path, out: Path, *extra: str):
    return tiny_config(tmp_path, out, "trainer.max_epochs=2", *extra)


HOLD = textwrap.dedent("""
    import sys, time
    from seqrec.locks import exclusive
    with exclusive(sys.argv[1]):
        print("held", flush=True)
        time.sleep(120)
""")


def test_a_second_run_into_a_folder_in_use_is_refused_before_writing(tmp_path):
    folder = tmp_path / "run"
    folder.mkdir()
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(folder / RUN_LOCK)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(FolderInUse, match=rf"in use by another run \(pid {holder.pid} on "):
            run(tiny_cfg(tmp_path, folder))
        assert [p.name for p in folder.iterdir()] == [RUN_LOCK]  # nothing of the refused run
    finally:
        holder.kill()
        holder.wait()
    # the killed holder's lock is taken over: the next run trains
    metrics = run(tiny_cfg(tmp_path, folder))
    assert (folder / "metrics.json").is_file() and metrics["seed"] == 42


def test_the_lock_is_released_when_its_holder_ends(tmp_path):
    with exclusive(tmp_path / RUN_LOCK):
        with pytest.raises(FolderInUse, match="pid"):
            with exclusive(tmp_path / RUN_LOCK):
                pass
    with exclusive(tmp_path / RUN_LOCK):  # free again
        pass


def test_a_checkpoint_of_another_run_is_refused(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    run(tiny_cfg(tmp_path, a))
    run(tiny_cfg(tmp_path, b, "seed=43"))
    # an unfinished a whose last.pt came from b: resuming it would continue b's model as a's
    (a / "metrics.json").unlink()
    shutil.copy(b / "last.pt", a / "last.pt")
    cfg = tiny_cfg(tmp_path, a, f"resume={a}")
    with pytest.raises(SeqrecError, match=r"last.pt was written by another run .*seed: 43 → 42"):
        run(cfg, overrides=[f"resume={a}"])
    # a finished a whose best.pt came from b: evaluating it would report b's model as a's
    shutil.copy(b / "metrics.json", a / "metrics.json")
    shutil.copy(b / "best.pt", a / "best.pt")
    with pytest.raises(SeqrecError, match=r"best.pt was written by another run .*seed: 43 → 42"):
        load_trained(a)
    from seqrec.recommend.__main__ import main as recommend

    with pytest.raises(SystemExit) as exit_:
        recommend(["--run", str(a), "--out", str(tmp_path / "recs.csv")])
    assert exit_.value.code == 1
    assert not (tmp_path / "recs.csv").exists()


def test_a_checkpoint_on_other_data_is_refused(tmp_path):
    a = tmp_path / "a"
    run(tiny_cfg(tmp_path, a))
    (a / "metrics.json").unlink()
    state = torch.load(a / "last.pt", weights_only=True)
    torch.save({**state, "data_fingerprint": "other"}, a / "last.pt")
    # the config is the folder's own: what differs is the data, and the message says so
    with pytest.raises(DataError, match=r"trained on data with data_fingerprint other, but .*log.csv now gives"):
        run(tiny_cfg(tmp_path, a, f"resume={a}"), overrides=[f"resume={a}"])


def test_a_folder_deleted_during_the_run_stops_it(tmp_path):
    writer = RunWriter(tmp_path / "run", {"seed": 1})
    shutil.rmtree(tmp_path / "run")
    with pytest.raises(OutputError, match="disappeared while the run was going"):
        writer.epoch({"epoch": 1, "train_loss": 1.0})
    assert not (tmp_path / "run").exists()  # not quietly made again, half empty


def test_a_run_that_failed_before_its_first_epoch_leaves_no_folder(tmp_path):
    failed = tmp_path / "outputs" / "failed"
    (failed / ".hydra" / "incoming").mkdir(parents=True)
    for name in ("config.yaml", "ids.npz", "train.log", RUN_LOCK):
        (failed / name).write_text("x")
    kept = tmp_path / "outputs" / "kept"
    (kept / ".hydra").mkdir(parents=True)
    for name in ("config.yaml", "last.pt"):  # a run that can be continued
        (kept / name).write_text("x")
    (kept / ".hydra" / "incoming").mkdir()
    remove_unused_run_dir(failed)
    remove_unused_run_dir(kept)
    assert not failed.exists()
    # the unsettled record went (and with it the .hydra/ it alone filled); nothing else changed
    assert sorted(p.name for p in kept.rglob("*")) == ["config.yaml", "last.pt"]


def test_a_running_runs_folder_is_never_removed(tmp_path):
    folder = tmp_path / "busy"
    folder.mkdir()
    (folder / "config.yaml").write_text("x")
    with exclusive(folder / RUN_LOCK):  # another run is in its first epoch
        remove_unused_run_dir(folder)
    assert (folder / "config.yaml").is_file()


@pytest.mark.realdata
def test_bad_pretrained_from_leaves_no_run_folder(tmp_path, lastfm_data_dir):
    bad = tmp_path / "not-a-checkpoint.pt"
    bad.write_text("text")
    out = tmp_path / "runs" / "s3rec"
    proc = subprocess.run(
        [
            sys.executable,
            str(ROOT / "train.py"),
            "model=s3rec",
            f"data_dir={lastfm_data_dir}",
            f"model.pretrained_from={bad}",
            f"hydra.run.dir={out}",
            "trainer.progress=false",
            "dataset.max_users=100",
            "num_threads=1",
        ],
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert proc.returncode == 1, proc.stderr
    assert str(bad) in proc.stderr and "Traceback" not in proc.stderr
    assert not out.exists()


def test_nan_scores_after_the_last_step_say_training_diverged(tmp_path):
    from seqrec.runs.pipeline import build

    exp = build(tiny_cfg(tmp_path, tmp_path / "run"))
    with torch.no_grad():
        for p in exp.model.parameters():
            p.fill_(float("nan"))
    with pytest.raises(SeqrecError, match="scores are NaN after epoch 3: training diverged") as err:
        exp.trainer.evaluate("valid", 3)
    assert "precision" not in str(err.value)  # an fp32 run is not told to use fp32
    exp.trainer.precision = "bf16"
    with pytest.raises(SeqrecError, match=r"or use trainer.precision=fp32 \(this run: bf16\)"):
        exp.trainer.evaluate("valid")


def test_ctrl_c_during_the_final_evaluation_stops_the_run_resumably(tmp_path, monkeypatch):
    from seqrec.training.checkpoints import Interrupted, StopRequest

    cfg = tiny_cfg(tmp_path, tmp_path / "run")
    original = Trainer.evaluate
    stop = StopRequest()
    calls = {"n": 0}

    def evaluate(self, which, epoch=None):  # the final evaluation comes after the 2 epochs' validation passes
        calls["n"] += 1
        if calls["n"] == 3:
            stop(2, None)  # SIGINT
        return original(self, which, epoch)

    monkeypatch.setattr(Trainer, "evaluate", evaluate)
    from seqrec.runs.pipeline import build

    exp = build(cfg)
    writer = RunWriter(tmp_path / "run", {})
    with pytest.raises(Interrupted) as err:
        exp.trainer.fit(checkpoints=writer, stop=stop)
    assert err.value.signal == 2 and err.value.epoch == 2
    assert torch.load(tmp_path / "run" / "last.pt", weights_only=True)["loop"]["epoch"] == 2


READ_ONLY = Path("/sys/seqrec-test")  # not writable even for root (sysfs); a read-only target


def _not_writable(path: Path) -> bool:
    try:
        path.mkdir(parents=True)
    except OSError:
        return True
    path.rmdir()
    return False


@pytest.mark.parametrize("target", ["through-a-file", "read-only"])
@pytest.mark.parametrize("entry", ["report", "export", "fetch", "recommend", "analysis"])
def test_entry_points_turn_an_unwritable_target_into_one_paragraph(tmp_path, capsys, entry, target):
    if target == "read-only" and not _not_writable(READ_ONLY):
        pytest.skip(f"{READ_ONLY} is writable on this machine")
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    bad = blocker if target == "through-a-file" else READ_ONLY
    runs = tmp_path / "runs"
    for loss in ("bce", "ce", "cce"):
        run(tiny_cfg(tmp_path, runs / loss, f"loss={loss}", "trainer.max_epochs=1"))
    code = 0
    if entry == "report":
        from seqrec.report.__main__ import main

        code = main(["--runs", str(runs), "--out", str(bad / "report"), "--no-plots"])
    elif entry == "export":
        from seqrec.report.export import main

        code = main([str(runs), "--into", str(bad / "results")])
    elif entry == "fetch":
        from seqrec.data.fetch import main

        code = main(["lastfm", "--data-dir", str(bad / "data")])
    elif entry == "recommend":
        from seqrec.recommend.__main__ import main

        with pytest.raises(SystemExit) as exit_:
            main(["--run", str(runs / "cce"), "--out", str(bad / "recs.csv")])
        code = exit_.value.code
    else:
        from seqrec.analysis.rq3 import main

        code = main(["--runs", str(runs), "--model", "all", "--out", str(bad / "analysis")])
    err = capsys.readouterr().err
    assert code == 1 and "Traceback" not in err
    assert str(bad) in err.replace("\n", "")
