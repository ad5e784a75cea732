"""Table 2 (RQ1) of Li et al. (AAAI 2023), for any proposed loss against any baselines.

Default: CCE against BCE and CE, the paper's table (:mod:`seqrec.report.paper` holds its names,
numbers and layout). A cell is the mean test metric over seeds (``± std`` with ddof = 1 when
seeds > 1). Marks, all computed on the unrounded means:

* Improve = (proposed − max(baselines)) / max(baselines) × 100 %; blank unless every loss of the
  table has a cell; negative values (degradations) carry ↓.
* bold: the best of all losses (only when all exist; ties are all bold).
* underline: the best baseline (only when every baseline exists; ties all underlined).
* ``***`` next to the proposed loss: the paired t-test (:mod:`seqrec.report.stats`) against the
  best baseline present (the first in ``baselines`` order on a tie) has p < .001.

Files (:func:`write_table2`): ``table2.md``, ``table2.tex``, ``table2.csv`` (wide: ``dataset,
metric, <model>_<loss>…, <model>_improve_pct`` per model), ``table2_vs_paper.csv`` (tidy: one row
per dataset × model × loss × metric found in our runs or in the paper; ``ours, ours_std, n_seeds,
paper, rel_diff_pct`` with rel_diff_pct = (ours / paper − 1) × 100, blank where either side is
missing) and ``table2_vs_paper.md``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from seqrec.atomic import atomic_write
from seqrec.evaluation import METRICS
from seqrec.report.paper import (
    BASELINES,
    DATASET_ORDER,
    LOSS_ORDER,
    MODEL_ORDER,
    PROPOSED,
    ordered,
    to_latex,
    to_markdown,
    to_wide_csv,
    vs_paper_markdown,
)
from seqrec.report.runs import check_same_data

KEYS = ["dataset", "model", "loss", "metric"]


@dataclass(frozen=True)
class Table2:
    """Table 2 in data form.

    ``rows``: one row per dataset × model × metric (paper order) with columns dataset, model,
    metric (lower case), ``<loss>`` (mean), ``<loss>_std``, ``<loss>_n`` (seeds) for every loss
    of the table, ``improve`` (%), ``bold_<loss>``, ``ul_<baseline>`` (bool) and ``marker`` (str).
    ``vs_paper``: the tidy comparison with the paper (see module docstring), or None.
    ``proposed``/``baselines``: the losses compared.
    """

    rows: pd.DataFrame
    vs_paper: pd.DataFrame | None = None
    proposed: str = PROPOSED
    baselines: tuple[str, ...] = BASELINES

    @property
    def losses(self) -> list[str]:
        """The table's loss columns: the baselines, then the proposed loss."""
        return [*self.baselines, self.proposed]


def cell_stats(runs: pd.DataFrame) -> pd.DataFrame:
    """Mean, std (ddof = 1, NaN for one seed) and number of seeds of every test metric per
    dataset × model × loss (a tidy frame with columns KEYS + mean, std, n_seeds)."""
    long = runs.melt(
        id_vars=["dataset", "model", "loss"],
        value_vars=[f"test/{m}" for m in METRICS],
        var_name="metric",
        value_name="value",
    ).dropna(subset=["value"])
    long["metric"] = long["metric"].str.removeprefix("test/")
    grouped = long.groupby(KEYS, sort=False)["value"]
    return grouped.agg(mean="mean", std="std", n_seeds="count").reset_index()


def build_table2(
    runs: pd.DataFrame,
    paper_df: pd.DataFrame | None = None,
    significance: pd.DataFrame | None = None,
    proposed: str = PROPOSED,
    baselines: tuple[str, ...] | list[str] = BASELINES,
) -> Table2:
    """Build Table 2 from a ``collect_runs`` frame.

    Args:
        runs: one row per run; only ``proposed`` and ``baselines`` enter Table 2 (all losses
            enter vs_paper).
        paper_df: ``paper.load_paper()`` frame; when given, ``Table2.vs_paper`` is filled.
        significance: ``stats.significance_table`` frame of the same losses; when given, the
            proposed loss's cells get their marker.
        proposed: the loss whose improvement is measured (``cce``).
        baselines: the losses it is compared with, in column order (``bce``, ``ce``).

    Raises:
        ValueError: ``proposed`` is among ``baselines`` or ``baselines`` is empty.
        SeqrecError: two runs of one dataset × model have different data fingerprints.
    """
    baselines = tuple(baselines)
    if not baselines or proposed in baselines:
        raise ValueError(f"need at least one baseline other than the proposed loss {proposed!r}, got {baselines}")
    check_same_data(runs)
    losses = [*baselines, proposed]
    cells = cell_stats(runs[runs["loss"].isin(losses)])
    wide = cells.pivot(index=["dataset", "model", "metric"], columns="loss", values=["mean", "std", "n_seeds"])
    rows = pd.DataFrame(index=wide.index)
    for loss in losses:
        for stat, suffix in (("mean", ""), ("std", "_std"), ("n_seeds", "_n")):
            col = (stat, loss)
            rows[loss + suffix] = wide[col].astype(float) if col in wide.columns else np.nan
    rows = _sort(rows.reset_index(), ["dataset", "metric", "model"])

    base = rows[list(baselines)]
    every_base, every = base.notna().all(axis=1), rows[losses].notna().all(axis=1)
    best_base = base.max(axis=1).where(every_base)
    rows["improve"] = ((rows[proposed] - best_base) / best_base * 100).where(every & (best_base > 0))
    best = rows[losses].max(axis=1)
    for loss in losses:
        rows[f"bold_{loss}"] = every & (rows[loss] == best)
    for loss in baselines:
        rows[f"ul_{loss}"] = every_base & (rows[loss] == best_base)
    rows["marker"] = _markers(rows, significance, proposed, baselines)
    vs_paper = compare_with_paper(runs, paper_df) if paper_df is not None else None
    return Table2(rows=rows, vs_paper=vs_paper, proposed=proposed, baselines=baselines)


def _sort(df: pd.DataFrame, by: list[str]) -> pd.DataFrame:
    """Sort by the paper's orders: datasets, models, losses, metrics (others alphabetically)."""
    prefs = {"dataset": DATASET_ORDER, "model": MODEL_ORDER, "loss": LOSS_ORDER, "metric": METRICS}
    rank = {k: {n: i for i, n in enumerate(ordered(df[k], prefs[k]))} for k in by}
    return df.sort_values(by, key=lambda s: s.map(rank[s.name]), kind="stable").reset_index(drop=True)


def _markers(
    rows: pd.DataFrame, significance: pd.DataFrame | None, proposed: str, baselines: tuple[str, ...]
) -> list[str]:
    """Per row, the marker of the proposed loss's t-test against the best baseline present."""
    if significance is None or significance.empty:
        return [""] * len(rows)
    lookup = {(r.dataset, r.model, r.metric, r.proposed, r.baseline): r.marker for r in significance.itertuples()}
    values = rows[list(baselines)].to_numpy(dtype=float)  # [rows, baselines]
    out = []
    for r, v in zip(rows.itertuples(), values):
        if np.isnan(v).all():
            out.append("")
            continue
        baseline = baselines[int(np.nanargmax(v))]  # the first on a tie
        out.append(lookup.get((r.dataset, r.model, r.metric, proposed, baseline), ""))
    return out


def compare_with_paper(runs: pd.DataFrame, paper_df: pd.DataFrame) -> pd.DataFrame:
    """Tidy ours-vs-paper frame: every dataset × model × loss × metric in either source, with
    ours, ours_std, n_seeds, paper, rel_diff_pct (= (ours / paper − 1) × 100). Cells missing on one
    side stay NaN (nothing is invented)."""
    ours = cell_stats(runs).rename(columns={"mean": "ours", "std": "ours_std"})
    paper = paper_df.rename(columns={"value": "paper"})
    merged = ours.merge(paper, on=KEYS, how="outer")
    merged["n_seeds"] = merged["n_seeds"].astype("Int64")  # NaN-able int: blank for paper-only cells
    merged["rel_diff_pct"] = ((merged["ours"] / merged["paper"] - 1) * 100).where(merged["paper"] != 0)
    merged = merged[[*KEYS, "ours", "ours_std", "n_seeds", "paper", "rel_diff_pct"]]
    return _sort(merged, ["dataset", "model", "loss", "metric"])


def write_table2(table: Table2, out_dir: str | os.PathLike) -> list[Path]:
    """Write table2.md/.csv/.tex and, when ``table.vs_paper`` is set, table2_vs_paper.md/.csv
    into ``out_dir`` (each atomically). Returns the paths written."""
    out = Path(out_dir)
    paths = [
        atomic_write(out / "table2.md", to_markdown(table)),
        atomic_write(out / "table2.csv", to_wide_csv(table)),
        atomic_write(out / "table2.tex", to_latex(table)),
    ]
    if table.vs_paper is not None:
        vs = table.vs_paper.assign(metric=table.vs_paper["metric"].str.upper())
        paths += [
            atomic_write(out / "table2_vs_paper.md", vs_paper_markdown(table)),
            atomic_write(out / "table2_vs_paper.csv", vs.to_csv(index=False)),
        ]
    return paths
