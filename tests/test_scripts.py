"""The benchmark scripts run end to end on tiny inputs (a refactor once broke ``make bench`` only at
its last line, after the whole benchmark had run). Timings are not checked: benchmarks measure
speed, tests only that the scripts work and write what they promise."""

from __future__ import annotations

import shlex
import subprocess
import sys

import pandas as pd
import pytest
from conftest import CONF, ROOT
from hydra import compose, initialize_config_dir
from hydra.core.hydra_config import HydraConfig

import seqrec.resolvers  # noqa: F401 (registers the resolvers the sweep folders use)

SCRIPTS = ROOT / "scripts"


def _run(*args: str, timeout: int = 600) -> subprocess.CompletedProcess:
    done = subprocess.run([sys.executable, *args], capture_output=True, text=True, cwd=ROOT, timeout=timeout)
    assert done.returncode == 0, done.stderr[-3000:]
    return done


@pytest.mark.slow
def test_bench_writes_its_tables(lastfm_data_dir, tmp_path):
    _run(
        str(SCRIPTS / "bench.py"),
        "--datasets",
        "lastfm",
        "--models",
        "sasrec",
        "--losses",
        "cce",
        "bpr:4",
        "--variants",
        "base",
        "bucketing_off",
        "--epochs",
        "1",
        "--repeats",
        "1",
        "--max-batches",
        "2",
        "--warmup",
        "1",
        "--threads",
        "1",
        "--data-dir",
        str(lastfm_data_dir),
        "--out",
        str(tmp_path),
    )
    table = pd.read_csv(tmp_path / "bench.csv")
    assert len(table) == 2 and set(table["loss"]) == {"cce", "bpr:4"}
    assert (table["epoch_seconds"] > 0).all() and (table["eval_seconds"] > 0).all()
    assert (tmp_path / "bench.md").read_text().count("\n") >= 3
    assert len(pd.read_csv(tmp_path / "bench_raw.csv")) == 4  # 2 losses × 2 variants


def test_bench_chunked_memory_runs():
    out = _run(str(SCRIPTS / "bench_chunked_memory.py"), "--items", "2000", "--batch", "4", "--real", "3").stdout
    losses = [line.split("loss ")[1] for line in out.splitlines() if "loss " in line]
    assert len(losses) == 2 and losses[0] == losses[1]  # chunked and unchunked: the same CE


def test_bench_recommend_runs():
    out = _run(str(SCRIPTS / "bench_recommend.py"), "--items", "2000", "--sequences", "20").stdout
    assert "wrote 200 rows" in out  # 20 sequences × top-10


def test_the_dashboard_screenshots_say_what_is_missing_before_training(tmp_path):
    # no Chromium on PATH (CI has none): one paragraph, exit 1, nothing trained
    env = {"PATH": str(tmp_path), "CHROMIUM": str(tmp_path / "no-chromium")}
    done = subprocess.run(
        [sys.executable, str(SCRIPTS / "screenshot_dashboards.py"), "--work", str(tmp_path / "work")],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
        env=env,
    )
    assert done.returncode == 1 and "apt-get install chromium" in done.stderr and "Traceback" not in done.stderr
    assert not (tmp_path / "work").exists()


@pytest.mark.slow
def test_commit_results_commits_each_finished_run_once_with_its_pages(tmp_path):
    from test_results import MISS, make_run

    repo = tmp_path / "repo"
    (repo / "scripts").mkdir(parents=True)
    (repo / "scripts" / "commit_results.sh").write_bytes((SCRIPTS / "commit_results.sh").read_bytes())
    (repo / "results" / "leaderboard").mkdir(parents=True)
    (repo / "results" / "leaderboard" / "README.md").write_text("beyond Table 2\n")
    (repo / "docs").mkdir()
    for page in ("docs/results.md", "README.md"):
        (repo / page).write_text("<!-- generated:summary begin -->\n<!-- generated:summary end -->\n")

    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True, text=True).stdout

    def commit_results() -> None:
        env = {"PATH": "/usr/bin:/bin", "PYTHON": sys.executable, "HOME": str(tmp_path)}
        done = subprocess.run(["bash", "scripts/commit_results.sh"], cwd=repo, env=env, capture_output=True, text=True)
        assert done.returncode == 0, done.stderr[-3000:]

    git("init", "-q")
    git("-c", "user.name=t", "-c", "user.email=t@t", "add", "-A")
    git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "start")
    git("config", "user.name", "t")
    git("config", "user.email", "t@t")
    # a Table 2 run that finished, and a leaderboard sweep whose first run is still going
    make_run(repo / "outputs" / "table2", "cce", [1, 2, MISS], name="lastfm/sasrec-cce/seed42")
    (repo / "outputs" / "leaderboard" / "lastfm" / "sasrec-cce-sequences-len200" / "seed42").mkdir(parents=True)
    commit_results()
    assert git("log", "-1", "--format=%s") == "results: table2/lastfm/sasrec-cce/seed42\n"
    assert (
        "README.md" in git("show", "--name-only", "--format=")
        and "| LastFM | 1 of 9 |" in (repo / "README.md").read_text()
    )
    commit_results()  # nothing new: no commit
    assert git("rev-list", "--count", "HEAD") == "2\n"
    # a folder exported by a call that stopped before its commit is committed by the next one
    make_run(repo / "outputs" / "table2", "ce", [3, 1, 2], name="lastfm/sasrec-ce/seed42")
    subprocess.run([sys.executable, "-m", "seqrec.report.export", "outputs/table2", "--into", "results/table2"],
                   cwd=repo, check=True, capture_output=True)  # fmt: skip
    commit_results()
    assert git("log", "-1", "--format=%s") == "results: table2/lastfm/sasrec-ce/seed42\n"
    assert git("status", "--porcelain", "results") == ""


def test_every_gpu_run_fills_the_result_folder_its_line_names():
    # scripts/gpu_runs.sh skips a line whose folder is in results/leaderboard/: a folder that is not
    # the one the run writes would rerun finished runs on every GPU, or never skip
    lines = [ln.split(maxsplit=1) for ln in (SCRIPTS / "gpu_runs.txt").read_text().splitlines()]
    lines = [(folder, shlex.split(rest)) for folder, rest in lines if not folder.startswith("#")]
    assert len(lines) >= 3
    for folder, overrides in lines:
        with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
            cfg = compose(config_name="config", overrides=overrides, return_hydra_config=True)
        HydraConfig.instance().set_config(cfg)
        assert cfg.hydra.sweep.dir == "outputs/leaderboard", folder
        assert cfg.hydra.sweep.subdir == folder


def test_authors_valid_summarises_each_curve_at_its_best_epoch(tmp_path):
    # a clone with one cell: GRU4Rec + CE on Sports, best validation NDCG@20 at step 2 (epoch 3)
    folder = tmp_path / "clone" / "final_result" / "RQ2_data" / "GRU4Rec" / "Sports" / "CE"
    folder.mkdir(parents=True)
    curves = {"NDCG@20": [0.010, 0.012, 0.015, 0.015, 0.011], "NDCG@10": [0.007, 0.009, 0.012, 0.013, 0.008]}
    curves["HIT@10"] = [0.02, 0.03, 0.04, 0.05, 0.03]
    for metric, values in curves.items():
        rows = "".join(f"1653704386.2,{step},{v}\n" for step, v in enumerate(values))
        (folder / f"run-Sports_log_tensorboard_CE_metric_{metric}-tag-metric.csv").write_text(
            "Wall time,Step,Value\n" + rows
        )
    out = tmp_path / "authors_valid.csv"
    done = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "authors_valid.py"), str(tmp_path / "clone"), "--out", str(out)],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    table = pd.read_csv(out, comment="#")
    # the first epoch of the maximum (a tie does not improve), and the values of that epoch
    assert table.to_dict("records") == [
        {"dataset": "sports", "model": "gru4rec", "loss": "ce", "best_epoch": 3, "last_epoch": 5,
         "valid_ndcg20": 0.015, "valid_ndcg10": 0.012, "valid_hr10": 0.04}
    ]  # fmt: skip
