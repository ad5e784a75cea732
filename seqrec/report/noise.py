"""How far a cell of Table 2 may lie from the paper's number before it counts as a difference.

Noise: a cell's ``noise`` is ``sqrt(SE_users² + s_seeds²)``, where ``SE_users`` is the standard
error of the test mean over users (per-user standard deviation / sqrt(users), averaged over seeds)
and ``s_seeds`` the standard deviation over seeds (0 with one seed): the spread one run of the
cell would have. ``z = (ours − paper) / noise``; a cell with ``|z| > 2`` is outside noise. A cell
of one seed has no seed spread in its noise, so its verdict says ``outside, 1 seed``: more seeds
decide it.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from seqrec.report.runs import read_per_user

Z_OUTSIDE = 2.0


def cell_noise(runs: pd.DataFrame) -> pd.DataFrame:
    """Per dataset × model × loss: seeds, mean, std over seeds and ``noise`` (module docstring)
    of test HR@10 and NDCG@10. Reads every run's per-user test metrics.

    Returns:
        DataFrame with dataset, model, loss, n_seeds, ``valid/ndcg@10`` (mean over seeds: what a
        cell is chosen by) and, for m in ``hr@10``, ``ndcg@10``: ``<m>``, ``<m>_std`` (NaN for one
        seed), ``<m>_noise``.
    """
    rows = []
    for (dataset, model, loss), group in runs.groupby(["dataset", "model", "loss"], sort=False):
        row = {"dataset": dataset, "model": model, "loss": loss, "n_seeds": len(group)}
        row["valid/ndcg@10"] = float(group["valid/ndcg@10"].astype(float).mean())
        per_user = [read_per_user(d) for d in group["run_dir"]]
        for m in ("hr@10", "ndcg@10"):
            values = group[f"test/{m}"].astype(float)
            se_users = float(np.mean([u[m].std(ddof=1) / math.sqrt(len(u)) for u in per_user]))
            s_seeds = float(values.std(ddof=1)) if len(values) > 1 else 0.0
            row.update(
                {
                    m: float(values.mean()),
                    f"{m}_std": s_seeds if len(values) > 1 else math.nan,
                    f"{m}_noise": math.hypot(se_users, s_seeds),
                }
            )
        rows.append(row)
    return pd.DataFrame(rows)


def ndcg_z(cells: pd.DataFrame, paper: pd.DataFrame) -> pd.Series:
    """Per row of :func:`cell_noise`'s frame: ``z = (ours − paper) / noise`` of test NDCG@10
    (module docstring); NaN where the paper has no such cell. Index: that of ``cells``."""
    paper_ndcg = paper[paper["metric"] == "ndcg@10"].set_index(["dataset", "model", "loss"])["value"]
    ref = [paper_ndcg.get((r.dataset, r.model, r.loss), math.nan) for r in cells.itertuples()]
    return (cells["ndcg@10"] - pd.Series(ref, index=cells.index, dtype=float)) / cells["ndcg@10_noise"]


def noise_verdict(z: float, n_seeds: int) -> str:
    """``within`` (|z| <= 2), ``outside``, or ``outside, 1 seed``: a single seed's noise lacks the
    seed spread, so more seeds decide it (module docstring)."""
    if abs(z) <= Z_OUTSIDE:
        return "within"
    return "outside, 1 seed" if n_seeds == 1 else "outside"
