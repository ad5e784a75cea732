"""``python -m seqrec.tune <search>``: see :mod:`seqrec.tune`."""

from __future__ import annotations

import argparse
import math
import re
import shlex
import sys
import warnings
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.table import Table

from seqrec.atomic import atomic_write
from seqrec.errors import SeqrecError
from seqrec.report.paper import load_paper
from seqrec.runs.cli import run_main
from seqrec.tune.compare import FIRST_SEED, compare, comparison_markdown, rerun
from seqrec.tune.experiment import trial_overrides, write_best_experiment
from seqrec.tune.plots import plot_search
from seqrec.tune.study import best_trial, load_study, trial_metrics, trials_table
from seqrec.tune.top import pick, rerun_top


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m seqrec.tune",
        description="Trials table, plots, best configuration and its rerun for a hyperparameter search.",
    )
    p.add_argument("search", type=Path, help="the search folder (outputs/search/<name>)")
    p.add_argument("--study", default=None, help="study name (only if study.db holds several)")
    p.add_argument(
        "--name", default=None, help="name of the written conf/experiment/<name>.yaml (default: <study>_best)"
    )
    p.add_argument(
        "--conf-dir",
        type=Path,
        default=Path("conf/experiment"),
        help="where the best configuration is written (default conf/experiment); another "
        "folder must be named experiment (the reruns add its parent to Hydra's search path)",
    )
    p.add_argument("--seeds", type=int, default=5, help="seeds of the rerun, from 42 (default 5)")
    p.add_argument(
        "--top",
        type=int,
        default=1,
        help="choose the best configuration on the mean over --top-seeds seeds of the TOP best trials "
        "(default 1: the best single trial)",
    )
    p.add_argument("--top-seeds", type=int, default=3, help="seeds per top trial, its own run included (default 3)")
    p.add_argument("--no-rerun", action="store_true", help="skip the rerun and the comparison")
    p.add_argument(
        "--overwrite",
        action="store_true",
        help="replace an existing <conf-dir>/<name>.yaml (without it an existing file is refused)",
    )
    p.add_argument(
        "--train-args",
        default="",
        help="extra train.py overrides for the reruns, e.g. 'num_threads=1 trainer.progress=false'",
    )
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    console = Console()
    if not console.is_terminal:  # a log file: room for every column of the trials table
        console = Console(width=max(console.width, 160))
    _check_args(args)
    study = load_study(args.search, args.study)
    trials = trials_table(study, args.search)
    best = best_trial(trials)  # raises when no trial is complete
    params = sorted(study.best_trial.params)
    choices, overrides = trial_overrides(best["run_dir"])  # read before anything is written
    monitor = _monitor(best["run_dir"])
    name = args.name or f"{study.study_name}_best"
    shadow = Path("conf/experiment") / f"{name}.yaml"
    if not args.no_rerun and args.conf_dir.resolve() != shadow.parent.resolve() and shadow.is_file():
        # Hydra's own config folder comes before an added search path: the reruns would train
        # that file, not the one written into --conf-dir
        raise SeqrecError(
            f"--conf-dir {args.conf_dir}: the reruns would train {shadow} instead of the "
            f"{name}.yaml written there (conf/experiment comes first in Hydra's search path). "
            "Pass another name with --name NAME."
        )

    target = args.conf_dir / f"{name}.yaml"
    if target.exists() and not args.overwrite:  # e.g. a tuned configuration committed with the repository
        raise SeqrecError(
            f"{target} already exists, and this report would replace it with the best trial of "
            f"{args.search}. Pass --name NEW to write another file, or --overwrite to replace it."
        )

    console.print(_trials_table(trials, params, int(best["number"]), f"search {study.study_name}", monitor))
    written = []
    written.append(atomic_write(args.search / "trials.csv", trials.to_csv(index=False)))
    top = None
    if args.top > 1:  # the configuration with the best mean over seeds, not the luckiest single run
        top = rerun_top(trials, args.top, args.top_seeds, args.search, _train_args(args))
        written.append(atomic_write(args.search / "top_trials.csv", top.to_csv(index=False)))
        console.print(_top_table(top, monitor))
        best = pick(trials, top)
        choices, overrides = trial_overrides(best["run_dir"])
    categorical = frozenset(
        key for key, dist in study.best_trial.distributions.items() if type(dist).__name__ == "CategoricalDistribution"
    )
    written += plot_search(trials, params, monitor, args.search, categorical)
    written.append(
        write_best_experiment(best, trials, study.study_name, args.search, monitor, args.conf_dir, name, top)
    )
    console.print(
        f"best: trial {int(best['number'])}, {monitor} {best['value']:.4f}: "
        + ", ".join(f"{p}={best[p]}" for p in params)
    )
    if not args.no_rerun:
        written += _rerun_and_compare(args, name, choices, overrides, params, console)
    for path in written:
        console.print(f"wrote {path}")


def _check_args(args: argparse.Namespace) -> None:
    """Refuse options that cannot work, before anything is read or written."""
    if args.top < 1:
        raise SeqrecError(f"--top {args.top}: give the number of best trials to rerun (1 or more).")
    if args.top > 1 and args.top_seeds < 2:
        raise SeqrecError(f"--top-seeds {args.top_seeds}: a mean over seeds needs at least 2 seeds.")
    if args.seeds < 2 and not args.no_rerun:
        raise SeqrecError(
            f"--seeds {args.seeds} (make: TUNE_SEEDS): a mean ± std and a comparison need at least 2 seeds. "
            "Give 2 or more, or --no-rerun (make: TUNE_ARGS=--no-rerun) for the report without reruns."
        )
    if args.name is not None and not _NAME.fullmatch(args.name):
        raise SeqrecError(
            f"--name {args.name!r}: give a file name without a folder or extension (letters, "
            "digits, _ -), e.g. --name lastfm_sasrec_cce_best; --conf-dir sets the folder."
        )
    if not args.no_rerun and args.conf_dir.name != "experiment":
        raise SeqrecError(
            f"--conf-dir {args.conf_dir}: the reruns read it as Hydra's `experiment` config "
            f"group, so the folder must be named experiment (e.g. {args.conf_dir}/experiment), "
            "or pass --no-rerun to only write the configuration."
        )


def _trials_table(trials, params: list[str], best: int, title: str, monitor: str) -> Table:
    """The trials as a rich table, the best one highlighted; parameters by their last part."""
    table = Table(title=f"{title}: {len(trials)} trials, objective {monitor} (validation)")
    shown = ["number", "state", "value", *params, "duration_s", "epochs_run"]
    for col in shown:  # model.dropout → dropout
        table.add_column(
            {"number": "#", "duration_s": "s", "epochs_run": "epochs"}.get(col, col.split(".")[-1]), justify="right"
        )
    for d in trials.to_dict("records"):
        table.add_row(*(_fmt(d.get(c)) for c in shown), style="bold green" if d["number"] == best else None)
    return table


def _rerun_and_compare(
    args: argparse.Namespace, name: str, choices: dict, overrides: dict, params: list[str], console: Console
) -> list[Path]:
    """Train the written configuration and the default one with ``--seeds`` seeds and compare
    them (``comparison.{csv,md}``); returns the files written."""
    # the default configuration keeps the search's fixed settings (e.g. trainer.max_epochs)
    fixed = [f"{k}={v}" for k, v in overrides.items() if k not in params]
    seeds = list(range(FIRST_SEED, FIRST_SEED + args.seeds))
    extra = _train_args(args)
    if args.conf_dir.resolve() != Path("conf/experiment").resolve():  # a config folder of its own
        extra.append(f"hydra.searchpath=[file://{args.conf_dir.resolve().parent}]")
    rerun("tuned", [f"experiment={name}"], seeds, args.search / "best", extra)
    rerun("default", [*(f"{g}={c}" for g, c in choices.items()), *fixed], seeds, args.search / "default", extra)
    paper = load_paper()
    cmp = compare(
        args.search / "best",
        args.search / "default",
        choices.get("dataset", ""),
        choices.get("model", ""),
        choices.get("loss", ""),
        paper,
    )
    md = comparison_markdown(cmp)
    console.print(md)
    return [
        atomic_write(args.search / "comparison.csv", cmp.to_csv(index=False)),
        atomic_write(args.search / "comparison.md", md + "\n"),
    ]


_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_-]*")


def _train_args(args: argparse.Namespace) -> list[str]:
    return shlex.split(args.train_args)


def _top_table(top, monitor: str) -> Table:
    table = Table(title=f"best trials rerun with more seeds: {monitor} (validation), mean over seeds")
    for col in ("trial", "seeds", "mean", "std", "search (1 seed)"):
        table.add_column(col, justify="right")
    for i, row in enumerate(top.to_dict("records")):
        cells = [str(row["number"]), row["seeds"], _fmt(row["mean"]), _fmt(row["std"]), _fmt(row["single"])]
        table.add_row(*cells, style="bold green" if i == 0 else None)
    return table


def _monitor(run_dir: str) -> str:
    return str(trial_metrics(Path(run_dir)).get("monitor", "objective"))


def _fmt(v) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "—"
    if isinstance(v, (float, np.floating)):
        return f"{v:.4g}" if abs(v) < 1e-2 and v != 0 else f"{v:.4f}".rstrip("0").rstrip(".") or "0"
    return str(v)


if __name__ == "__main__":
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        sys.exit(run_main(main))
