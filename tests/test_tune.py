"""Hyperparameter search (``hparams_search=…``, :mod:`seqrec.tune.search`) and its report
(``python -m seqrec.tune``): continued searches, failed trials, the best configuration, the rerun
comparison."""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import subprocess
import sys
import warnings
from pathlib import Path

import pandas as pd
import pytest
import yaml
from conftest import ROOT
from scipy import stats

optuna = pytest.importorskip("optuna", reason="the tune extra is not installed (make install-tune)")

from seqrec.errors import ConfigError, SeqrecError  # noqa: E402
from seqrec.tune import best_trial, experiment_yaml, parse_value, trial_overrides  # noqa: E402
from seqrec.tune.trials import TrialRuns, continue_study  # noqa: E402

# a search small enough for a test: 60 LastFM users, 2 epochs, 2 searched parameters
TINY = [
    "dataset.max_users=60",
    "trainer.max_epochs=2",
    "num_threads=1",
    "trainer.progress=false",
    "hydra.sweeper.params=null",
    "optimizer.lr=tag(log, interval(0.0001, 0.01))",
    "model.dropout=interval(0.0, 0.7)",
]


def _search(data_dir: Path, sweep_dir: Path, n_trials: int, *extra: str) -> subprocess.CompletedProcess:
    cmd = [
        sys.executable,
        str(ROOT / "train.py"),
        "-m",
        "hparams_search=lastfm_sasrec_cce",
        f"data_dir={data_dir}",
        f"hydra.sweep.dir={sweep_dir}",
        f"hydra.sweeper.n_trials={n_trials}",
        *TINY,
        *extra,
    ]
    return subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, timeout=600)


def _study(sweep_dir: Path):
    return optuna.load_study(study_name="lastfm_sasrec_cce", storage=f"sqlite:///{sweep_dir}/study.db")


def test_continue_study_fails_interrupted_trials_and_queues_their_parameters():
    study = optuna.create_study(direction="maximize")
    dist = optuna.distributions.FloatDistribution(0.0, 1.0)
    for state, value in (("COMPLETE", 0.5), ("FAIL", None)):
        t = study.ask({"x": dist})
        study.tell(t, value, state=getattr(optuna.trial.TrialState, state))
    running = study.ask({"x": dist})  # the search stopped while this trial ran
    x = running.params["x"]

    finished, next_number = continue_study(study)

    assert (finished, next_number) == (2, 3)  # the interrupted trial does not count
    states = [t.state.name for t in study.get_trials()]
    assert states == ["COMPLETE", "FAIL", "FAIL", "WAITING"]
    retry = study.ask({"x": dist})
    assert retry.number == 3 and retry.params["x"] == x


def _run_folder(sweep: Path, name: str, num: int, metrics: dict | None) -> Path:
    folder = sweep / name
    (folder / ".hydra").mkdir(parents=True)
    (folder / ".hydra" / "hydra.yaml").write_text(yaml.safe_dump({"hydra": {"job": {"num": num}}}))
    if metrics is not None:
        (folder / "metrics.json").write_text(json.dumps(metrics))
    return folder


def test_interrupted_trials_whose_run_finished_are_recorded_from_metrics_json(tmp_path):
    study = optuna.create_study(direction="maximize")
    dist = optuna.distributions.FloatDistribution(0.0, 1.0)
    done = study.ask({"x": dist})
    study.tell(done, 0.01)
    study.ask({"x": dist})  # trial 1: its run wrote metrics.json, then the search was killed
    unfinished = study.ask({"x": dist})  # killed mid-run: no metrics.json
    study.ask({"x": dist})  # trial 3: its folder holds an older search's finished run
    x_unfinished = unfinished.params["x"]
    monitor = {"monitor": "valid/ndcg@20", "valid/ndcg@20": 0.0636, "valid/ndcg@10": 0.9}
    _run_folder(tmp_path, "trial0", 0, monitor)
    _run_folder(tmp_path, "trial1", 1, monitor)
    _run_folder(tmp_path, "trial2", 2, None)
    old = _run_folder(tmp_path, "trial3", 3, monitor) / "metrics.json"
    start = study.trials[3].datetime_start.timestamp()
    os.utime(old, (start - 3600, start - 3600))

    finished, next_number = continue_study(study, TrialRuns(tmp_path))

    assert [t.state.name for t in study.get_trials()] == ["COMPLETE", "COMPLETE", "FAIL", "FAIL", "WAITING", "WAITING"]
    assert study.trials[1].value == pytest.approx(0.0636)  # the monitored metric, not another one
    assert (finished, next_number) == (2, 4)
    assert study.ask({"x": dist}).params["x"] == x_unfinished


def test_finished_runs_ignores_folders_that_are_not_trial_runs(tmp_path):
    study = optuna.create_study(direction="maximize")
    trial = study.ask({"x": optuna.distributions.FloatDistribution(0.0, 1.0)})
    (tmp_path / "best" / ".hydra").mkdir(parents=True)
    (tmp_path / "best" / ".hydra" / "hydra.yaml").write_text("not: [valid")
    _run_folder(tmp_path, "trial0", 0, {"monitor": "valid/ndcg@20", "valid/ndcg@20": float("nan")})
    frozen = study.trials[trial.number]
    assert TrialRuns(tmp_path).value(frozen) is None  # a diverged run's NaN is no objective
    assert TrialRuns(tmp_path / "missing").value(frozen) is None


def test_an_interrupted_run_is_handed_to_its_queued_trial(tmp_path):
    study = optuna.create_study(direction="maximize")
    dist = optuna.distributions.FloatDistribution(0.0, 1.0)
    study.tell(study.ask({"x": dist}), 0.01)
    study.ask({"x": dist})  # trial 1: stopped mid-run, its last.pt saved
    study.ask({"x": dist})  # trial 2: stopped before its first epoch ended (no last.pt)
    (_run_folder(tmp_path, "trial1", 1, None) / "last.pt").write_bytes(b"state")
    _run_folder(tmp_path, "trial2", 2, None)

    continue_study(study, TrialRuns(tmp_path, lambda number: f"trial{number}"))

    # trial 1 is re-queued as trial 3, which continues in trial3/ from the moved last.pt
    assert (tmp_path / "trial3" / "last.pt").read_bytes() == b"state" and not (tmp_path / "trial1").exists()
    assert (tmp_path / "trial2").exists() and not (tmp_path / "trial4").exists()  # nothing to continue
    assert [t.state.name for t in study.get_trials()] == ["COMPLETE", "FAIL", "FAIL", "WAITING", "WAITING"]


def test_parse_value_reads_numbers_as_hydra_does():
    assert parse_value("1e-06") == 1e-6 and isinstance(parse_value("1e-06"), float)
    assert parse_value("128") == 128 and isinstance(parse_value("128"), int)
    assert parse_value("0.5") == 0.5
    assert parse_value("true") is True and parse_value("null") is None
    assert parse_value("lastfm") == "lastfm"


def test_best_trial_is_the_highest_complete_objective():
    trials = pd.DataFrame(
        {
            "number": [0, 1, 2, 3],
            "state": ["COMPLETE", "FAIL", "COMPLETE", "COMPLETE"],
            "value": [0.02, math.nan, 0.05, 0.05],
        }
    )
    assert best_trial(trials)["number"] == 2  # highest value; the first on a tie
    with pytest.raises(SeqrecError, match="No complete trial"):
        best_trial(trials.assign(state="FAIL", value=math.nan))


def test_experiment_yaml_nests_overrides_under_group_choices(tmp_path):
    hydra_dir = tmp_path / "trial3" / ".hydra"
    hydra_dir.mkdir(parents=True)
    (hydra_dir / "hydra.yaml").write_text(
        yaml.safe_dump(
            {
                "hydra": {
                    "runtime": {
                        "choices": {
                            "dataset": "lastfm",
                            "model": "sasrec",
                            "loss": "cce",
                            "optimizer": "adam",
                            "hparams_search": "lastfm_sasrec_cce",
                            "hydra/sweeper": "seqrec_optuna",
                        }
                    },
                    "overrides": {
                        "task": [
                            "optimizer.lr=0.0021",
                            "model.dropout=0.25",
                            "optimizer.weight_decay=1e-06",
                            "hparams_search=lastfm_sasrec_cce",
                            "num_threads=1",
                            "trainer.max_epochs=40",
                        ]
                    },
                }
            }
        )
    )
    choices, overrides = trial_overrides(tmp_path / "trial3")
    assert choices == {"dataset": "lastfm", "model": "sasrec", "loss": "cce", "optimizer": "adam"}
    assert overrides == {
        "optimizer.lr": 0.0021,
        "model.dropout": 0.25,
        "optimizer.weight_decay": 1e-6,
        "trainer.max_epochs": 40,
    }
    text = experiment_yaml(choices, overrides, "header")
    parsed = yaml.safe_load(text)
    assert parsed["defaults"] == [
        {"override /dataset": "lastfm"},
        {"override /model": "sasrec"},
        {"override /loss": "cce"},
        {"override /optimizer": "adam"},
    ]
    assert parsed["optimizer"] == {"lr": 0.0021, "weight_decay": 1e-6}
    assert parsed["model"] == {"dropout": 0.25} and parsed["trainer"] == {"max_epochs": 40}


def _one_trial_study(folder: Path, value: float = 0.05) -> None:
    """``folder/study.db`` with one complete trial and no trial folder."""
    folder.mkdir(parents=True, exist_ok=True)
    study = optuna.create_study(study_name="s", storage=f"sqlite:///{folder}/study.db", direction="maximize")
    with warnings.catch_warnings():  # add_trial and create_trial are "experimental" in optuna 2.x
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        study.add_trial(
            optuna.trial.create_trial(
                params={"optimizer.lr": 1e-3},
                value=value,
                distributions={"optimizer.lr": optuna.distributions.FloatDistribution(1e-4, 1e-2, log=True)},
            )
        )


def _tables(db: Path) -> set:
    import sqlite3

    con = sqlite3.connect(db)
    try:
        return {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    finally:
        con.close()


def _study_file(db: Path, content: bytes | None) -> bytes:
    """Write ``content`` to ``db`` (None: another program's SQLite file, one table ``notes``);
    returns its bytes."""
    if content is None:
        import sqlite3

        con = sqlite3.connect(db)
        con.execute("CREATE TABLE notes (x)")
        con.commit()
        con.close()
    else:
        db.write_bytes(content)
    return db.read_bytes()


@pytest.mark.parametrize(
    "content, message",
    [
        (b"", "is empty"),
        (b"not sqlite at all\n", "is not an SQLite database"),
        (None, "not an Optuna study storage"),  # another program's SQLite file
    ],
)
def test_the_report_refuses_a_study_file_that_is_not_an_optuna_storage_and_leaves_it_as_it_was(
    tmp_path, content, message
):
    from seqrec.tune import load_study

    db = tmp_path / "study.db"
    before = _study_file(db, content)
    with pytest.raises(SeqrecError, match=message):
        load_study(tmp_path)
    assert db.read_bytes() == before  # Optuna did not add its tables
    with pytest.raises(SeqrecError, match="pass its folder"):
        load_study(db)


def test_the_report_of_a_search_with_no_study_or_no_trial_says_so(tmp_path):
    from seqrec.tune import load_study, trials_table

    storage = f"sqlite:///{tmp_path}/study.db"
    optuna.create_study(study_name="s", storage=storage)
    empty = trials_table(load_study(tmp_path), tmp_path)  # stopped before its first trial
    assert len(empty) == 0 and {"number", "state", "value", "run_dir"} <= set(empty.columns)
    with pytest.raises(SeqrecError, match=r"No complete trial in this search \(0 trials"):
        best_trial(empty)
    optuna.delete_study(study_name="s", storage=storage)
    assert "studies" in _tables(tmp_path / "study.db")
    with pytest.raises(SeqrecError, match="holds no study"):
        load_study(tmp_path)


@pytest.mark.parametrize(
    "args, message",
    [
        ([], "Cannot read the trial's Hydra record"),  # the best trial's folder is missing
        (["--name", "../elsewhere"], "--name '../elsewhere'"),
    ],
)
def test_the_report_checks_its_inputs_before_it_writes_anything(tmp_path, args, message):
    from seqrec.tune.__main__ import main

    search = tmp_path / "search"
    _one_trial_study(search)
    conf = tmp_path / "conf" / "experiment"
    with pytest.raises(SeqrecError, match=message):
        main([str(search), "--no-rerun", "--conf-dir", str(conf), *args])
    assert sorted(p.name for p in search.iterdir()) == ["study.db"] and not conf.exists()


def test_one_rerun_seed_names_both_ways_out(tmp_path):
    from seqrec.tune.__main__ import main

    _one_trial_study(tmp_path / "search")
    with pytest.raises(SeqrecError, match=r"Give 2 or more, or --no-rerun \(make: TUNE_ARGS=--no-rerun\)"):
        main([str(tmp_path / "search"), "--seeds", "1", "--conf-dir", str(tmp_path / "conf" / "experiment")])


def test_the_report_refuses_a_conf_dir_whose_config_name_conf_experiment_shadows(tmp_path, monkeypatch):
    # Hydra reads conf/experiment/<name>.yaml before the --conf-dir copy: the reruns would train it
    from seqrec.tune import __main__ as report

    monkeypatch.chdir(ROOT)
    monkeypatch.setattr(report, "rerun", lambda *a, **k: pytest.fail("the report reran the shadowed config"))
    search = tmp_path / "search"
    _one_trial_study(search)
    hydra_dir = search / "trial0" / ".hydra"
    hydra_dir.mkdir(parents=True)
    (hydra_dir / "hydra.yaml").write_text(
        yaml.safe_dump(
            {
                "hydra": {
                    "runtime": {
                        "choices": {"dataset": "lastfm", "model": "sasrec", "loss": "cce", "optimizer": "adam"}
                    },
                    "overrides": {"task": ["optimizer.lr=0.001"]},
                }
            }
        )
    )
    shadowing = sorted(p.stem for p in (ROOT / "conf" / "experiment").glob("*.yaml"))[0]
    conf = tmp_path / "conf" / "experiment"
    with pytest.raises(SeqrecError, match=f"the reruns would train conf/experiment/{shadowing}.yaml"):
        report.main([str(search), "--conf-dir", str(conf), "--name", shadowing])
    assert sorted(p.name for p in search.iterdir()) == ["study.db", "trial0"] and not conf.exists()


def test_a_rerun_needs_a_conf_dir_named_experiment(tmp_path):
    from seqrec.tune.__main__ import main

    _one_trial_study(tmp_path / "search")
    with pytest.raises(SeqrecError, match="must be named experiment"):
        main([str(tmp_path / "search"), "--conf-dir", str(tmp_path / "configs")])
    assert sorted(p.name for p in (tmp_path / "search").iterdir()) == ["study.db"]


@pytest.mark.parametrize(
    "override, message",
    [
        ("hydra.sweeper.n_trials=0", "hydra.sweeper.n_trials=0: it must be a whole number ≥ 1"),
        ("hydra.sweeper.n_jobs=0", "hydra.sweeper.n_jobs=0: it must be a whole number ≥ 1"),
        ("hydra.sweeper.direction=minimize", "a search must maximize it"),
        (
            "optimizer.lr=interval(0.01, 0.001)",
            "search parameter `optimizer.lr=interval(0.01, 0.001)`: ",
        ),
        ("optimizer.lr=tag(log, interval(0, 0.01))", "search parameter `optimizer.lr=tag(log, interval(0, 0.01))`: "),
        ("model.hiden_size=choice(32, 64)", "search parameter model.hiden_size=32: the config cannot be composed"),
        ("model=choice(sasrec, nope)", "search parameter model=nope: the config cannot be composed"),
        ("trainer.monitor=test/ndcg@10", "the search's fixed settings: trainer.monitor='test/ndcg@10' is not valid"),
    ],
    ids=["n_trials", "n_jobs", "direction", "low>high", "log0", "typo", "group-option", "test-monitor"],
)
def test_a_search_that_cannot_run_right_is_refused_before_any_trial(lastfm_data_dir, tmp_path, override, message):
    run = _search(lastfm_data_dir, tmp_path / "search", 2, override)
    assert run.returncode == 1 and message in run.stderr, run.stderr[-2000:]
    assert "Traceback" not in run.stderr and not (tmp_path / "search").exists()  # no study, no trial


@pytest.mark.parametrize("content", [b"junk\n", None], ids=["text", "foreign-sqlite"])
def test_a_search_does_not_write_into_a_study_db_that_is_not_optunas(lastfm_data_dir, tmp_path, content):
    db = tmp_path / "search" / "study.db"
    db.parent.mkdir()
    before = _study_file(db, content)
    run = _search(lastfm_data_dir, tmp_path / "search", 1)
    assert run.returncode == 1 and "Run the search in another folder" in run.stderr and "Traceback" not in run.stderr
    assert db.read_bytes() == before and sorted(p.name for p in db.parent.iterdir()) == ["study.db"]


def test_a_second_search_process_on_the_same_folder_is_refused_and_leaves_the_study_alone(lastfm_data_dir, tmp_path):
    # it would take the first one's running trials for interrupted ones and mark them failed
    from seqrec.locks import SEARCH_LOCK, exclusive

    sweep = tmp_path / "search"
    sweep.mkdir()
    with exclusive(sweep / SEARCH_LOCK):
        run = _search(lastfm_data_dir, sweep, 1)
    assert run.returncode == 1 and "is in use by another run" in run.stderr and "Traceback" not in run.stderr
    assert sorted(p.name for p in sweep.iterdir()) == [SEARCH_LOCK]  # no study.db, no trial


def test_a_search_under_torchrun_is_refused_before_the_study_exists(lastfm_data_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("WORLD_SIZE", "2")
    run = _search(lastfm_data_dir, tmp_path / "search", 1)
    assert run.returncode == 1 and "does not run under torchrun" in run.stderr and "Traceback" not in run.stderr
    assert not (tmp_path / "search").exists()


def test_the_sweeper_without_a_preset_names_its_study():
    # hydra/sweeper=seqrec_optuna with the space on the command line: no hparams_search choice to name it
    import yaml
    from omegaconf import OmegaConf

    import seqrec  # noqa: F401 - registers the seqrec.* resolvers

    name = yaml.safe_load((ROOT / "conf/hydra/sweeper/seqrec_optuna.yaml").read_text())["study_name"]
    for choice, expected in ((None, "search"), ("lastfm_sasrec_cce", "lastfm_sasrec_cce")):
        hydra = {"runtime": {"choices": {"hparams_search": choice}}, "sweeper": {"study_name": name}}
        cfg = OmegaConf.create({"hydra": hydra})
        assert cfg.hydra.sweeper.study_name == expected


def test_search_signature_leaves_out_runtime_settings_and_names_what_changed():
    from seqrec.tune.storage import search_signature, signature_differences

    space = {"optimizer.lr": optuna.distributions.FloatDistribution(1e-4, 1e-2, log=True)}
    a = search_signature(space, {"hparams_search": "x", "num_threads": "1", "trainer.max_epochs": "40"})
    b = search_signature(
        space, {"hparams_search": "x", "num_threads": "4", "trainer.progress": "false", "trainer.max_epochs": "40"}
    )
    assert a == b and a["fixed"] == {"hparams_search": "x", "trainer.max_epochs": "40"}
    c = search_signature(
        {"optimizer.lr": optuna.distributions.FloatDistribution(1e-4, 1e-3, log=True)},
        {"hparams_search": "x", "trainer.max_epochs": "20"},
    )
    assert signature_differences(a, c) == [
        "parameter optimizer.lr: FloatDistribution(high=0.01, log=True, low=0.0001, step=None) → "
        "FloatDistribution(high=0.001, log=True, low=0.0001, step=None)",
        "setting trainer.max_epochs: 40 → 20",
    ]


@pytest.mark.slow
def test_search_continues_to_n_trials_and_the_report_reruns_the_best(lastfm_data_dir, tmp_path):
    sweep = tmp_path / "search"
    first = _search(lastfm_data_dir, sweep, 2)
    assert first.returncode == 0, first.stderr[-3000:]
    again = _search(lastfm_data_dir, sweep, 3)  # n_trials is the whole search: one more trial
    assert again.returncode == 0, again.stderr[-3000:]
    assert "2 of 3 trials finished, 1 to go" in again.stderr + again.stdout
    study = _study(sweep)
    assert [t.state.name for t in study.trials] == ["COMPLETE"] * 3
    assert sorted(p.name for p in sweep.glob("trial*")) == ["trial0", "trial1", "trial2"]
    for t in study.trials:  # folder N holds trial N: its parameters and its objective
        task = yaml.safe_load((sweep / f"trial{t.number}" / ".hydra" / "overrides.yaml").read_text())
        assert f"optimizer.lr={t.params['optimizer.lr']}" in task
        metrics = json.loads((sweep / f"trial{t.number}" / "metrics.json").read_text())
        assert t.value == pytest.approx(metrics["valid/ndcg@20"])
    done = _search(lastfm_data_dir, sweep, 3, "num_threads=2")  # threads are no part of the search
    assert done.returncode == 0 and len(_study(sweep).trials) == 3  # complete: nothing re-run
    other = _search(lastfm_data_dir, sweep, 4, "model.hidden_size=64")  # another search, same folder
    assert other.returncode == 1 and "setting model.hidden_size: (not set) → 64" in other.stderr
    assert len(_study(sweep).trials) == 3

    conf = tmp_path / "conf" / "experiment"

    def tune_report(*extra):
        return subprocess.run(
            [
                sys.executable,
                "-m",
                "seqrec.tune",
                str(sweep),
                "--seeds",
                "2",
                "--conf-dir",
                str(conf),
                "--train-args",
                f"data_dir={lastfm_data_dir} num_threads=1",
                *extra,
            ],
            capture_output=True,
            text=True,
            cwd=ROOT,
            timeout=600,
        )

    # conf/experiment/lastfm_sasrec_cce_best.yaml (the real search's) would shadow the written file
    shadowed = tune_report()
    assert shadowed.returncode == 1 and "--name" in shadowed.stderr and not (sweep / "best").exists()
    report = tune_report("--name", "tiny_search_best")
    assert report.returncode == 0, report.stderr[-3000:]
    best = max(study.trials, key=lambda t: t.value)
    written = yaml.safe_load((conf / "tiny_search_best.yaml").read_text())
    assert written["optimizer"]["lr"] == pytest.approx(best.params["optimizer.lr"])
    assert written["model"]["dropout"] == pytest.approx(best.params["model.dropout"])
    assert written["dataset"]["max_users"] == 60 and written["trainer"]["max_epochs"] == 2
    for seed in (42, 43):  # the rerun trained exactly the written configuration
        cfg = yaml.safe_load((sweep / "best" / f"seed{seed}" / ".hydra" / "config.yaml").read_text())
        assert cfg["optimizer"]["lr"] == pytest.approx(best.params["optimizer.lr"]) and cfg["seed"] == seed
        default = yaml.safe_load((sweep / "default" / f"seed{seed}" / ".hydra" / "config.yaml").read_text())
        assert default["optimizer"]["lr"] == 0.001 and default["model"]["dropout"] == 0.5
        assert default["dataset"]["max_users"] == 60  # the search's fixed settings kept

    cmp = pd.read_csv(sweep / "comparison.csv").set_index("metric")
    tuned = [json.loads((sweep / "best" / f"seed{s}" / "metrics.json").read_text())["test/ndcg@10"] for s in (42, 43)]
    assert cmp.loc["ndcg@10", "tuned_mean"] == pytest.approx(sum(tuned) / 2)
    assert cmp.loc["ndcg@10", "paper"] == pytest.approx(0.0354)

    def users(side):
        frames = [
            pd.read_csv(sweep / side / f"seed{s}" / "per_user_test.csv", dtype={"user_id": str}).set_index("user_id")[
                "ndcg@10"
            ]
            for s in (42, 43)
        ]
        return pd.concat(frames).groupby(level=0).mean().sort_index()

    expected = stats.ttest_rel(users("best"), users("default"))
    if math.isnan(expected.statistic):
        assert math.isnan(cmp.loc["ndcg@10", "t"])
    else:
        assert cmp.loc["ndcg@10", "t"] == pytest.approx(expected.statistic)
        assert cmp.loc["ndcg@10", "p"] == pytest.approx(expected.pvalue)
    assert (sweep / "search_history.png").stat().st_size > 0 and (sweep / "search_params.png").stat().st_size > 0


@pytest.mark.slow
def test_failed_trials_are_recorded_and_the_search_goes_on(lastfm_data_dir, tmp_path):
    sweep = tmp_path / "search"
    # hidden size 32 cannot be split into 3 heads: every such trial fails in its model's constructor
    run = _search(lastfm_data_dir, sweep, 3, "model.hidden_size=32", "model.num_heads=choice(1, 3)")
    assert run.returncode == 0, run.stderr[-3000:]
    study = _study(sweep)
    states = {t.number: (t.state.name, t.params["model.num_heads"]) for t in study.trials}
    assert len(states) == 3 and {s for s, _ in states.values()} == {"FAIL", "COMPLETE"}  # seeded: both kinds
    assert all(state == ("FAIL" if heads == 3 else "COMPLETE") for state, heads in states.values())

    # (both trials in one batch: n_jobs=2 without a parallel launcher runs them one after another, and says so)
    all_fail = _search(
        lastfm_data_dir, tmp_path / "fail", 2, "model.hidden_size=32", "model.num_heads=3", "hydra.sweeper.n_jobs=2"
    )
    assert all_fail.returncode == 1 and "every trial failed" in all_fail.stderr
    assert "hydra.sweeper.n_jobs=2 with Hydra's basic launcher" in " ".join((all_fail.stdout + all_fail.stderr).split())
    assert [t.state.name for t in _study(tmp_path / "fail").trials] == ["FAIL", "FAIL"]
    again = _search(lastfm_data_dir, tmp_path / "fail", 2, "model.hidden_size=32", "model.num_heads=3")
    assert again.returncode == 1 and "every one of the search's 2 trials failed" in again.stderr
    assert "delete the study.db" in again.stderr and "Traceback" not in again.stderr
    report = subprocess.run(
        [sys.executable, "-m", "seqrec.tune", str(tmp_path / "fail"), "--no-rerun"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=300,
    )
    assert report.returncode == 1 and "No complete trial" in report.stderr


CHOICES = {"dataset": "lastfm", "model": "sasrec", "loss": "cce", "optimizer": "adam"}


def _one_trial_search(search: Path) -> Path:
    """A one-trial study whose trial folder holds Hydra's record (choices and the lr override)."""
    _one_trial_study(search)
    hydra_dir = search / "trial0" / ".hydra"
    hydra_dir.mkdir(parents=True)
    record = {"runtime": {"choices": CHOICES}, "overrides": {"task": ["optimizer.lr=0.001"]}}
    (hydra_dir / "hydra.yaml").write_text(yaml.safe_dump({"hydra": record}))
    return search


def test_the_report_never_replaces_an_existing_experiment_file_unasked(tmp_path):
    # `--no-rerun` once rewrote the committed conf/experiment/lastfm_sasrec_cce_best.yaml silently
    from seqrec.tune.__main__ import main

    search = _one_trial_search(tmp_path / "search")
    conf = tmp_path / "conf" / "experiment"
    conf.mkdir(parents=True)
    (conf / "mine.yaml").write_text("# a tuned configuration\n")
    with pytest.raises(SeqrecError, match=r"mine.yaml already exists.*--name NEW.*--overwrite"):
        main([str(search), "--no-rerun", "--conf-dir", str(conf), "--name", "mine"])
    assert (conf / "mine.yaml").read_text() == "# a tuned configuration\n"
    assert sorted(p.name for p in search.iterdir()) == ["study.db", "trial0"]  # nothing written


def test_the_report_into_an_unwritable_conf_dir_is_one_paragraph(tmp_path, capsys):
    from seqrec.runs.cli import run_main
    from seqrec.tune.__main__ import main

    search = _one_trial_search(tmp_path / "search")
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    code = run_main(lambda: main([str(search), "--no-rerun", "--conf-dir", str(blocker / "experiment")]))
    err = capsys.readouterr().err
    assert code == 1 and "Traceback" not in err and str(blocker) in err.replace("\n", "")


# ---- the sweeper's own parts: the space, the trial numbers, pruning, an old study ----
@pytest.mark.parametrize(
    "text, expected",
    [
        ("x=choice(32, 64, 128)", optuna.distributions.CategoricalDistribution([32, 64, 128])),
        ("x=choice(sasrec, gru4rec)", optuna.distributions.CategoricalDistribution(["sasrec", "gru4rec"])),
        ("x=interval(0.0, 0.7)", optuna.distributions.FloatDistribution(0.0, 0.7)),
        ("x=tag(log, interval(0.0001, 0.01))", optuna.distributions.FloatDistribution(1e-4, 1e-2, log=True)),
        ("x=int(interval(1, 4))", optuna.distributions.IntDistribution(1, 4)),
        # Hydra's range excludes its stop, as Python's does: 16, 32, 48
        ("x=range(16, 64, 16)", optuna.distributions.IntDistribution(16, 48, step=16)),
    ],
)
def test_each_sweep_override_becomes_the_optuna_distribution_it_names(text, expected):
    from seqrec.tune.space import parse_space

    space, fixed = parse_space([text, "model=sasrec"])
    assert fixed == {"model": "sasrec"}
    assert space["x"].__class__ is expected.__class__
    got, want = space["x"], expected
    if hasattr(want, "choices"):
        assert list(got.choices) == list(want.choices)
    else:
        assert (got.low, got.log, got.step) == (want.low, want.log, want.step)
        assert got.high == pytest.approx(want.high)


def test_a_later_override_of_a_key_replaces_the_earlier_one():
    from seqrec.tune.space import parse_space

    space, fixed = parse_space(["model.dropout=interval(0.0, 0.7)", "model.dropout=0.3", "x=choice(1, 2)"])
    assert fixed == {"model.dropout": "0.3"} and list(space) == ["x"]


def test_trials_with_gaps_in_their_numbers_are_launched_in_consecutive_runs():
    from seqrec.tune.search import _consecutive

    # a re-queued trial keeps its number: a batch can be [7, 9, 10]
    assert _consecutive([7, 9, 10]) == [(0, 1), (1, 2)]
    assert _consecutive([3, 4, 5]) == [(0, 3)]


def test_a_parameter_value_becomes_the_override_hydra_reads_back():
    from seqrec.tune.experiment import parse_value
    from seqrec.tune.space import override_value

    for value in (5.686e-4, 1e-06, 128, True, 0.39104):
        assert parse_value(override_value(value)) == value


@pytest.mark.slow
def test_a_pruner_stops_trials_from_their_validation_metric_and_the_study_holds_each_epoch(lastfm_data_dir, tmp_path):
    sweep = tmp_path / "search"
    # every value is below 10: the pruner stops each trial at its first step past the warm-up; steps are
    # epochs (1, 2, …), and a step under n_warmup_steps is never pruned, so that is epoch 2
    pruner = "hydra.sweeper.pruner={_target_: optuna.pruners.ThresholdPruner, lower: 10.0, n_warmup_steps: 2}"
    run = _search(lastfm_data_dir, sweep, 2, pruner, "trainer.max_epochs=4")
    assert run.returncode == 0, run.stderr[-3000:]
    study = _study(sweep)
    assert [t.state.name for t in study.trials] == ["PRUNED", "PRUNED"]
    for t in study.trials:
        folder = sweep / f"trial{t.number}"
        epochs = pd.read_csv(folder / "epochs.csv")
        assert list(epochs["epoch"]) == [1, 2] and not (folder / "metrics.json").exists()
        # the study holds the run's own per-epoch metric, exactly
        assert t.intermediate_values == dict(zip(epochs["epoch"], epochs["valid/ndcg@20"]))
        note = json.loads((folder / "pruned.json").read_text())
        assert note == {
            "epoch": 2,
            "monitor": "valid/ndcg@20",
            "value": epochs["valid/ndcg@20"].iloc[-1],
            "pruner": "ThresholdPruner",
        }
    assert "Traceback" not in run.stderr and "no trial completed (2 pruned" in run.stdout + run.stderr
    assert not (sweep / "optimization_results.yaml").exists()  # no best trial to name


@pytest.mark.parametrize(
    "extra, message",
    [
        (["hydra.sweeper.pruner={_target_: optuna.pruners.Nope}"], "MedianPruner"),
        (
            ["hydra.sweeper.pruner={_target_: optuna.pruners.MedianPruner}", "hydra.sweeper.storage=null"],
            "stored study",
        ),
    ],
    ids=["no-such-pruner", "pruner-without-storage"],
)
def test_a_pruner_that_cannot_work_is_refused_before_any_trial(lastfm_data_dir, tmp_path, extra, message):
    run = _search(lastfm_data_dir, tmp_path / "search", 1, *extra)
    assert run.returncode == 1 and "hydra.sweeper.pruner" in run.stderr and message in run.stderr, run.stderr[-2000:]
    assert "Traceback" not in run.stderr and not (tmp_path / "search").exists()


OLD_STUDY = ROOT / "tests" / "fixtures" / "optuna2_study.db"  # written by optuna 2.10.1, the old sweeper's


def test_a_study_of_the_old_optuna2_sweeper_is_refused_with_the_upgrade_command_then_reads(tmp_path):
    from seqrec.tune.__main__ import main

    search = tmp_path / "search"
    search.mkdir()
    shutil.copy(OLD_STUDY, search / "study.db")
    before = (search / "study.db").read_bytes()
    with pytest.raises(SeqrecError, match="older Optuna") as err:
        main([str(search), "--no-rerun"])
    command = re.search(r"`(optuna storage upgrade --storage \S+)`", str(err.value)).group(1)
    assert (search / "study.db").read_bytes() == before  # refused read-only
    cli = Path(sys.executable).parent / "optuna"
    done = subprocess.run([str(cli), *command.split()[1:]], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    study = _study(search)  # the command the message gives makes it a study of this Optuna
    assert study.trials[0].value == pytest.approx(0.0636) and study.trials[0].params["optimizer.lr"] > 0


def test_top_trials_are_chosen_on_the_mean_over_seeds_not_the_luckiest_run(tmp_path, monkeypatch):
    import seqrec.tune.top as top_module
    from seqrec.tune.study import trials_table
    from seqrec.tune.top import pick, rerun_top

    study = optuna.create_study(direction="maximize")
    dist = {"optimizer.lr": optuna.distributions.FloatDistribution(1e-4, 1e-2, log=True)}
    reruns = {0: [0.10, 0.20], 1: [0.70, 0.72], 2: [0.0, 0.0]}  # trial 0: a lucky first seed
    for number, (value, lr) in enumerate([(0.90, 0.001), (0.80, 0.002), (0.10, 0.003)]):
        study.enqueue_trial({"optimizer.lr": lr})
        study.tell(study.ask(dist), value)
        folder = tmp_path / f"trial{number}"
        (folder / ".hydra").mkdir(parents=True)
        record = {"runtime": {"choices": CHOICES}, "overrides": {"task": [f"optimizer.lr={lr}", "seed=42"]}}
        (folder / ".hydra" / "hydra.yaml").write_text(yaml.safe_dump({"hydra": record}))
        (folder / "metrics.json").write_text(
            json.dumps({"seed": 42, "monitor": "valid/ndcg@20", "valid/ndcg@20": value})
        )
    calls = []

    def fake_rerun(label, overrides, seeds, out, extra):  # what train.py would write, without training
        calls.append((overrides, seeds))
        number = int(out.name.removeprefix("trial"))
        for seed, value in zip(seeds, reruns[number]):
            (out / f"seed{seed}").mkdir(parents=True)
            metrics = {"seed": seed, "monitor": "valid/ndcg@20", "valid/ndcg@20": value}
            (out / f"seed{seed}" / "metrics.json").write_text(json.dumps(metrics))

    monkeypatch.setattr(top_module, "rerun", fake_rerun)
    trials = trials_table(study, tmp_path)
    top = rerun_top(trials, k=2, seeds=3, search_dir=tmp_path, extra=[])

    assert list(top["number"]) == [1, 0]  # 2 best single runs rerun; trial 2 is not
    assert top.loc[0, "mean"] == pytest.approx((0.80 + 0.70 + 0.72) / 3)
    assert top.loc[1, "mean"] == pytest.approx((0.90 + 0.10 + 0.20) / 3)
    assert top.loc[1, "std"] == pytest.approx(stats.tstd([0.90, 0.10, 0.20]))
    assert top.loc[0, "seeds"] == "42,43,44"
    assert int(pick(trials, top)["number"]) == 1 and int(best_trial(trials)["number"]) == 0
    # each rerun trains the trial's own configuration with the next seeds
    assert calls[0] == (
        ["dataset=lastfm", "model=sasrec", "loss=cce", "optimizer=adam", "optimizer.lr=0.001"],
        [43, 44],
    )


def test_a_sampler_class_that_does_not_exist_is_named_with_its_cause():
    from seqrec.tune.space import build_part

    with pytest.raises(ConfigError) as err:
        build_part({"_target_": "optuna.samplers.NopeSampler"}, "sampler")
    message = str(err.value)
    assert "Error loading 'optuna.samplers.NopeSampler': ModuleNotFoundError" in message
    assert ":." not in message  # the cause is there, not an empty one after the colon
