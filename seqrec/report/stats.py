"""Paired t-tests of a proposed loss (default CCE) against baselines (default BCE and CE) on
per-user test metrics.

Li et al. (AAAI 2023), RQ1: "we perform t-test on the results, which shows that the performance of
all models using the proposed CCE loss are significantly different from that of using BCE or CE (at
significant level p < .001)". The paper does not say which t-test; we use the two-sided paired
test (``scipy.stats.ttest_rel``) over the test users, which is what per-user metrics of two models
on the same users call for: ``d_u = proposed_u - baseline_u``, ``t = mean(d) / (sd(d) / sqrt(n))``
with ``sd`` the sample standard deviation (ddof = 1), ``n - 1`` degrees of freedom.

With several seeds per loss, each user's metric is first averaged over the seeds of that loss, then
the seed-averaged users are paired (so n is the number of users, not users × seeds).
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

from seqrec.errors import SeqrecError
from seqrec.evaluation import METRICS
from seqrec.report.markdown import markdown_table
from seqrec.report.paper import BASELINES, DATASET_ORDER, MARKER, MARKER_MD, MODEL_ORDER, PROPOSED, loss_name, ordered
from seqrec.report.runs import check_same_data, read_per_user

ALPHA = 1e-3  # the paper's significance level
SIGNIFICANCE_COLUMNS = (
    "dataset",
    "model",
    "metric",
    "proposed",
    "baseline",
    "n_users",
    "n_seeds_proposed",
    "n_seeds_baseline",
    "mean_proposed",
    "mean_baseline",
    "t",
    "p",
    "marker",
)


@dataclass(frozen=True)
class TTest:
    """Result of a paired t-test: statistic ``t`` (> 0 when the first sample is larger), two-sided
    ``p``, and ``n`` pairs. ``t`` and ``p`` are NaN when undefined (n < 2 or all differences 0)."""

    t: float
    p: float
    n: int


def paired_ttest(x, y) -> TTest:
    """Two-sided paired t-test of ``x`` against ``y`` (same length, pair i = (x[i], y[i])).

    Raises:
        ValueError: the two samples differ in length.
    """
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    if x.shape != y.shape:
        raise ValueError(f"paired samples differ in length: {x.shape} vs {y.shape}")
    n = int(x.size)
    if n < 2 or np.all(x == y):
        return TTest(math.nan, math.nan, n)
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        # Constant non-zero differences give sd = 0 (t = ±inf, p = 0); scipy warns but is right.
        warnings.simplefilter("ignore", RuntimeWarning)
        res = stats.ttest_rel(x, y)
    return TTest(float(res.statistic), float(res.pvalue), n)


def significance_marker(p: float, alpha: float = ALPHA) -> str:
    """``"***"`` when ``p < alpha`` (the paper's p < .001), else ``""`` (also for NaN)."""
    return MARKER if p < alpha else ""


def significance_table(
    runs: pd.DataFrame, proposed: str = PROPOSED, baselines: tuple[str, ...] | list[str] = BASELINES
) -> pd.DataFrame:
    """Test ``proposed`` against each of ``baselines`` for every dataset × model × metric that has
    a run of the proposed loss and of that baseline.

    Reads: ``per_user_test.csv`` of every run of those losses in ``runs`` (a ``collect_runs`` frame).

    Returns:
        DataFrame with ``SIGNIFICANCE_COLUMNS`` (metric in lower case, e.g. ``ndcg@10``; ``t > 0``
        means the proposed loss is better), ordered by dataset, model, baseline (in ``baselines``
        order), metric. Empty when no dataset × model has both.

    Raises:
        SeqrecError: two runs of one dataset × model carry different ``data_fingerprint`` or
            evaluated different user sets (the message names both run directories), or a
            per-user file is missing/malformed.
    """
    runs = runs[runs["loss"].isin((proposed, *baselines))]
    rows = []
    for dataset in ordered(runs["dataset"], DATASET_ORDER):
        for model in ordered(runs.loc[runs["dataset"] == dataset, "model"], MODEL_ORDER):
            group = runs[(runs["dataset"] == dataset) & (runs["model"] == model)]
            losses = set(group["loss"])
            if proposed not in losses or not losses & set(baselines):
                continue
            check_same_data(group)
            users = seed_averaged_users(group, proposed)
            ours = users[proposed]
            for baseline in (b for b in baselines if b in users):
                base = users[baseline].loc[ours.index]  # same user set, checked; align the order
                for metric in (m for m in METRICS if m in ours.columns and m in base.columns):
                    res = paired_ttest(ours[metric], base[metric])
                    rows.append(
                        {
                            "dataset": dataset,
                            "model": model,
                            "metric": metric,
                            "proposed": proposed,
                            "baseline": baseline,
                            "n_users": res.n,
                            "n_seeds_proposed": int((group["loss"] == proposed).sum()),
                            "n_seeds_baseline": int((group["loss"] == baseline).sum()),
                            "mean_proposed": float(ours[metric].mean()),
                            "mean_baseline": float(base[metric].mean()),
                            "t": res.t,
                            "p": res.p,
                            "marker": significance_marker(res.p),
                        }
                    )
    return pd.DataFrame(rows, columns=list(SIGNIFICANCE_COLUMNS))


def seed_averaged_users(group: pd.DataFrame, reference: str, by: str = "loss") -> dict[str, pd.DataFrame]:
    """Per value of the column ``by`` (a loss, a configuration), the per-user test metrics averaged
    over its seeds (index user_id, sorted): what a paired t-test over users pairs.

    Args:
        group: runs of one dataset (``collect_runs`` rows: ``run_dir`` and ``by``).
        reference: the value of ``by`` whose first run's users every other run must have.
    Raises:
        SeqrecError: a run evaluated other users than the reference (both folders named).
    """
    ref = group[group[by] == reference].iloc[0]
    ref_users = read_per_user(ref.run_dir)
    out = {}
    for loss, runs in group.groupby(by, sort=False):
        frames = []
        for run in runs.itertuples():
            per_user = ref_users if run.run_dir == ref.run_dir else read_per_user(run.run_dir)
            _check_same_users(ref.run_dir, ref_users.index, run.run_dir, per_user.index)
            frames.append(per_user)
        out[loss] = pd.concat(frames).groupby(level="user_id").mean().sort_index()
    return out


def _check_same_users(dir_a: str, users_a: pd.Index, dir_b: str, users_b: pd.Index) -> None:
    only_a, only_b = users_a.difference(users_b), users_b.difference(users_a)
    if len(only_a) or len(only_b):
        example = list(only_a[:3]) or list(only_b[:3])
        raise SeqrecError(
            f"Cannot pair runs '{dir_a}' and '{dir_b}': they evaluated different users "
            f"({len(only_a)} only in the first, {len(only_b)} only in the second, e.g. {example}). "
            "A paired t-test needs the same test users; rerun both on the same preprocessed data "
            "and evaluation settings."
        )


def significance_markdown(sig: pd.DataFrame) -> str:
    """Markdown table of ``significance_table`` output (one row per dataset × model × metric ×
    baseline), with a one-line legend."""
    legend = (
        "Paired two-sided t-test on per-user test metrics, the proposed loss vs each baseline (users "
        f"paired by user_id, seeds averaged per user first). t > 0: proposed better. {MARKER_MD}: p < {ALPHA:g}."
    )
    head = [
        "Dataset",
        "Model",
        "Metric",
        "Proposed",
        "Baseline",
        "n users",
        "seeds (proposed/base)",
        "mean proposed",
        "mean baseline",
        "t",
        "p",
        "",
    ]
    rows = [
        [
            r.dataset,
            r.model,
            r.metric.upper(),
            loss_name(r.proposed),
            loss_name(r.baseline),
            r.n_users,
            f"{r.n_seeds_proposed}/{r.n_seeds_baseline}",
            f"{r.mean_proposed:.4f}",
            f"{r.mean_baseline:.4f}",
            f"{r.t:.3f}",
            f"{r.p:.3g}",
            MARKER_MD if r.marker else "",
        ]
        for r in sig.itertuples()
    ]
    if not rows:
        rows = [["(no dataset × model has both a run of the proposed loss and of a baseline)"] + [""] * 11]
    return f"{legend}\n\n{markdown_table(pd.DataFrame(rows, columns=head), left=5)}\n"


def significance_csv(sig: pd.DataFrame) -> str:
    """CSV text of ``significance_table`` output (metric written as in the paper, e.g. HR@5)."""
    return sig.assign(metric=sig["metric"].str.upper()).to_csv(index=False)
