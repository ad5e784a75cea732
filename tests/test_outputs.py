"""Run files under failure: a full disk or unwritable folder is one paragraph naming the folder
(with the metrics still printed), and temporary files of killed writers do not pile up."""

from __future__ import annotations

import errno
import os
import signal
import subprocess
import sys
import time

import pytest
from conftest import compose_config

from seqrec import atomic
from seqrec.atomic import atomic_write, remove_stale_temp_files
from seqrec.runs import outputs
from seqrec.runs.cli import check_writable
from seqrec.runs.outputs import OutputError
from seqrec.runs.pipeline import run


def dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_stale_temp_files_of_dead_writers_are_removed(tmp_path):
    host = atomic._host()
    dead = tmp_path / f".x.npz.{host}-{dead_pid()}.abc123.tmp"
    alive = tmp_path / f".y.npz.{host}-{os.getpid()}.abc123.tmp"
    other_host_recent = tmp_path / ".z.npz.elsewhere-1.abc123.tmp"
    other_host_old = tmp_path / ".w.npz.elsewhere-2.abc123.tmp"
    unrelated = tmp_path / ".hidden.tmp"
    for path in (dead, alive, other_host_recent, other_host_old, unrelated):
        path.write_bytes(b"partial")
    old = time.time() - atomic.STALE_SECONDS - 60
    os.utime(other_host_old, (old, old))
    assert sorted(remove_stale_temp_files(tmp_path)) == sorted([dead, other_host_old])
    assert alive.exists() and other_host_recent.exists() and unrelated.exists()


def test_a_writer_killed_mid_write_leaves_a_temp_file_that_the_next_write_removes(tmp_path):
    code = (
        "import sys, time; from seqrec.atomic import atomic_write\n"
        "atomic_write(sys.argv[1], lambda h: (h.write(b'half'), h.flush(), print('writing', flush=True),"
        " time.sleep(60)))"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", code, str(tmp_path / "cache.npz")], stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout.readline().strip() == "writing"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    leftovers = list(tmp_path.glob(".cache.npz.*.tmp"))
    assert len(leftovers) == 1 and not (tmp_path / "cache.npz").exists()
    atomic_write(tmp_path / "other.npz", lambda h: h.write(b"ok"))
    assert not list(tmp_path.glob("*.tmp")) and not list(tmp_path.glob(".*.tmp"))


def test_unwritable_output_folder_is_one_paragraph(tmp_path, capsys):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    with pytest.raises(SystemExit) as info:
        check_writable(blocker / "run")
    assert info.value.code == 1
    err = capsys.readouterr().err
    assert str(blocker / "run") in err and "hydra.run.dir=" in err and "Traceback" not in err


def no_space(*args, **kwargs):
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


@pytest.mark.realdata
def test_disk_full_at_the_end_still_prints_the_metrics(tmp_path, lastfm_data_dir, monkeypatch, capsys):
    cfg = compose_config(
        [
            f"data_dir={lastfm_data_dir}",
            f"output_dir={tmp_path}",
            "dataset.max_users=100",
            "trainer.max_epochs=1",
            "trainer.progress=false",
            "device=cpu",
        ]
    )
    monkeypatch.setattr(outputs, "write_json", no_space)
    with pytest.raises(OutputError, match=f"metrics.json into the run folder {tmp_path}: No space left"):
        run(cfg)
    assert "NDCG@10" in capsys.readouterr().out  # the summary came first
    assert not (tmp_path / "metrics.json").exists() and not list(tmp_path.glob(".*.tmp"))


@pytest.mark.realdata
def test_disk_full_during_training_names_the_folder_and_how_to_resume(tmp_path, lastfm_data_dir, monkeypatch):
    cfg = compose_config(
        [
            f"data_dir={lastfm_data_dir}",
            f"output_dir={tmp_path}",
            "dataset.max_users=100",
            "trainer.max_epochs=2",
            "trainer.progress=false",
            "device=cpu",
        ]
    )
    monkeypatch.setattr(outputs, "write_csv", no_space)
    with pytest.raises(OutputError, match=rf"epochs.csv into the run folder .*resume={tmp_path}"):
        run(cfg)
    assert not (tmp_path / "metrics.json").exists()


def test_benchmark_file_cut_short_is_refused_naming_it(tmp_path, monkeypatch, shared_data):
    from seqrec.data.fetch import fetch_dataset
    from seqrec.errors import DataError

    full = (shared_data / "s3rec" / "LastFM.txt").read_bytes()
    cut = full[: len(full) // 2 + 7]  # mid-line, about half the users
    fake_shared = tmp_path / "shared"
    (fake_shared / "s3rec").mkdir(parents=True)
    (fake_shared / "s3rec" / "LastFM.txt").write_bytes(cut)
    monkeypatch.setenv("SEQREC_SHARED_DATA", str(fake_shared))
    cfg = compose_config(["dataset=lastfm"]).dataset
    data_dir = tmp_path / "data"
    with pytest.raises(
        DataError, match=r"LastFM.txt \(1\d\d,\d\d\d bytes\) is not the published benchmark file.*deleted"
    ):
        fetch_dataset(cfg, data_dir, extras=False)
    assert not (data_dir / "s3rec" / "LastFM.txt").exists()  # the bad copy is not kept

    # a copy in the data folder that was cut short later is refused on use, with the fix
    (data_dir / "s3rec").mkdir(parents=True, exist_ok=True)
    (data_dir / "s3rec" / "LastFM.txt").write_bytes(cut)
    with pytest.raises(DataError, match=r"rm .*LastFM.txt.* and run the same command again"):
        fetch_dataset(cfg, data_dir, extras=False)
    (data_dir / "s3rec" / "LastFM.txt").write_bytes(full)
    assert fetch_dataset(cfg, data_dir, extras=False) == [data_dir / "s3rec" / "LastFM.txt"]


def test_benchmark_config_on_the_users_own_file_points_to_custom_not_rm(tmp_path):
    from seqrec.data.fetch import fetch_dataset
    from seqrec.errors import DataError

    own = tmp_path / "mine" / "file.txt"
    own.parent.mkdir()
    own.write_text("u1 1 2 3 4\nu2 2 3 4 5\n")
    cfg = compose_config(["dataset=lastfm", f"dataset.path={own}"]).dataset
    with pytest.raises(DataError) as caught:
        fetch_dataset(cfg, tmp_path / "data", extras=False)
    message = str(caught.value)
    assert f"dataset=custom dataset.format=s3rec dataset.path={own} dataset.kcore=0" in message
    assert "dataset=lastfm" in message and "rm " not in message
    assert own.read_text() == "u1 1 2 3 4\nu2 2 3 4 5\n"


def test_torch_writer_failing_on_a_full_disk_is_an_output_error(tmp_path):
    """torch.save on a full disk raises RuntimeError('[enforce fail at inline_container.cc] …'),
    not OSError: it must still become the one-paragraph error, while other errors pass through."""
    writer = outputs.RunWriter(tmp_path)

    def full(path):
        raise RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos 1362752 vs 1362644")

    with pytest.raises(OutputError, match=r"last.pt into the run folder .*unexpected pos.*bytes free"):
        writer._write("last.pt", full)

    def bug(path):
        raise RuntimeError("shape mismatch")

    with pytest.raises(RuntimeError, match="shape mismatch"):
        writer._write("last.pt", bug)


def test_the_writer_of_other_ranks_has_every_method_of_the_run_output_with_the_same_signature():
    # a method added to RunWriter but not to NoWriter fails only under torchrun, on ranks > 0
    import inspect

    from seqrec.runs.outputs import NoWriter, RunOutput, RunWriter

    public = {name for name in vars(RunWriter) if not name.startswith("_")} | {"save_last", "load_best"}
    protocol = {name for name in vars(RunOutput) if not name.startswith("_") and callable(getattr(RunOutput, name))}
    assert protocol == public
    for name in protocol:
        assert inspect.signature(getattr(NoWriter, name)) == inspect.signature(getattr(RunOutput, name)), name
        assert inspect.signature(getattr(RunWriter, name)) == inspect.signature(getattr(RunOutput, name)), name


def test_the_summary_says_how_repeated_targets_were_ranked():
    from seqrec.runs.summary import repeat_treatment

    assert repeat_treatment({"mask_history": True, "rank_repeats": True}) == "ranked, not masked"
    assert repeat_treatment({"mask_history": True, "rank_repeats": False}) == "masked with the history: a miss"
    assert repeat_treatment({"mask_history": False, "rank_repeats": False}).startswith("ranked: the history is not")
    assert "eval.rank_repeats" in repeat_treatment({"mask_history": True})  # written before it was recorded
