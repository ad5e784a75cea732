"""The leaderboard: per dataset, the best NDCG@10 published on the S3-Rec files beside seqrec's
best configuration chosen on validation only, at ``max_len`` 50 (the paper's protocol) and at the
``max_len`` validation prefers.

A *configuration* is everything but the seed; its seeds are the runs below one folder:

* a Table 2 cell, ``results/table2/<dataset>/<model>-<loss>/seed<seed>/``;
* a configuration beyond Table 2 (another ``max_len``, BSARec, prefix samples, a tuned setting),
  ``results/leaderboard/<dataset>/<name>/seed<seed>/``, written by ``experiment=leaderboard`` into
  ``outputs/leaderboard`` and exported with ``python -m seqrec.report.export outputs/leaderboard
  --into results/leaderboard --keep-layout``.

The choice is the configuration with the highest mean validation NDCG@10 over its seeds, reported
with its test metrics: choosing by test NDCG@10 would report the luckiest test number, not a model
a user could have picked. A test number above the published one counts as *above* only with
:data:`CLAIM_SEEDS` seeds; with fewer the table says how many it rests on.

All configurations of a dataset must share its data (``data_fingerprint``) and its evaluation
(history masked or not and, where a test target repeats a history item, the same rule for it), or
their numbers are not comparable; :func:`comparable_runs` refuses a mix, naming the folders.
"""

from __future__ import annotations

import importlib.resources
import json
import math
import os
from pathlib import Path

import pandas as pd

from seqrec.errors import SeqrecError
from seqrec.report.archive import check_result_dir, is_result_dir
from seqrec.report.markdown import markdown_table
from seqrec.report.paper import DATASET_NAMES, MODEL_NAMES, PROPOSED, loss_name
from seqrec.report.protocol import PAPER_PROTOCOL, TABLE2_PROTOCOL, check_protocol, check_seeds_agree, flat_config
from seqrec.report.runs import check_same_data, read_metrics
from seqrec.report.stats import paired_ttest, seed_averaged_users

PROTOCOL_MAX_LEN = 50
CLAIM_SEEDS = 3
# describe() adds " (causal)" from the run's config (older causal runs are named bsarec)
DISPLAY_MODELS = {**MODEL_NAMES, "bsarec": "BSARec", "bsarec_causal": "BSARec"}


def collect_beyond(root: str | os.PathLike) -> pd.DataFrame:
    """Every finished run below ``root``, laid out ``<dataset>/<name>/seed<seed>/``, one row each.

    Returns:
        The columns of :func:`seqrec.report.runs.collect_runs` plus ``config`` (the ``<name>``
        folder; it may hold slashes); empty when ``root`` holds no run.
    Raises:
        SeqrecError: a run outside that layout, a result folder of another format, two runs
            with one dataset, configuration and seed, or seeds of one configuration that differ
            in another setting (:func:`seqrec.report.protocol.check_seeds_agree`).
    """
    root = Path(root)
    rows = []
    for path in sorted(root.rglob("metrics.json")):
        run = path.parent
        if is_result_dir(run):
            check_result_dir(run)
        parts = run.relative_to(root).parts
        row = read_metrics(path)
        if len(parts) < 3 or parts[0] != row["dataset"] or parts[-1] != f"seed{row['seed']}":
            raise SeqrecError(
                f"'{run}' is not laid out as <dataset>/<configuration>/seed<seed>/ below '{root}' "
                f"(its metrics.json says dataset {row['dataset']}, seed {row['seed']}). Export runs "
                "with `python -m seqrec.report.export outputs/leaderboard --into results/leaderboard "
                "--keep-layout`, from a sweep of experiment=leaderboard."
            )
        rows.append({**row, "config": "/".join(parts[1:-1])})
    runs = pd.DataFrame(rows)
    if not runs.empty:
        dup = runs.duplicated(["dataset", "config", "seed"], keep=False)
        if dup.any():
            a, b = runs.loc[dup, "run_dir"].iloc[:2]
            raise SeqrecError(f"'{a}' and '{b}' are the same dataset, configuration and seed; keep one.")
        check_seeds_agree(runs, ("dataset", "config"))
    return runs


def _run_settings(run_dir: str) -> dict:
    """What a run's ``config.yaml`` and ``metrics.json`` say of its history length, samples and
    evaluation.

    ``repeats_ranked`` is whether a test target that repeats a history item was ranked (True) or
    masked with the history (False), and None where no test target repeats one (both rules give
    the same numbers, e.g. on every benchmark file but Yelp). Configs written before an option
    existed lack it and get the behaviour of that time: one sample per sequence, repeated
    targets ranked.
    """
    config = flat_config(run_dir)  # the one reader of saved configs (seqrec.report.protocol)
    path = Path(run_dir) / "metrics.json"
    try:
        share = json.loads(path.read_text()).get("test/repeat_share")
    except (OSError, ValueError) as exc:
        raise SeqrecError(f"Cannot read '{path}' ({exc}); rebuild that result folder.") from exc
    if config.get("dataset.max_len") is None:
        raise SeqrecError(f"'{Path(run_dir) / 'config.yaml'}' has no dataset.max_len; rebuild that result folder.")
    mask_history = bool(config.get("eval.mask_history", True))
    rank_repeats = bool(config.get("eval.rank_repeats", True))
    return {
        "max_len": int(config["dataset.max_len"]),
        "samples": str(config.get("trainer.samples", "sequences")),
        "causal_filter": bool(config.get("model.causal_filter", False)),
        "mask_history": mask_history,
        "repeats_ranked": None if share == 0 else (rank_repeats or not mask_history),
    }


def comparable_runs(table2: pd.DataFrame, beyond: pd.DataFrame | None = None) -> pd.DataFrame:
    """Table 2 runs (``collect_runs``; configuration ``<model>-<loss>``) and runs beyond it
    (:func:`collect_beyond`) in one frame, checked to be comparable.

    Returns:
        The runs with ``config`` and the settings of their ``config.yaml`` (max_len, samples,
        causal_filter, mask_history, repeats_ranked; :func:`_run_settings`).
    Raises:
        SeqrecError: a run departs from the paper's protocol (:mod:`seqrec.report.protocol`);
            runs of one dataset were trained on different data or evaluated differently (both
            folders named). (Seeds of one configuration that differ in a setting, ``max_len``
            included, are refused when they are collected.)
    """
    check_protocol(table2, TABLE2_PROTOCOL, "Table 2")
    frames = [table2.assign(config=table2["model"] + "-" + table2["loss"])]
    if beyond is not None and not beyond.empty:
        check_protocol(beyond, PAPER_PROTOCOL, "the leaderboard")
        frames.append(beyond)
    runs = pd.concat(frames, ignore_index=True)
    check_same_data(runs, by=("dataset",))
    runs = runs.join(pd.DataFrame([_run_settings(d) for d in runs["run_dir"]], index=runs.index))
    for dataset, group in runs.groupby("dataset", sort=False):
        # a run without repeated targets agrees with either rule
        known = group[group["repeats_ranked"].notna()]
        for column, option in (("mask_history", "eval.mask_history"), ("repeats_ranked", "eval.rank_repeats")):
            rows = group if column == "mask_history" else known
            if rows[column].nunique() > 1:
                a = rows.iloc[0]
                b = rows[rows[column] != a[column]].iloc[0]
                raise SeqrecError(
                    f"'{a.run_dir}' and '{b.run_dir}' rank {dataset}'s test users differently ({option} "
                    f"{a[column]} vs {b[column]}), so one leaderboard cannot compare them. Retrain one "
                    "with the other's eval settings (experiment=leaderboard uses Table 2's: "
                    "eval.mask_history=true eval.rank_repeats=false)."
                )
    return runs


def configurations(runs: pd.DataFrame) -> pd.DataFrame:
    """One row per dataset × configuration of :func:`comparable_runs`.

    Returns:
        DataFrame with dataset, config, model, loss, max_len, samples, causal_filter, n_seeds,
        ``valid/ndcg@10`` (mean over seeds) and, for m in ``ndcg@10``, ``hr@10``: ``<m>`` (test
        mean) and ``<m>_std`` (NaN for one seed).
    """
    rows = []
    for (_, _), group in runs.groupby(["dataset", "config"], sort=False):
        first = group.iloc[0]
        row = {k: first[k] for k in ("dataset", "config", "model", "loss", "max_len", "samples", "causal_filter")}
        row["n_seeds"] = len(group)
        row["valid/ndcg@10"] = float(group["valid/ndcg@10"].astype(float).mean())
        for m in ("ndcg@10", "hr@10"):
            values = group[f"test/{m}"].astype(float)
            row[m] = float(values.mean())
            row[f"{m}_std"] = float(values.std(ddof=1)) if len(values) > 1 else math.nan
        rows.append(row)
    return pd.DataFrame(rows)


def load_published(path: str | os.PathLike | None = None) -> pd.DataFrame:
    """The best published results on the S3-Rec files, one row per dataset.

    Reads: ``path``, by default ``seqrec/resources/published_best.csv`` (dataset, model, venue,
    year, ndcg@10, hr@10, protocol).
    Returns:
        That table with ``ndcg@10``/``hr@10`` renamed ``ndcg10``/``hr10``.
    """
    source = importlib.resources.files("seqrec.resources") / "published_best.csv" if path is None else Path(path)
    with source.open() as f:
        return pd.read_csv(f).rename(columns={"ndcg@10": "ndcg10", "hr@10": "hr10"})


def describe(config: pd.Series, with_max_len: bool = False) -> str:
    """``BSARec (causal) + CE, prefix samples, max_len 200``: what a configuration trains."""
    text = DISPLAY_MODELS.get(config.model, config.model)
    text += " (causal)" if config.causal_filter else ""
    text += f" + {loss_name(config.loss)}"
    text += ", prefix samples" if config.samples == "prefixes" else ""
    return text + (f", max_len {config.max_len}" if with_max_len else "")


def best_on_validation(configs: pd.DataFrame) -> pd.Series | None:
    """The configuration with the highest mean validation NDCG@10 (the first on a tie), or None."""
    return None if configs.empty else configs.loc[configs["valid/ndcg@10"].idxmax()]


def _cell(best: pd.Series | None, with_max_len: bool) -> str:
    if best is None:
        return "not run"
    spread = "" if pd.isna(best["ndcg@10_std"]) else f" ± {best['ndcg@10_std']:.4f}"
    seeds = f"{int(best.n_seeds)} seed{'s' if best.n_seeds > 1 else ''}"
    return f"{best['ndcg@10']:.4f}{spread} ({best['hr@10']:.4f}), {describe(best, with_max_len)}, {seeds}"


def _verdict(best: pd.Series | None, published: float) -> str:
    """``below (-0.0041)``, ``above (+0.0012)``, or ``above on 1 seed (+0.0012)`` when a claim
    would rest on fewer than CLAIM_SEEDS seeds."""
    if best is None:
        return "not run"
    diff = best["ndcg@10"] - published
    if diff <= 0:
        return f"below ({diff:+.4f})"
    if best.n_seeds >= CLAIM_SEEDS:
        return f"above ({diff:+.4f})"
    return f"above on {int(best.n_seeds)} seed{'s' if best.n_seeds > 1 else ''} ({diff:+.4f})"


def leaderboard_block(configs: pd.DataFrame, published: pd.DataFrame, paper: pd.DataFrame) -> str:
    """The leaderboard as markdown (module docstring): per dataset of ``published``, the best
    published NDCG@10 (HR@10), the CCE paper's best CCE cell, and seqrec's configuration chosen
    on validation at ``max_len`` 50 and over every ``max_len``, with test NDCG@10 ± std over seeds
    (HR@10), and how each choice compares with the published number ("above" needs
    :data:`CLAIM_SEEDS` seeds; with fewer the cell says how many it rests on)."""
    cce = paper[(paper["loss"] == PROPOSED) & (paper["metric"] == "ndcg@10")]
    out = []
    for r in published.itertuples():
        ours = configs[configs["dataset"] == r.dataset] if not configs.empty else configs
        at_50 = best_on_validation(ours[ours["max_len"] == PROTOCOL_MAX_LEN]) if not ours.empty else None
        any_len = best_on_validation(ours)
        paper_best = cce[cce["dataset"] == r.dataset]
        paper_text = ""
        if not paper_best.empty:
            p = paper_best.loc[paper_best["value"].idxmax()]
            paper_text = f"{p.value:.4f} ({DISPLAY_MODELS.get(p.model, p.model)} + CCE)"
        out.append(
            [
                DATASET_NAMES.get(r.dataset, r.dataset),
                f"{r.ndcg10:.4f} ({r.hr10:.4f}), {r.model} ({r.venue} {r.year})",
                paper_text,
                _cell(at_50, with_max_len=False),
                _cell(any_len, with_max_len=True),
                f"max_len 50: {_verdict(at_50, r.ndcg10)}; chosen: {_verdict(any_len, r.ndcg10)}",
            ]
        )
    head = [
        "Dataset",
        "best published NDCG@10 (HR@10)",
        "CCE paper's best",
        "seqrec, max_len 50",
        "seqrec, max_len chosen on validation",
        "seqrec vs published (NDCG@10)",
    ]
    return markdown_table(pd.DataFrame(out, columns=head), left=6)


# The backbone comparison: BSARec as published, its causal variant with CCE, and the
# Table 2 SASRec + CCE cell, as experiment=leaderboard names their folders.
REFERENCE_CONFIG = "sasrec-cce"
BACKBONE_CONFIGS = {
    REFERENCE_CONFIG: "SASRec + CCE (Table 2)",
    "bsarec-ce-prefixes-len50": "BSARec + CE, prefix samples (as published)",
    "bsarec_causal-cce-sequences-len50": "BSARec (causal) + CCE",
}
# BSARec's own runs, test NDCG@10 and HR@10 at seed 42: the logs its authors published with the
# code (yehjin-shin/BSARec, src/output/BSARec_{LastFM,Beauty}_best.log), as in its paper.
BSAREC_PUBLISHED = {"lastfm": (0.0435, 0.0807), "beauty": (0.0611, 0.1008)}


def backbones_block(runs: pd.DataFrame) -> str:
    """BSARec as published, BSARec (causal) + CCE and SASRec + CCE per dataset with a BSARec run,
    as markdown: seeds, test NDCG@10 and HR@10 (mean ± std over seeds), BSARec's published number,
    and a paired two-sided t-test over test users (seeds averaged per user) against SASRec + CCE.

    Args:
        runs: :func:`comparable_runs` output.
    """
    chosen = runs[runs["config"].isin(BACKBONE_CONFIGS)]
    datasets = [
        d for d in chosen["dataset"].unique() if (chosen.loc[chosen["dataset"] == d, "model"] == "bsarec").any()
    ]
    if not datasets:
        return (
            '(no BSARec run yet: `python train.py -m "experiment=[bsarec_lastfm,leaderboard]" seeds=3`, and the '
            "same with `model=bsarec_causal loss=cce trainer.samples=sequences`)"
        )
    out = []
    for dataset in datasets:
        group = chosen[chosen["dataset"] == dataset]
        has_ref = (group["config"] == REFERENCE_CONFIG).any()
        users = seed_averaged_users(group, REFERENCE_CONFIG, by="config") if has_ref else {}
        for config, label in BACKBONE_CONFIGS.items():
            seeds = group[group["config"] == config]
            if seeds.empty:
                continue
            cells = [_fmt_seeds(seeds[f"test/{m}"].astype(float)) for m in ("ndcg@10", "hr@10")]
            published = BSAREC_PUBLISHED.get(dataset) if config == "bsarec-ce-prefixes-len50" else None
            test = ["", "", ""]
            if has_ref and config != REFERENCE_CONFIG:
                ref = users[REFERENCE_CONFIG]
                ours = users[config].loc[ref.index]
                res = paired_ttest(ours["ndcg@10"], ref["ndcg@10"])
                test = [f"{ours['ndcg@10'].mean() - ref['ndcg@10'].mean():+.4f}", f"{res.t:+.1f}", f"{res.p:.2g}"]
            out.append(
                [
                    DATASET_NAMES.get(dataset, dataset),
                    label,
                    str(len(seeds)),
                    *cells,
                    "" if published is None else f"{published[0]:.4f} ({published[1]:.4f})",
                    *test,
                ]
            )
    head = ["Dataset", "configuration", "seeds", "NDCG@10", "HR@10", "published NDCG@10 (HR@10)",
            "Δ NDCG@10 vs SASRec + CCE", "t", "p"]  # fmt: skip
    return markdown_table(pd.DataFrame(out, columns=head), left=2)


def _fmt_seeds(values: pd.Series) -> str:
    """``mean ± std`` over seeds (the mean alone for one seed)."""
    if len(values) == 1:
        return f"{values.iloc[0]:.4f}"
    return f"{values.mean():.4f} ± {values.std(ddof=1):.4f}"
