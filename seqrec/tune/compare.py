"""The rerun of the tuned and default configurations with several seeds, and their comparison."""

from __future__ import annotations

import logging
import math
import shlex
import subprocess
import sys
from pathlib import Path

import pandas as pd

from seqrec.errors import SeqrecError
from seqrec.evaluation import METRICS
from seqrec.report.markdown import markdown_table
from seqrec.report.runs import collect_runs, read_per_user
from seqrec.report.stats import paired_ttest

log = logging.getLogger(__name__)

FIRST_SEED = 42


def rerun(label: str, overrides: list[str], seeds: list[int], out: Path, extra: list[str]) -> None:
    """Train ``overrides`` once per seed into ``<out>/seed<s>`` (``train.py -m``; finished runs are
    skipped, unfinished ones continue). Raises SeqrecError when the sweep fails."""
    if not Path("train.py").is_file():
        raise SeqrecError(
            f"The rerun needs seqrec's train.py in the current folder ({Path.cwd()}); run "
            "`python -m seqrec.tune …` (or `make tune-report`) from the seqrec folder."
        )
    cmd = [
        sys.executable,
        "train.py",
        "-m",
        *overrides,
        f"seed={','.join(map(str, seeds))}",
        f"hydra.sweep.dir={out}",
        "hydra.sweep.subdir=seed${seed}",
        *extra,
    ]
    log.info("%s configuration, %d seeds: %s", label, len(seeds), shlex.join(cmd))
    if subprocess.run(cmd).returncode != 0:
        raise SeqrecError(
            f"The rerun of the {label} configuration failed (command: {shlex.join(cmd)}); "
            "its error is printed above. Fix it and run the report again: finished "
            "seeds are kept."
        )


# long: half of it is the docstring of the comparison table's columns
def compare(
    best_dir: Path, default_dir: Path, dataset: str, model: str, loss: str, paper: pd.DataFrame | None
) -> pd.DataFrame:
    """Test metrics of the tuned and default configurations, one row per metric.

    Columns: ``metric``; ``tuned_mean``, ``tuned_std``, ``default_mean``, ``default_std`` (over
    seeds, std with ddof 1, NaN for one seed); ``n_seeds``; ``paper`` (the paper's Table 2 value
    for dataset × model × loss, NaN if it has none); ``t``, ``p`` (two-sided paired t-test over the
    test users of the seed-averaged per-user metric, tuned vs default) and ``n_users``.

    Raises:
        SeqrecError: a side has no finished run, the two sides ran different seeds, or evaluated
            different users.
    """
    sides = {}
    for side, folder in (("tuned", best_dir), ("default", default_dir)):
        sides[side] = collect_runs(folder)
    seeds = {side: sorted(r["seed"]) for side, r in sides.items()}
    if seeds["tuned"] != seeds["default"]:
        raise SeqrecError(
            f"The tuned runs ({best_dir}: seeds {seeds['tuned']}) and the default runs "
            f"({default_dir}: seeds {seeds['default']}) differ in seeds; a paired "
            "comparison needs the same seeds. Rerun the report to finish both."
        )
    users = {}
    for side, runs in sides.items():
        frames = [read_per_user(d) for d in runs["run_dir"]]
        users[side] = pd.concat(frames).groupby(level="user_id").mean().sort_index()
    if not users["tuned"].index.equals(users["default"].index):
        raise SeqrecError(
            f"The tuned runs ({best_dir}) and the default runs ({default_dir}) evaluated "
            "different test users; both must use the same data (dataset options)."
        )
    rows = []
    for metric in METRICS:
        col = f"test/{metric}"
        tuned, default = sides["tuned"][col], sides["default"][col]
        test = paired_ttest(users["tuned"][metric], users["default"][metric])
        value = math.nan
        if paper is not None:
            hit = paper[
                (paper["dataset"] == dataset)
                & (paper["model"] == model)
                & (paper["loss"] == loss)
                & (paper["metric"] == metric)
            ]
            value = float(hit["value"].iloc[0]) if len(hit) else math.nan
        rows.append(
            {
                "metric": metric,
                "tuned_mean": tuned.mean(),
                "tuned_std": tuned.std(ddof=1),
                "default_mean": default.mean(),
                "default_std": default.std(ddof=1),
                "n_seeds": len(tuned),
                "paper": value,
                "t": test.t,
                "p": test.p,
                "n_users": test.n,
            }
        )
    return pd.DataFrame(rows)


def comparison_markdown(cmp: pd.DataFrame) -> str:
    """``comparison.md``: metric | tuned mean ± std | default mean ± std | paper | t | p."""

    def pm(mean, std):
        return f"{mean:.4f} ± {std:.4f}" if not math.isnan(std) else f"{mean:.4f}"

    header = ["metric", f"tuned ({int(cmp['n_seeds'].iloc[0])} seeds)", "default", "paper", "t", "p"]
    rows = [
        [
            r.metric.replace("hr", "HR").replace("ndcg", "NDCG"),
            pm(r.tuned_mean, r.tuned_std),
            pm(r.default_mean, r.default_std),
            "—" if math.isnan(r.paper) else f"{r.paper:.4f}",
            f"{r.t:.2f}",
            f"{r.p:.2g}",
        ]
        for r in cmp.itertuples()
    ]
    return markdown_table(pd.DataFrame(rows, columns=header))
