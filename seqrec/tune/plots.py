"""Plots of a search: the objective per trial and against each parameter (PNG)."""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd

from seqrec.atomic import atomic_write


def plot_search(
    trials: pd.DataFrame, params: list[str], monitor: str, out_dir: Path, categorical: frozenset[str] = frozenset()
) -> list[Path]:
    """``search_history.png`` (objective per trial, best so far) and ``search_params.png`` (the
    objective against each parameter: the ``categorical`` ones (``choice(…)``) at evenly spaced
    positions in their values' order, so that ``0, 1e-6, …, 1e-3`` are told apart; a log axis
    for log-spaced ranges). Returns the paths."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    done = trials[trials["value"].notna()]
    paths = []
    fig, ax = plt.subplots(figsize=(6.4, 4))
    ax.scatter(done["number"], done["value"], s=18, label="complete trial")
    failed = trials[trials["state"] == "FAIL"]
    if len(failed):
        ax.scatter(
            failed["number"],
            [done["value"].min() if len(done) else 0] * len(failed),
            marker="x",
            color="tab:red",
            label="failed trial",
        )
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
        if p in categorical or not numeric:  # evenly spaced values, in their order
            values = sorted(x.unique(), key=lambda v: (not numeric, v if numeric else str(v)))
            ax.scatter([values.index(v) for v in x], done["value"], s=12)
            ax.set_xticks(range(len(values)), [f"{v:g}" if numeric else str(v) for v in values])
        else:
            ax.scatter(x, done["value"], s=12)
            positive = x[x > 0]
            if len(positive) == len(x) and len(x) and x.max() / x.min() >= 50:
                ax.set_xscale("log")
        ax.set_title(p, fontsize=9)
    for ax in list(axes.flat)[len(params) :]:
        ax.axis("off")
    fig.supylabel(f"{monitor} (validation)")
    fig.tight_layout()
    paths.append(_save(fig, out_dir / "search_params.png"))
    plt.close(fig)
    return paths


def _save(fig, path: Path) -> Path:
    return atomic_write(path, lambda f: fig.savefig(f, format="png", dpi=110))
