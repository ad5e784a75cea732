"""Report of a hyperparameter search (``hparams_search=…``) and the rerun of its best configuration.

    python -m seqrec.tune outputs/search/lastfm_sasrec_cce [--seeds 5] [--name NAME]
                          [--no-rerun] [--train-args "num_threads=1 trainer.progress=false"]

(``make tune-report SEARCH=…``.) From the search folder that ``python train.py
hparams_search=<name>`` wrote (``study.db``, the Optuna study; ``trial<N>/``, one run per trial):

1. the trials table — number, state, the objective (the trials' ``trainer.monitor`` validation
   metric), each parameter, duration, epochs — printed and written as ``trials.csv``;
2. ``search_history.png`` (objective per trial and the best so far) and ``search_params.png``
   (objective against each parameter);
3. the best complete trial (highest objective: selection on validation only) written as
   ``conf/experiment/<name>.yaml`` (default name ``<study>_best``), usable as
   ``python train.py experiment=<name>``;
4. unless ``--no-rerun``: that configuration and the default one (the search's dataset, model and
   loss with nothing else changed) trained with ``--seeds`` seeds (42, 43, …) into
   ``<search>/best/seed<s>`` and ``<search>/default/seed<s>`` — a repeated report skips finished
   runs — and ``comparison.{md,csv}``: test metrics mean ± std over the seeds, the paper's value
   (Table 2 of the CCE paper, where it has the cell) and a paired t-test of the tuned against the
   default configuration over the test users (per-user metrics averaged over the seeds).

A user error (no study, optuna missing, no complete trial, a failed rerun) prints one paragraph
and exits with status 1.
"""

from __future__ import annotations

import argparse
import logging
import math
import re
import shlex
import subprocess
import sys
import warnings
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pandas as pd
import yaml
from rich.console import Console
from rich.table import Table

from seqrec.atomic import atomic_write
from seqrec.cli import run_main
from seqrec.errors import SeqrecError
from seqrec.evaluation import METRICS
from seqrec.report.markdown import markdown_table
from seqrec.report.paper import load_paper
from seqrec.report.runs import collect_runs, read_per_user
from seqrec.report.stats import paired_ttest

log = logging.getLogger(__name__)

STUDY_FILE = "study.db"
# overrides of a trial that do not change its result, left out of the best configuration
NOT_RESULT_KEYS = ("hparams_search", "num_threads", "trainer.progress", "device", "seed", "seeds")
FIRST_SEED = 42
# config groups of a trial written into the best configuration (as `override /group: choice`)
CHOICE_GROUPS = ("dataset", "model", "loss", "optimizer")


def _optuna():
    try:
        import optuna
    except ImportError as exc:
        raise SeqrecError(
            "The search report needs optuna, which is not installed. Install the tune extra with "
            "`make install-tune` (or `pip install -e '.[tune]'`)."
        ) from exc
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    logging.getLogger("alembic").setLevel(logging.WARNING)
    return optuna


def load_study(search_dir: str | Path, study_name: str | None = None):
    """The Optuna study of a search folder (``<search_dir>/study.db``).

    Raises:
        SeqrecError: the folder or its ``study.db`` is missing, the file holds no study, or it holds
            several and ``study_name`` does not pick one.
    """
    optuna = _optuna()
    search_dir = Path(search_dir)
    db = search_dir / STUDY_FILE
    if not db.is_file():
        raise SeqrecError(
            f"No search study at '{db}'. Pass the folder a search wrote (`python train.py "
            "hparams_search=<name>` writes outputs/search/<name>/study.db)."
        )
    storage = f"sqlite:///{db.resolve()}"
    names = [s.study_name for s in optuna.get_all_study_summaries(storage)]
    if study_name is None:
        if len(names) != 1:
            raise SeqrecError(f"'{db}' holds {len(names)} studies ({', '.join(names) or 'none'}); "
                              "pick one with --study NAME.")
        study_name = names[0]
    elif study_name not in names:
        raise SeqrecError(f"'{db}' has no study named {study_name!r}; it has {', '.join(names)}.")
    return optuna.load_study(study_name=study_name, storage=storage)


def _trial_metrics(run_dir: Path) -> dict:
    path = run_dir / "metrics.json"
    if not path.is_file():
        return {}
    import json

    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}


def trials_table(study, search_dir: str | Path) -> pd.DataFrame:
    """One row per trial: ``number``, ``state``, ``value`` (the objective, NaN unless complete), one
    column per searched parameter, ``duration_s`` (seconds), ``best_epoch``, ``epochs_run`` and
    ``run_dir`` (``<search_dir>/trial<number>``), sorted by number."""
    rows = []
    for t in study.get_trials(deepcopy=False):
        run_dir = Path(search_dir) / f"trial{t.number}"
        m = _trial_metrics(run_dir)
        duration = (t.datetime_complete - t.datetime_start).total_seconds() \
            if t.datetime_complete and t.datetime_start else math.nan
        rows.append({
            "number": t.number, "state": t.state.name,
            "value": t.value if t.state.name == "COMPLETE" and t.value is not None else math.nan,
            **t.params, "duration_s": duration,
            "best_epoch": m.get("best_epoch"), "epochs_run": m.get("epochs_run"), "run_dir": str(run_dir),
        })
    return pd.DataFrame(rows).sort_values("number").reset_index(drop=True)


def best_trial(trials: pd.DataFrame) -> pd.Series:
    """The complete trial with the highest objective (the first such trial on a tie).

    Raises:
        SeqrecError: no trial is complete.
    """
    done = trials[(trials["state"] == "COMPLETE") & trials["value"].notna()]
    if done.empty:
        raise SeqrecError(
            f"No complete trial in this search ({len(trials)} trials: "
            f"{', '.join(f'{n} {s}' for s, n in trials['state'].value_counts().items()) or 'none'}). "
            "Run or continue the search first (the same `python train.py hparams_search=…` command)."
        )
    return done.loc[done["value"].idxmax()]


def trial_overrides(run_dir: str | Path) -> tuple[dict, dict]:
    """``(choices, overrides)`` of a trial run: its config-group choices (dataset, model, loss,
    optimizer) and its command-line ``key=value`` overrides that change results (the searched
    parameters and fixed settings; not ``NOT_RESULT_KEYS``).

    Reads ``<run_dir>/.hydra/hydra.yaml``. Raises SeqrecError when it is missing or unreadable.
    """
    path = Path(run_dir) / ".hydra" / "hydra.yaml"
    try:
        hydra_cfg = yaml.safe_load(path.read_text())["hydra"]
    except (OSError, yaml.YAMLError, KeyError, TypeError) as exc:
        raise SeqrecError(f"Cannot read the trial's Hydra record '{path}': {exc}. The trial folder "
                          "is incomplete; pick another search folder or rerun the search.") from exc
    recorded = hydra_cfg["runtime"]["choices"]
    choices = {k: recorded[k] for k in CHOICE_GROUPS if recorded.get(k)}
    overrides = {}
    for item in hydra_cfg["overrides"]["task"]:
        key, _, value = item.partition("=")
        if key.lstrip("+~") in NOT_RESULT_KEYS or key.startswith(("hydra.", "hydra/")) or "/" in key:
            continue
        if key in choices:  # a config group chosen on the command line
            continue
        overrides[key] = parse_value(value)
    return choices, overrides


_NUMBER = re.compile(r"[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?")


def parse_value(text: str):
    """A command-line override's value as Hydra reads it: numbers (``1e-06`` too, which YAML 1.1
    would keep as a string) as int/float, else YAML (``true``, ``null``, lists, strings)."""
    if _NUMBER.fullmatch(text):
        number = float(text)
        return int(text) if re.fullmatch(r"[-+]?\d+", text) else number
    return yaml.safe_load(text)


def experiment_yaml(choices: dict, overrides: dict, header: str) -> str:
    """The text of ``conf/experiment/<name>.yaml``: group choices as ``override /group: choice``
    defaults and the overrides as nested keys (``model.dropout: 0.3`` → ``model: {dropout: 0.3}``)."""
    nested: dict = {}
    for key, value in sorted(overrides.items()):
        node = nested
        *parents, leaf = key.split(".")
        for p in parents:
            node = node.setdefault(p, {})
        node[leaf] = value
    lines = [f"# {line}".rstrip() for line in header.splitlines()]
    lines += ["# @package _global_", "defaults:"]
    lines += [f"  - override /{group}: {choice}" for group, choice in choices.items()]
    body = yaml.safe_dump(nested, sort_keys=True, default_flow_style=False)
    return "\n".join(lines) + "\n\n" + body


def write_best_experiment(best: pd.Series, trials: pd.DataFrame, study_name: str, search_dir: Path,
                          monitor: str, conf_dir: Path, name: str) -> Path:
    """Write the best trial's configuration as ``<conf_dir>/<name>.yaml``; returns the path."""
    choices, overrides = trial_overrides(best["run_dir"])
    n_done = int((trials["state"] == "COMPLETE").sum())
    header = (
        f"Best of {n_done} complete trials ({len(trials)} in all) of the search {study_name!r} "
        f"({search_dir}): trial {int(best['number'])}, {monitor} = {best['value']:.6f} (validation).\n"
        f"Written by `python -m seqrec.tune` on {datetime.now(timezone.utc):%Y-%m-%d}. Rerun it:\n"
        f"  python train.py -m experiment={name} seed=42,43,44,45,46"
    )
    path = conf_dir / f"{name}.yaml"
    conf_dir.mkdir(parents=True, exist_ok=True)
    # the file's first line must be the package header for Hydra: move it above the comments
    text = experiment_yaml(choices, overrides, header)
    text = "# @package _global_\n" + text.replace("# @package _global_\n", "")
    return atomic_write(path, text)


def plot_search(trials: pd.DataFrame, params: list[str], monitor: str, out_dir: Path) -> list[Path]:
    """``search_history.png`` (objective per trial, best so far) and ``search_params.png`` (the
    objective against each parameter; log axis for log-spaced ranges). Returns the paths."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    done = trials[trials["value"].notna()]
    paths = []
    fig, ax = plt.subplots(figsize=(6.4, 4))
    ax.scatter(done["number"], done["value"], s=18, label="complete trial")
    failed = trials[trials["state"] == "FAIL"]
    if len(failed):
        ax.scatter(failed["number"], [done["value"].min() if len(done) else 0] * len(failed),
                   marker="x", color="tab:red", label="failed trial")
    ax.step(done["number"], done["value"].cummax(), where="post", color="tab:orange", label="best so far")
    ax.set_xlabel("trial")
    ax.set_ylabel(f"{monitor} (validation)")
    ax.legend(loc="lower right")
    fig.tight_layout()
    paths.append(_save(fig, out_dir / "search_history.png"))
    plt.close(fig)

    cols = 4
    rows = max(1, math.ceil(len(params) / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(3.2 * cols, 2.6 * rows), squeeze=False)
    for ax, p in zip(axes.flat, params):
        x = done[p]
        numeric = pd.api.types.is_numeric_dtype(x)
        if numeric:
            ax.scatter(x, done["value"], s=12)
            positive = x[x > 0]
            if len(positive) == len(x) and len(x) and x.max() / x.min() >= 50:
                ax.set_xscale("log")
        else:
            cats = sorted(x.astype(str).unique())
            ax.scatter([cats.index(v) for v in x.astype(str)], done["value"], s=12)
            ax.set_xticks(range(len(cats)), cats)
        ax.set_title(p, fontsize=9)
    for ax in list(axes.flat)[len(params):]:
        ax.axis("off")
    fig.supylabel(f"{monitor} (validation)")
    fig.tight_layout()
    paths.append(_save(fig, out_dir / "search_params.png"))
    plt.close(fig)
    return paths


def _save(fig, path: Path) -> Path:
    return atomic_write(path, lambda f: fig.savefig(f, format="png", dpi=110))


def rerun(label: str, overrides: list[str], seeds: list[int], out: Path, extra: list[str]) -> None:
    """Train ``overrides`` once per seed into ``<out>/seed<s>`` (``train.py -m``; finished runs are
    skipped, unfinished ones continue). Raises SeqrecError when the sweep fails."""
    if not Path("train.py").is_file():
        raise SeqrecError(f"The rerun needs seqrec's train.py in the current folder ({Path.cwd()}); run "
                          "`python -m seqrec.tune …` (or `make tune-report`) from the seqrec folder.")
    cmd = [sys.executable, "train.py", "-m", *overrides, f"seed={','.join(map(str, seeds))}",
           f"hydra.sweep.dir={out}", "hydra.sweep.subdir=seed${seed}", *extra]
    log.info("%s configuration, %d seeds: %s", label, len(seeds), shlex.join(cmd))
    if subprocess.run(cmd).returncode != 0:
        raise SeqrecError(f"The rerun of the {label} configuration failed (command: {shlex.join(cmd)}); "
                          "its error is printed above. Fix it and run the report again: finished "
                          "seeds are kept.")


def compare(best_dir: Path, default_dir: Path, dataset: str, model: str, loss: str,
            paper: pd.DataFrame | None) -> pd.DataFrame:
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
        raise SeqrecError(f"The tuned runs ({best_dir}: seeds {seeds['tuned']}) and the default runs "
                          f"({default_dir}: seeds {seeds['default']}) differ in seeds; a paired "
                          "comparison needs the same seeds. Rerun the report to finish both.")
    users = {}
    for side, runs in sides.items():
        frames = [read_per_user(d) for d in runs["run_dir"]]
        users[side] = pd.concat(frames).groupby(level="user_id").mean().sort_index()
    if not users["tuned"].index.equals(users["default"].index):
        raise SeqrecError(f"The tuned runs ({best_dir}) and the default runs ({default_dir}) evaluated "
                          "different test users; both must use the same data (dataset options).")
    rows = []
    for metric in METRICS:
        col = f"test/{metric}"
        tuned, default = sides["tuned"][col], sides["default"][col]
        test = paired_ttest(users["tuned"][metric], users["default"][metric])
        value = math.nan
        if paper is not None:
            hit = paper[(paper["dataset"] == dataset) & (paper["model"] == model)
                        & (paper["loss"] == loss) & (paper["metric"] == metric)]
            value = float(hit["value"].iloc[0]) if len(hit) else math.nan
        rows.append({
            "metric": metric, "tuned_mean": tuned.mean(), "tuned_std": tuned.std(ddof=1),
            "default_mean": default.mean(), "default_std": default.std(ddof=1),
            "n_seeds": len(tuned), "paper": value, "t": test.t, "p": test.p, "n_users": test.n,
        })
    return pd.DataFrame(rows)


def comparison_markdown(cmp: pd.DataFrame) -> str:
    """``comparison.md``: metric | tuned mean ± std | default mean ± std | paper | t | p."""
    def pm(mean, std):
        return f"{mean:.4f} ± {std:.4f}" if not math.isnan(std) else f"{mean:.4f}"

    header = ["metric", f"tuned ({int(cmp['n_seeds'].iloc[0])} seeds)", "default", "paper", "t", "p"]
    rows = [[r.metric.replace("hr", "HR").replace("ndcg", "NDCG"), pm(r.tuned_mean, r.tuned_std),
             pm(r.default_mean, r.default_std), "—" if math.isnan(r.paper) else f"{r.paper:.4f}",
             f"{r.t:.2f}", f"{r.p:.2g}"] for r in cmp.itertuples()]
    return markdown_table(pd.DataFrame(rows, columns=header))


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m seqrec.tune",
                                description="Trials table, plots, best configuration and its rerun "
                                            "for a hyperparameter search.")
    p.add_argument("search", type=Path, help="the search folder (outputs/search/<name>)")
    p.add_argument("--study", default=None, help="study name (only if study.db holds several)")
    p.add_argument("--name", default=None,
                   help="name of the written conf/experiment/<name>.yaml (default: <study>_best)")
    p.add_argument("--conf-dir", type=Path, default=Path("conf/experiment"),
                   help="where the best configuration is written (default conf/experiment); another "
                        "folder must be named experiment (the reruns add its parent to Hydra's search path)")
    p.add_argument("--seeds", type=int, default=5, help="seeds of the rerun, from 42 (default 5)")
    p.add_argument("--no-rerun", action="store_true", help="skip the rerun and the comparison")
    p.add_argument("--train-args", default="",
                   help="extra train.py overrides for the reruns, e.g. 'num_threads=1 trainer.progress=false'")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    console = Console()
    if not console.is_terminal:  # a log file: room for every column of the trials table
        console = Console(width=max(console.width, 160))
    if args.seeds < 2 and not args.no_rerun:
        raise SeqrecError(f"--seeds {args.seeds}: a mean ± std and a comparison need at least 2 seeds.")
    study = load_study(args.search, args.study)
    trials = trials_table(study, args.search)
    params = sorted(study.best_trial.params) if any(trials["state"] == "COMPLETE") else []
    best = best_trial(trials)
    monitor = _monitor(best["run_dir"])

    table = Table(title=f"search {study.study_name}: {len(trials)} trials, objective {monitor} (validation)")
    shown = ["number", "state", "value", *params, "duration_s", "epochs_run"]
    for col in shown:  # the parameters by their last part (model.dropout → dropout)
        table.add_column({"number": "#", "duration_s": "s", "epochs_run": "epochs"}.get(col, col.split(".")[-1]),
                         justify="right")
    for d in trials.to_dict("records"):
        style = "bold green" if d["number"] == best["number"] else None
        table.add_row(*(_fmt(d.get(c)) for c in shown), style=style)
    console.print(table)
    written = []
    written.append(atomic_write(args.search / "trials.csv", trials.to_csv(index=False)))
    written += plot_search(trials, params, monitor, args.search)
    name = args.name or f"{study.study_name}_best"
    written.append(write_best_experiment(best, trials, study.study_name, args.search, monitor,
                                         args.conf_dir, name))
    console.print(f"best: trial {int(best['number'])}, {monitor} {best['value']:.4f}: "
                  + ", ".join(f"{p}={best[p]}" for p in params))
    if not args.no_rerun:
        choices, overrides = trial_overrides(best["run_dir"])
        # the default configuration keeps the search's fixed settings (e.g. trainer.max_epochs)
        fixed = [f"{k}={v}" for k, v in overrides.items() if k not in params]
        seeds = list(range(FIRST_SEED, FIRST_SEED + args.seeds))
        extra = shlex.split(args.train_args)
        if args.conf_dir.resolve() != Path("conf/experiment").resolve():  # a config folder of its own
            extra.append(f"hydra.searchpath=[file://{args.conf_dir.resolve().parent}]")
        rerun("tuned", [f"experiment={name}"], seeds, args.search / "best", extra)
        rerun("default", [*(f"{g}={c}" for g, c in choices.items()), *fixed], seeds,
              args.search / "default", extra)
        paper = load_paper()
        cmp = compare(args.search / "best", args.search / "default", choices.get("dataset", ""),
                      choices.get("model", ""), choices.get("loss", ""), paper)
        md = comparison_markdown(cmp)
        written += [atomic_write(args.search / "comparison.csv", cmp.to_csv(index=False)),
                    atomic_write(args.search / "comparison.md", md + "\n")]
        console.print(md)
    for path in written:
        console.print(f"wrote {path}")


def _monitor(run_dir: str) -> str:
    return str(_trial_metrics(Path(run_dir)).get("monitor", "objective"))


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
