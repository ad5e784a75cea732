"""RQ2 training-efficiency curves, as Fig. 2 of Li et al. (AAAI 2023).

For each dataset one PNG ``rq2_<dataset>.png``: one panel per model (gru4rec, sasrec, s3rec, then
others), x = cumulative training wall-clock seconds at the end of each epoch (``train_seconds_cum``,
evaluation time excluded), y = test NDCG@10 after that epoch, one line per loss, labelled with the
run's mean training seconds per epoch, e.g. ``CCE (1.23 s/epoch)``.

With several seeds, each curve is the run with the smallest seed of that dataset × model × loss,
not a mean: seeds stop early at different epochs and take different times, so a mean curve would
need an invented common time axis.

Figures are drawn with matplotlib's object API on the Agg canvas (no pyplot, no global backend
switch), so this works on machines without a display and inside tests.
"""

from __future__ import annotations

import io
import os
from pathlib import Path

import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from seqrec.atomic import atomic_write
from seqrec.report.paper import (
    DATASET_NAMES,
    DATASET_ORDER,
    LOSS_ORDER,
    LOSS_STYLE,
    MODEL_NAMES,
    MODEL_ORDER,
    loss_name,
    ordered,
)
from seqrec.report.runs import read_epochs


def load_curves(runs: pd.DataFrame) -> pd.DataFrame:
    """The per-epoch curves to plot, one run (smallest seed) per dataset × model × loss.

    Reads: ``epochs.csv`` of those runs.

    Returns:
        Tidy frame: dataset, model, loss, seed, run_dir, epoch, train_seconds_cum, ndcg10,
        seconds_per_epoch (the run's mean ``epoch_seconds``).

    Raises:
        SeqrecError: an ``epochs.csv`` is missing or lacks a needed column.
    """
    first = runs.sort_values("seed").groupby(["dataset", "model", "loss"], sort=False).head(1)
    frames = []
    for run in first.itertuples():
        ep = read_epochs(run.run_dir)
        frames.append(
            pd.DataFrame(
                {
                    "dataset": run.dataset,
                    "model": run.model,
                    "loss": run.loss,
                    "seed": run.seed,
                    "run_dir": run.run_dir,
                    "epoch": ep["epoch"],
                    "train_seconds_cum": ep["train_seconds_cum"],
                    "ndcg10": ep["test/ndcg@10"],
                    "seconds_per_epoch": ep["epoch_seconds"].mean(),
                }
            )
        )
    return pd.concat(frames, ignore_index=True)


def rq2_figure(curves: pd.DataFrame, dataset: str) -> Figure:
    """One figure for ``dataset``: a panel per model, a line per loss (``load_curves`` frame)."""
    data = curves[curves["dataset"] == dataset]
    models = ordered(data["model"], MODEL_ORDER)
    fig = Figure(figsize=(4.2 * len(models), 3.4), layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, len(models), squeeze=False)[0]
    for ax, model in zip(axes, models):
        panel = data[data["model"] == model]
        for loss in ordered(panel["loss"], LOSS_ORDER):
            line = panel[panel["loss"] == loss]
            color, dash = LOSS_STYLE.get(loss, (None, ":"))
            label = f"{loss_name(loss)} ({line['seconds_per_epoch'].iloc[0]:.2f} s/epoch)"
            ax.plot(
                line["train_seconds_cum"],
                line["ndcg10"],
                dash,
                color=color,
                marker="o",
                markersize=2.5,
                linewidth=1.4,
                label=label,
            )
        ax.set_title(MODEL_NAMES.get(model, model))
        ax.set_xlabel("training time (s)")
        ax.set_ylabel("test NDCG@10")
        ax.grid(alpha=0.3)
        ax.legend(loc="lower right", fontsize="small")
    seeds = ", ".join(map(str, sorted(set(data["seed"]))))
    fig.suptitle(
        f"{DATASET_NAMES.get(dataset, dataset)}: test NDCG@10 during training "
        f"(seed {seeds}; the lowest seed of each loss)"
    )
    return fig


def rq2_figures(runs: pd.DataFrame) -> dict[str, Figure]:
    """``{dataset: Figure}`` for every dataset in ``runs`` (a ``collect_runs`` frame). Reads all
    ``epochs.csv`` files first, so a missing one fails before any figure exists."""
    curves = load_curves(runs)
    return {d: rq2_figure(curves, d) for d in ordered(curves["dataset"], DATASET_ORDER)}


def write_rq2(figures: dict[str, Figure], out_dir: str | os.PathLike, dpi: int = 150) -> list[Path]:
    """Write each figure to ``out_dir/rq2_<dataset>.png`` atomically; returns the paths."""
    paths = []
    for dataset, fig in figures.items():
        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=dpi)
        paths.append(atomic_write(Path(out_dir) / f"rq2_{dataset}.png", buf.getvalue()))
    return paths
