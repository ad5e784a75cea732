"""End to end through ``seqrec.runs.pipeline.run`` — the function ``train.py`` calls — on a LastFM slice."""

import json
import subprocess
import sys

import pandas as pd
import pytest
import torch
from conftest import ROOT, compose_config

from seqrec.errors import SeqrecError
from seqrec.evaluation import METRICS
from seqrec.runs.pipeline import run

pytestmark = pytest.mark.realdata


def small_run(tmp_path, data_dir, *overrides):
    cfg = compose_config(
        [
            f"data_dir={data_dir}",
            f"output_dir={tmp_path}",
            "dataset.max_users=150",
            "trainer.max_epochs=2",
            "trainer.progress=false",
            "device=cpu",
            *overrides,
        ]
    )
    return cfg, run(cfg)


def test_two_epochs_write_every_output(tmp_path, lastfm_data_dir):
    cfg, metrics = small_run(tmp_path, lastfm_data_dir)
    written = json.loads((tmp_path / "metrics.json").read_text())
    assert written == metrics
    for split in ("valid", "test"):
        for name in METRICS:
            assert 0.0 <= written[f"{split}/{name}"] <= 1.0
    assert (written["dataset"], written["model"], written["loss"], written["seed"]) == ("lastfm", "sasrec", "cce", 42)
    assert written["epochs_run"] == 2 and written["best_epoch"] in (1, 2) and written["seconds_per_epoch"] > 0
    # how repeated targets were ranked is recorded, so the summary and the leaderboard can say it
    assert (written["mask_history"], written["rank_repeats"]) == (cfg.eval.mask_history, cfg.eval.rank_repeats)

    epochs = pd.read_csv(tmp_path / "epochs.csv")
    assert list(epochs["epoch"]) == [1, 2]
    assert {"train_loss", "valid/ndcg@20", "epoch_seconds", "train_seconds_cum"} <= set(epochs.columns)
    assert "test/ndcg@10" not in epochs.columns  # test data is touched only by the selected state

    per_user = pd.read_csv(tmp_path / "per_user_test.csv", dtype={"user_id": str})
    assert len(per_user) == written["n_users"] == 150
    assert per_user["user_id"].is_unique
    assert per_user["ndcg@10"].mean() == pytest.approx(written["test/ndcg@10"])

    # the checkpoint reproduces the test metrics of the selected state
    ckpt = torch.load(tmp_path / "best.pt", weights_only=False)
    assert ckpt["epoch"] == written["best_epoch"]
    assert set(ckpt) >= {"model", "optimizer", "epoch", "best_metric", "config"}
    config_text = (tmp_path / "config.yaml").read_text()
    assert "max_users: 150" in config_text and "${" not in config_text  # resolved


def test_same_seed_same_numbers_other_seed_other_numbers(tmp_path, lastfm_data_dir):
    _, a = small_run(tmp_path / "a", lastfm_data_dir, "loss=bce", "model=gru4rec", "trainer.max_epochs=1")
    _, b = small_run(tmp_path / "b", lastfm_data_dir, "loss=bce", "model=gru4rec", "trainer.max_epochs=1")
    _, c = small_run(tmp_path / "c", lastfm_data_dir, "loss=bce", "model=gru4rec", "trainer.max_epochs=1", "seed=7")
    assert all(a[f"test/{m}"] == b[f"test/{m}"] for m in METRICS)
    assert (tmp_path / "a" / "epochs.csv").read_text().split("\n")[1].split(",")[1] == (
        tmp_path / "b" / "epochs.csv"
    ).read_text().split("\n")[1].split(",")[1]  # same train loss
    assert (
        pd.read_csv(tmp_path / "a" / "epochs.csv")["train_loss"][0]
        != pd.read_csv(tmp_path / "c" / "epochs.csv")["train_loss"][0]
    )


@pytest.mark.parametrize("model,loss", [("gru4rec", "ce"), ("sasrec", "bce")])
def test_other_models_and_losses_run(tmp_path, lastfm_data_dir, model, loss):
    _, metrics = small_run(tmp_path, lastfm_data_dir, f"model={model}", f"loss={loss}", "trainer.max_epochs=1")
    assert (metrics["model"], metrics["loss"]) == (model, loss)


def test_missing_data_file_is_a_clear_error_and_no_result(tmp_path, monkeypatch):
    monkeypatch.setenv("SEQREC_SHARED_DATA", str(tmp_path / "nowhere"))
    cfg = compose_config(
        [
            f"data_dir={tmp_path / 'data'}",
            f"output_dir={tmp_path / 'out'}",
            "dataset.path=s3rec/Missing.txt",
            "dataset.url=http://127.0.0.1:9/Missing.txt",
            "trainer.progress=false",
        ]
    )
    with pytest.raises(SeqrecError, match="Missing.txt"):
        run(cfg)
    assert not (tmp_path / "out" / "metrics.json").exists()


@pytest.mark.slow
def test_train_py_entry_point_and_exit_codes(tmp_path, lastfm_data_dir):
    base = [
        sys.executable,
        str(ROOT / "train.py"),
        f"data_dir={lastfm_data_dir}",
        f"hydra.run.dir={tmp_path / 'run'}",
        "dataset.max_users=80",
        "trainer.max_epochs=1",
        "device=cpu",
    ]
    ok = subprocess.run(base, capture_output=True, text=True, cwd=tmp_path, timeout=300)
    assert ok.returncode == 0, ok.stderr
    assert "NDCG@10" in ok.stdout and (tmp_path / "run" / "metrics.json").exists()

    bad_option = subprocess.run(base + ["model=sasrecc"], capture_output=True, text=True, cwd=tmp_path, timeout=300)
    assert bad_option.returncode != 0 and "sasrecc" in bad_option.stderr and "sasrec" in bad_option.stderr

    bad_data = subprocess.run(
        base[:2]
        + [
            f"data_dir={tmp_path / 'empty'}",
            "dataset.path=s3rec/Nope.txt",
            "dataset.url=http://127.0.0.1:9/Nope.txt",
            f"hydra.run.dir={tmp_path / 'bad'}",
        ],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=300,
        env={"SEQREC_SHARED_DATA": str(tmp_path / "none"), "PATH": ""},
    )
    assert bad_data.returncode == 1
    assert "Nope.txt" in bad_data.stderr and "Traceback" not in bad_data.stderr
    assert not (tmp_path / "bad" / "metrics.json").exists()

    # a bad config value: one paragraph, exit 1, and Hydra's run folder removed again
    bad_value = subprocess.run(
        base[:2] + ["eval.mask_history=no", f"hydra.run.dir={tmp_path / 'badvalue'}"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=300,
    )
    assert bad_value.returncode == 1 and "Traceback" not in bad_value.stderr
    assert "eval.mask_history='no' is not valid: it must be true or false" in " ".join(bad_value.stderr.split())
    assert not (tmp_path / "badvalue").exists()

    # the same in a sweep (-m): every job runs, the failed jobs' folders are removed too, and the sweep
    # ends with one summary naming each failed job and exit 1 (not Hydra's traceback of the first)
    sweep = subprocess.run(
        base[:2] + ["-m", "eval.mask_history=no,maybe", f"hydra.sweep.dir={tmp_path / 'badsweep'}"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=300,
    )
    stderr = " ".join(sweep.stderr.split())
    assert sweep.returncode == 1 and "Traceback" not in stderr, stderr
    assert "eval.mask_history='no' is not valid" in stderr and "eval.mask_history='maybe' is not valid" in stderr
    assert "2 job(s) of the sweep failed" in stderr and "#0 eval.mask_history=no" in stderr
    assert "#1 eval.mask_history=maybe" in stderr
    assert [p.name for p in (tmp_path / "badsweep").iterdir()] == ["multirun.yaml"]


@pytest.mark.parametrize(
    "override,message",
    [
        (
            "model=null",
            "the config group `model` takes one of its options "
            "(bsarec, bsarec_causal, gru4rec, s3rec, sasrec), not null",
        ),
        ("hparams_search=null", "`hparams_search` is off by default; leave it out"),
        ("experiment=NULL", "`experiment` is off by default; leave it out"),
        # a file name Hydra's grammar cannot read unquoted: the fix, not "mismatched input"
        (
            "dataset.path=ratings (1).csv",
            """Hydra cannot read this override (mismatched input '.' expecting <EOF>). In a value it reads """
            """spaces, ( ) [ ] { } , = and quotes as syntax; quote the value inside the argument, e.g. """
            """'dataset.path="ratings (1).csv"'""",
        ),
    ],
)
def test_a_null_group_or_unreadable_override_is_one_paragraph_not_hydras_traceback(tmp_path, override, message):
    run = subprocess.run(
        [sys.executable, str(ROOT / "train.py"), override, f"hydra.run.dir={tmp_path / 'run'}"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=300,
    )
    assert run.returncode == 1 and "Traceback" not in run.stderr
    assert message in " ".join(run.stderr.split()) and not (tmp_path / "run").exists()


@pytest.mark.parametrize(
    "override,message",
    [
        ("seed=abc", "seed='abc' is not valid: it must be a whole number"),
        ("loss.chunk_size=-3", "loss.chunk_size=-3 is not valid"),
        ("trainer.max_epochs=0", "trainer.max_epochs=0 is not valid: it must be a whole number >= 1"),
        ("eval.batch_size=many", "eval.batch_size='many' is not valid: it must be auto or a whole number >= 1"),
        ("+max_epochs=5", "unknown option max_epochs: .*Did you mean trainer.max_epochs\\?"),
        ("+dataset.user_column=u", "unknown option dataset.user_column: .*Did you mean dataset.user_col\\?"),
        ("+trainer.max_epoch=2", "unknown option trainer.max_epoch: .*Did you mean trainer.max_epochs\\?"),
        ("optimizer.lr=-1", "invalid optimizer.lr=-1, .*: Invalid learning rate: -1 \\(refused by torch.optim"),
    ],
)
def test_bad_options_are_clear_errors_and_leave_no_files(tmp_path, lastfm_data_dir, override, message):
    with pytest.raises(SeqrecError, match=message):
        small_run(tmp_path / "out", lastfm_data_dir, override)
    assert not (tmp_path / "out" / "config.yaml").exists() and not (tmp_path / "out" / "metrics.json").exists()


def test_error_messages_keep_square_brackets(capsys):
    from seqrec.runs.cli import report_errors

    with pytest.raises(SystemExit) as exit_info, report_errors():
        raise SeqrecError('the file /tmp/[b]dir/x.json must look like {"1": [3, 4]}')
    assert exit_info.value.code == 1
    assert '/tmp/[b]dir/x.json must look like {"1": [3, 4]}' in capsys.readouterr().err.replace("\n", "")


@pytest.mark.parametrize("model", ["sasrec", "gru4rec"])
def test_untied_output_table_runs_end_to_end(tmp_path, lastfm_data_dir, model):
    cfg, metrics = small_run(
        tmp_path, lastfm_data_dir, f"model={model}", "model.tie_output=false", "loss=bce", "trainer.max_epochs=1"
    )
    state = torch.load(tmp_path / "best.pt", weights_only=False)["model"]
    assert state["output_emb"].shape == (metrics["n_items"], state["item_emb.weight"].shape[1])
    assert 0.0 <= metrics["test/ndcg@10"] <= 1.0


def test_a_repeated_target_is_ranked_not_masked(tmp_path):
    """Every row twice: each test item repeats the validation item, which is in the test history.
    The history is masked but the target never is, so the target gets a real rank (not a miss by
    construction), and metrics.json records the share of repeated targets."""
    rows = [f"u{u},i{(u * 7 + t) % 40},{t}" for u in range(30) for t in range(8)]
    log = tmp_path / "log.csv"
    log.write_text("user_id,item_id,timestamp\n" + "\n".join(r for r in rows for _ in (0, 1)) + "\n")
    cfg = compose_config(
        [
            f"data_dir={tmp_path / 'data'}",
            f"output_dir={tmp_path / 'run'}",
            "dataset=custom",
            f"dataset.path={log}",
            "dataset.kcore=0",
            "trainer.max_epochs=1",
            "trainer.progress=false",
            "device=cpu",
        ]
    )
    metrics = run(cfg)
    # …, x, x: the test item repeats the validation item; the validation item is new
    assert metrics["test/repeat_share"] == 1.0 and metrics["valid/repeat_share"] == 0.0
    ranks = pd.read_csv(tmp_path / "run" / "per_user_test.csv")["rank"]
    # 8 distinct items in each history, 7 of them masked: a target ranks among the 40 - 7 left
    assert ranks.max() <= 40 - 7 and metrics["test/hr@20"] > 0.0

    # the same log without the repeats: no repeated target
    log.write_text("user_id,item_id,timestamp\n" + "\n".join(rows) + "\n")
    cfg.output_dir = str(tmp_path / "run2")
    assert run(cfg)["test/repeat_share"] == 0.0


def test_tf32_is_the_runs_option_set_either_way(tmp_path, lastfm_data_dir):
    # a CUDA run's matmul precision is its recorded option, not what an earlier run in the process left
    from seqrec.runs.pipeline import build

    before = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    try:
        for value in (False, True, False):
            cfg = compose_config([f"data_dir={lastfm_data_dir}", f"output_dir={tmp_path}", "dataset.max_users=50",
                                  "device=cpu", f"tf32={str(value).lower()}"])  # fmt: skip
            build(cfg)
            assert torch.backends.cuda.matmul.allow_tf32 is value and torch.backends.cudnn.allow_tf32 is value
        assert compose_config([]).tf32 is True
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = before


def test_a_launcher_whose_plugin_is_missing_names_the_install_command(monkeypatch, capsys):
    from seqrec.runs import cli

    monkeypatch.setitem(cli.LAUNCHER_PLUGINS, "joblib", ("hydra_plugins.no_such_launcher", "hydra-joblib-launcher"))
    for arg in ("hydra/launcher=local", "hydra/launcher=joblib"):  # seqrec's config, or the plugin's own
        with pytest.raises(SystemExit) as stop:
            cli.check_launcher(["-m", arg, "seed=1"], ROOT / "conf")
        assert stop.value.code == 1
        err = capsys.readouterr().err
        assert f"`{arg}` needs the Hydra plugin hydra-joblib-launcher" in err and "make install-sweep" in err
    monkeypatch.setitem(cli.LAUNCHER_PLUGINS, "joblib", ("hydra_plugins", "hydra-joblib-launcher"))  # installed
    cli.check_launcher(["-m", "hydra/launcher=local"], ROOT / "conf")
    cli.check_launcher(["-m", "hydra/launcher=basic", "seed=1"], ROOT / "conf")  # Hydra's own: nothing to check


def test_two_sweeps_started_in_the_same_second_get_folders_of_their_own():
    # a one-second timestamp put two sweeps into one folder (one job refused, multirun.yaml of the other)
    import re

    from conftest import CONF
    from hydra import compose, initialize_config_dir
    from omegaconf import OmegaConf

    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        dirs = {OmegaConf.select(compose(config_name="config", return_hydra_config=True), "hydra.sweep.dir")
                for _ in range(2)}  # fmt: skip
    assert len(dirs) == 2 and all(re.fullmatch(r"outputs/multirun/\d{8}-\d{6}-\d{6}", d) for d in dirs)


@pytest.mark.parametrize("search_trial", [False, True])
def test_a_stopped_search_trial_says_to_run_the_search_again(tmp_path, capsys, search_trial):
    from seqrec.errors import RunInterrupted
    from seqrec.runs.cli import report_errors

    search = str(tmp_path / "search-20261206-101010-123456")  # a timestamped folder: the same command would not find it
    with pytest.raises(SystemExit) as stop:
        with report_errors(keep_going=True, search_dir=search if search_trial else None):
            raise RunInterrupted(15, tmp_path / "trial3")
    assert stop.value.code == 128 + 15
    err = " ".join(capsys.readouterr().err.split())
    assert f"Continue with: python train.py resume={tmp_path / 'trial3'}" in err
    assert (f"run the search's command again with hydra.sweep.dir={search} instead" in err) is search_trial


def test_a_finished_run_is_rebuilt_with_its_recorded_tf32(tmp_path):
    from conftest import tiny_config

    from seqrec.runs.rundir import read_run

    before = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    try:
        out = tmp_path / "run"
        run(tiny_config(tmp_path, out, "trainer.max_epochs=1", "tf32=false"))
        torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = True  # another run's setting
        read_run(out).build_model()
        assert torch.backends.cuda.matmul.allow_tf32 is False and torch.backends.cudnn.allow_tf32 is False
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = before
