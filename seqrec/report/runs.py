"""Collect finished runs from disk, and write report files atomically.

A finished run is a directory holding ``metrics.json`` (written last by the training pipeline), next
to ``per_user_test.csv``, ``epochs.csv`` and ``config.yaml``. Tables and plots are built only from
these files (STYLE.md §10); nothing here imports the training code.
"""

from __future__ import annotations

import json
import logging
import math
import os
from pathlib import Path

import pandas as pd

from seqrec.errors import SeqrecError
from seqrec.evaluation import METRICS
from seqrec.report.archive import RANKS_FILE, USER_IDS, check_result_dir, is_result_dir, read_ranks

log = logging.getLogger(__name__)

SPLITS = ("valid", "test")
KEY_COLUMNS = ("dataset", "model", "loss", "seed")
INFO_COLUMNS = (
    "best_epoch",
    "epochs_run",
    "seconds_per_epoch",
    "total_seconds",
    "n_users",
    "n_items",
    "data_fingerprint",
)
RUN_COLUMNS = (
    *KEY_COLUMNS,
    *(f"{split}/{m}" for split in SPLITS for m in METRICS),
    *INFO_COLUMNS,
    "run_dir",
)


def collect_runs(root: str | os.PathLike) -> pd.DataFrame:
    """Find every finished run below ``root`` (recursively) and return one row per run.

    Reads: ``<run_dir>/metrics.json`` for each directory below ``root`` that has one; directories
    without it are unfinished runs and are skipped (debug log). Extra keys in the json are ignored.

    Returns:
        DataFrame with the columns ``RUN_COLUMNS``: dataset, model, loss (lower case), seed (int),
        ``valid/<metric>`` and ``test/<metric>`` for the six metrics (NaN when absent), the timing
        and size fields, ``data_fingerprint`` (str or None) and ``run_dir`` (str), sorted by
        dataset, model, loss, seed.

    Result folders (:mod:`seqrec.report.archive`, e.g. ``results/table2``) count as finished runs
    once :func:`~seqrec.report.archive.check_result_dir` accepts their format and checksums.

    Raises:
        SeqrecError: ``root`` does not exist or holds no finished run; a ``metrics.json`` is not
            valid json or lacks dataset/model/loss/seed; two runs share dataset, model, loss and
            seed, or two seeds of one dataset × model × loss differ in another setting
            (:func:`seqrec.report.protocol.check_seeds_agree`; the messages name both
            directories); a result folder of another format.
    """
    root = Path(root)
    if not root.is_dir():
        raise SeqrecError(
            f"Run folder '{root}' does not exist or is not a directory. Pass --runs the folder that "
            "holds your training outputs (e.g. outputs/runs or outputs/multirun)."
        )
    rows = []
    for path in sorted(root.rglob("metrics.json")):
        if is_result_dir(path.parent):  # a committed result folder: refuse another format by name
            check_result_dir(path.parent)
        rows.append(read_metrics(path))
    for cfg in root.rglob("config.yaml"):
        if cfg.parent.name != ".hydra" and not (cfg.parent / "metrics.json").exists():
            log.debug("skipping %s: no metrics.json (run not finished)", cfg.parent)
    if not rows:
        raise SeqrecError(
            f"No finished run under '{root}': no metrics.json was found in it or its subfolders. "
            "Train first (e.g. `python train.py dataset=lastfm model=sasrec loss=cce`) or point "
            "--runs at the folder that holds the run directories."
        )
    runs = pd.DataFrame(rows, columns=list(RUN_COLUMNS))
    runs = runs.sort_values(list(KEY_COLUMNS), kind="stable").reset_index(drop=True)
    dup = runs.duplicated(list(KEY_COLUMNS), keep=False)
    if dup.any():
        a, b = runs.loc[dup, "run_dir"].iloc[:2]
        key = ", ".join(f"{k}={runs.loc[dup, k].iloc[0]}" for k in KEY_COLUMNS)
        raise SeqrecError(
            f"Two finished runs have the same {key}: '{a}' and '{b}'. Averaging them would count "
            "one seed twice; delete or move the one you do not want, or pass a narrower --runs."
        )
    # protocol reads configs with seqrec.runs (training code), which this module does not import
    from seqrec.report.protocol import check_seeds_agree

    check_seeds_agree(runs, ("dataset", "model", "loss"))
    return runs


def read_metrics(path: Path) -> dict:
    """One row of :func:`collect_runs` (its columns ``RUN_COLUMNS``) from one ``metrics.json``.

    Raises:
        SeqrecError: the file is not valid json, not an object, lacks dataset/model/loss/seed, or
            its seed is not an integer.
    """
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise SeqrecError(
            f"Cannot read '{path}': {exc}. The file is damaged; rerun that run or delete its folder."
        ) from exc
    if not isinstance(data, dict):
        raise SeqrecError(f"'{path}' is not a json object; rerun that run or delete its folder.")
    missing = [k for k in KEY_COLUMNS if k not in data]
    if missing:
        raise SeqrecError(
            f"'{path}' lacks the key(s) {', '.join(missing)}; every metrics.json must name its "
            "dataset, model, loss and seed. Rerun that run with the current code or delete it."
        )
    row = {col: data.get(col) for col in RUN_COLUMNS}
    for k in ("dataset", "model", "loss"):
        row[k] = str(data[k]).lower()
    try:
        row["seed"] = int(data["seed"])
    except (TypeError, ValueError) as exc:
        raise SeqrecError(f"'{path}': seed {data['seed']!r} is not an integer.") from exc
    for col in RUN_COLUMNS:
        if "/" in col:
            row[col] = float(data[col]) if data.get(col) is not None else math.nan
    fp = data.get("data_fingerprint")
    row["data_fingerprint"] = None if fp is None else str(fp)
    row["run_dir"] = str(path.parent)
    return row


def read_per_user(run_dir: str | os.PathLike) -> pd.DataFrame:
    """Per-user test metrics of one run.

    Reads: ``<run_dir>/per_user_test.csv`` (``user_id`` read as str, ``rank``, the six metrics),
    or in a result folder ``per_user_test.csv.gz`` (ranks; the metrics recomputed from them).

    Returns:
        DataFrame indexed by ``user_id`` (str) with the metric columns present in ``METRICS``.

    Raises:
        SeqrecError: the file is missing or unreadable, lacks ``user_id``, or repeats a user.
    """
    path = Path(run_dir) / "per_user_test.csv"
    if not path.exists() and (Path(run_dir) / RANKS_FILE).exists():
        path = Path(run_dir) / RANKS_FILE
        df = read_ranks(path)
    else:
        df = _read_csv(path, **USER_IDS)
    if "user_id" not in df.columns:
        raise SeqrecError(f"'{path}' has no user_id column; it was written by an old or broken run.")
    if df["user_id"].duplicated().any():
        user = df.loc[df["user_id"].duplicated(), "user_id"].iloc[0]
        raise SeqrecError(f"'{path}' lists user '{user}' twice; each user must appear once.")
    return df.set_index("user_id")[[m for m in METRICS if m in df.columns]]


def read_epochs(run_dir: str | os.PathLike) -> pd.DataFrame:
    """Per-epoch log of one run.

    Reads: ``<run_dir>/epochs.csv`` (epoch, train_loss, valid/…, test/ndcg@10, epoch_seconds,
    eval_seconds, train_seconds_cum).

    Raises:
        SeqrecError: the file is missing/unreadable or lacks a column the RQ2 plot needs.
    """
    path = Path(run_dir) / "epochs.csv"
    df = _read_csv(path)
    needed = ("epoch", "test/ndcg@10", "epoch_seconds", "train_seconds_cum")
    missing = [c for c in needed if c not in df.columns]
    if missing:
        raise SeqrecError(
            f"'{path}' lacks the column(s) {', '.join(missing)} needed for the RQ2 curves: the run "
            "did not log test NDCG@10 per epoch. Train it with trainer.log_test_every_epoch=true "
            "(experiment=table2 sets it); the tables need no curves (python -m seqrec.report --no-plots)."
        )
    return df.sort_values("epoch").reset_index(drop=True)


def _read_csv(path: Path, **kwargs) -> pd.DataFrame:
    try:
        return pd.read_csv(path, **kwargs)
    except FileNotFoundError as exc:
        raise SeqrecError(
            f"'{path}' is missing, but its run has a metrics.json. The run folder is incomplete; "
            "rerun that run or delete its folder."
        ) from exc
    except (OSError, ValueError, pd.errors.ParserError) as exc:
        raise SeqrecError(f"Cannot read '{path}': {exc}. Rerun that run or delete its folder.") from exc


def check_same_data(runs: pd.DataFrame, by=("dataset", "model")) -> None:
    """Raise SeqrecError when two runs of one ``by`` group carry different ``data_fingerprint``.

    Runs without a fingerprint are not compared (nothing to compare with).
    """
    for _, group in runs.groupby(list(by), sort=False):
        known = group[group["data_fingerprint"].notna()]
        if known["data_fingerprint"].nunique() > 1:
            a = known.iloc[0]
            b = known[known["data_fingerprint"] != a.data_fingerprint].iloc[0]
            raise SeqrecError(
                f"Runs '{a.run_dir}' and '{b.run_dir}' were trained on different data "
                f"(data_fingerprint {a.data_fingerprint} vs {b.data_fingerprint}) although both are "
                f"{a.dataset}/{a.model}. Their numbers cannot be compared or averaged; rerun the "
                "stale one on the current data or pass a --runs folder that holds one version only."
            )


# Where `make table2` and `make table2-smoke` write their runs (the Makefile's RUNS and SMOKE_DIR).
DEFAULT_RUNS = Path("outputs/table2")
SMOKE_RUNS = Path("outputs/table2-smoke")


def has_runs(root: str | os.PathLike) -> bool:
    """Whether ``root`` holds at least one finished run (a ``metrics.json`` below it)."""
    root = Path(root)
    return root.is_dir() and next(root.rglob("metrics.json"), None) is not None


def resolve_runs(runs: str | os.PathLike | None) -> Path:
    """The folder of runs to read: ``runs`` when given; else ``outputs/table2`` (the full sweep)
    once it has a finished run, else ``outputs/table2-smoke`` when that has one, so
    ``make table2-smoke && make report`` works on a fresh clone (a note says so).

    Raises:
        SeqrecError: nothing was given and neither folder holds a finished run; the message
            says what to run.
    """
    if runs is not None:
        return Path(runs)
    if has_runs(DEFAULT_RUNS):
        return DEFAULT_RUNS
    if has_runs(SMOKE_RUNS):
        log.warning("No finished run in %s yet: using the smoke runs in %s.", DEFAULT_RUNS, SMOKE_RUNS)
        return SMOKE_RUNS
    raise SeqrecError(
        f"No finished run under '{DEFAULT_RUNS}' (no metrics.json). Train first: 'make table2' (the "
        f"full sweep into {DEFAULT_RUNS}), or the 2-epoch LastFM smoke 'make table2-smoke' (into "
        f"{SMOKE_RUNS}), or pass --runs <a folder of finished runs>."
    )
