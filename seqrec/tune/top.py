"""Selecting a search's best configuration on the mean of several seeds (``--top K``).

A search trains each trial once, with one seed; with many trials, the highest single objective is
partly the luckiest seed, and a configuration chosen that way tends to fall back when it is rerun.
:func:`rerun_top` trains the ``K`` best complete trials again with more seeds (the trial's own run
counts as its first seed) into ``<search>/top/trial<N>/seed<s>``, and :func:`pick` chooses the
configuration with the highest mean objective over the seeds. Still validation only: the
objective is each run's ``trainer.monitor`` metric.
"""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd

from seqrec.errors import SeqrecError
from seqrec.tune.compare import rerun
from seqrec.tune.experiment import trial_overrides
from seqrec.tune.study import trial_metrics


def rerun_top(trials: pd.DataFrame, k: int, seeds: int, search_dir: Path, extra: list[str]) -> pd.DataFrame:
    """Rerun the ``k`` best complete trials so that each has ``seeds`` seeds, and tabulate them.

    Args:
        trials: :func:`seqrec.tune.study.trials_table`.
        k: how many trials (the highest objectives).
        seeds: seeds per trial, its own run included (its seed ``s`` from ``metrics.json``, then
            ``s + 1``, …).
        search_dir: the search folder; reruns go to ``<search_dir>/top/trial<N>/seed<s>`` (a
            repeated report skips finished ones).
        extra: extra train.py overrides (threads, progress).

    Returns:
        One row per trial, best mean first: ``number``, ``seeds`` (e.g. ``"42,43,44"``),
        ``mean``, ``std`` (ddof 1), ``single`` (the search's own objective) and ``run_dir``.

    Raises:
        SeqrecError: fewer than two seeds, no complete trial, or a rerun failed.
    """
    if seeds < 2:
        raise SeqrecError(f"--top-seeds {seeds}: a mean over seeds needs at least 2 seeds.")
    done = trials[(trials["state"] == "COMPLETE") & trials["value"].notna()]
    if done.empty:
        raise SeqrecError("No complete trial in this search to rerun; run or continue the search first.")
    rows = []
    for trial in done.nlargest(k, "value").to_dict("records"):
        run_dir = Path(trial["run_dir"])
        own = trial_metrics(run_dir)
        first, monitor = int(own["seed"]), own["monitor"]
        more = list(range(first + 1, first + seeds))
        choices, overrides = trial_overrides(run_dir)
        out = search_dir / "top" / f"trial{int(trial['number'])}"
        rerun(
            f"trial {int(trial['number'])}",
            [*(f"{g}={c}" for g, c in choices.items()), *(f"{key}={value}" for key, value in overrides.items())],
            more,
            out,
            extra,
        )
        values = [float(own[monitor])] + [float(trial_metrics(out / f"seed{s}")[monitor]) for s in more]
        mean = sum(values) / len(values)
        std = math.sqrt(sum((v - mean) ** 2 for v in values) / (len(values) - 1))
        rows.append(
            {
                "number": int(trial["number"]),
                "seeds": ",".join(str(s) for s in [first, *more]),
                "mean": mean,
                "std": std,
                "single": float(trial["value"]),
                "run_dir": str(run_dir),
            }
        )
    return pd.DataFrame(rows).sort_values(["mean", "number"], ascending=[False, True]).reset_index(drop=True)


def pick(trials: pd.DataFrame, top: pd.DataFrame) -> pd.Series:
    """The row of ``trials`` whose configuration has the highest mean objective in ``top`` (the
    first of :func:`rerun_top`'s table); its ``value`` stays the search's single-seed objective."""
    return trials.set_index("number", drop=False).loc[int(top.iloc[0]["number"])]
