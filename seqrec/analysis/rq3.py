"""RQ3 of Li et al. (AAAI 2023) over finished runs: NDCG@10 at every input position of each
trained model (:mod:`seqrec.analysis.positions` computes it), as a CSV and a figure.

Files (``python -m seqrec.analysis.rq3 --runs <root>``): ``rq3_<dataset>.csv`` (dataset,
model, loss, seed, position, ndcg@10, hr@10, n_users, mask_history; one row per run × position)
and ``rq3.png`` (a panel per dataset — a row per model when several are plotted — NDCG@10 against
position, a line per loss averaged over seeds, markers at the valid/test positions).
"""

from __future__ import annotations

import argparse
import io
import logging
import os
import sys
from pathlib import Path

import pandas as pd
import torch
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from omegaconf import OmegaConf

from seqrec.analysis.positions import MAX_SCORES, per_position_metrics, position_ranks
from seqrec.atomic import atomic_write
from seqrec.devices import resolve_device
from seqrec.errors import SeqrecError
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
from seqrec.report.runs import collect_runs, resolve_runs
from seqrec.runs.cli import run_main, thread_count
from seqrec.runs.rundir import load_trained

log = logging.getLogger(__name__)

CSV_COLUMNS = ["dataset", "model", "loss", "seed", "position", "ndcg@10", "hr@10", "n_users", "mask_history"]


def select_runs(runs: pd.DataFrame, model: str | None) -> pd.DataFrame:
    """The runs to analyse: ``model`` (``None`` = gru4rec as in the paper, else every model;
    ``"all"`` = every model). Raises SeqrecError when an explicit model has no run."""
    if model == "all" or (model is None and "gru4rec" not in set(runs["model"])):
        if model is None:
            log.warning(
                "no gru4rec run found; analysing every model present: %s",
                ", ".join(ordered(runs["model"], MODEL_ORDER)),
            )
        return runs
    model = model or "gru4rec"
    chosen = runs[runs["model"] == model]
    if chosen.empty:
        raise SeqrecError(
            f"No finished {model} run under the given --runs folder (models found: "
            f"{', '.join(ordered(runs['model'], MODEL_ORDER))}). Pass one of those to --model, or "
            "--model all."
        )
    return chosen


def rq3_runs(
    runs_root: str | os.PathLike,
    model: str | None = None,
    data_dir: str | os.PathLike | None = None,
    device: str | torch.device = "cpu",
    mask_history: bool | None = None,
    max_scores: int = MAX_SCORES,
) -> pd.DataFrame:
    """Per-position metrics of every selected finished run under ``runs_root``.

    Args:
        model: see :func:`select_runs`.
        mask_history: ``None`` = each run's ``eval.mask_history``; True/False forces it.

    Returns:
        Tidy frame with ``CSV_COLUMNS``, one row per run × position.

    Raises:
        SeqrecError: no finished run, no run of ``model``, or a run that cannot be rebuilt.
    """
    runs = select_runs(collect_runs(runs_root), model)
    frames = []
    for i, run in enumerate(runs.itertuples(), 1):
        log.info("RQ3 %d/%d: %s %s-%s seed %d", i, len(runs), run.dataset, run.model, run.loss, run.seed)
        loaded = load_trained(run.run_dir, data_dir, device)
        mask = bool(loaded.cfg.eval.mask_history) if mask_history is None else mask_history
        # runs saved before eval.rank_repeats existed ranked repeated targets
        repeats = bool(OmegaConf.select(loaded.cfg, "eval.rank_repeats", default=True))
        frame = per_position_metrics(position_ranks(loaded.model, loaded.split, mask, max_scores, repeats))
        frame = frame.assign(dataset=run.dataset, model=run.model, loss=run.loss, seed=run.seed, mask_history=mask)
        frames.append(frame[CSV_COLUMNS])
    return pd.concat(frames, ignore_index=True)


def rq3_figure(frame: pd.DataFrame) -> Figure:
    """NDCG@10 against position: a panel per dataset (a row per model), a line per loss (mean
    over seeds, weighted by each seed's users), dotted markers at the valid and test positions."""
    datasets = ordered(frame["dataset"], DATASET_ORDER)
    models = ordered(frame["model"], MODEL_ORDER)
    fig = Figure(figsize=(max(3.6 * len(datasets), 6.0), 3.0 * len(models) + 0.4), layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(len(models), len(datasets), squeeze=False)
    for row, model in enumerate(models):
        for col, dataset in enumerate(datasets):
            ax = axes[row][col]
            panel = frame[(frame["dataset"] == dataset) & (frame["model"] == model)]
            for loss in ordered(panel["loss"], LOSS_ORDER):
                line = panel[(panel["loss"] == loss) & (panel["n_users"] > 0)].copy()
                line["hits"] = line["ndcg@10"] * line["n_users"]
                mean = line.groupby("position")[["hits", "n_users"]].sum()
                color, dash = LOSS_STYLE.get(loss, (None, ":"))
                ax.plot(
                    mean.index, mean["hits"] / mean["n_users"], dash, color=color, linewidth=1.3, label=loss_name(loss)
                )
            length = int(frame["position"].max())
            for pos, name, side in ((length - 1, "valid", "right"), (length, "test", "left")):
                ax.axvline(pos, color="grey", linestyle=":", linewidth=0.8)
                ax.annotate(
                    name,
                    (pos, 0.98),
                    xycoords=("data", "axes fraction"),
                    rotation=90,
                    xytext=(-2 if side == "right" else 2, 0),
                    textcoords="offset points",
                    ha=side,
                    va="top",
                    fontsize="x-small",
                    color="grey",
                )
            ax.set_title(
                f"{DATASET_NAMES.get(dataset, dataset)} · {MODEL_NAMES.get(model, model)}"
                if not panel.empty
                else f"{DATASET_NAMES.get(dataset, dataset)} (no run)"
            )
            ax.set_xlabel("position in the input")
            ax.set_ylabel("NDCG@10")
            ax.grid(alpha=0.3)
            if not panel.empty:
                ax.legend(loc="upper left", fontsize="small")
    masks = sorted(set(frame["mask_history"]))
    masking = {(True,): "history masked", (False,): "history not masked"}.get(tuple(masks), "mixed masking")
    fig.suptitle(f"NDCG@10 at every input position\n(mean over seeds; {masking})", fontsize="medium")
    return fig


def write_rq3(frame: pd.DataFrame, out_dir: str | os.PathLike, dpi: int = 150) -> list[Path]:
    """``rq3_<dataset>.csv`` per dataset and ``rq3.png``, written atomically; returns the paths."""
    out_dir = Path(out_dir)
    paths = []
    for dataset in ordered(frame["dataset"], DATASET_ORDER):
        part = frame[frame["dataset"] == dataset]
        paths.append(atomic_write(out_dir / f"rq3_{dataset}.csv", part.to_csv(index=False)))
    buf = io.BytesIO()
    rq3_figure(frame).savefig(buf, format="png", dpi=dpi)
    paths.append(atomic_write(out_dir / "rq3.png", buf.getvalue()))
    return paths


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The RQ3 command-line options (shared with ``python -m seqrec.analysis``)."""
    p.add_argument(
        "--runs",
        type=Path,
        default=None,
        help="folder searched recursively for finished runs (with metrics.json and best.pt); "
        "default: outputs/table2, or outputs/table2-smoke while only that has finished runs",
    )
    p.add_argument(
        "--model",
        default=None,
        help="model to analyse (default: gru4rec as in the paper, or every model when "
        "there is no gru4rec run; 'all' = every model)",
    )
    p.add_argument("--out", type=Path, default=None, help="output folder (default: <runs>/report)")
    p.add_argument("--data-dir", type=Path, default=None, help="where the datasets are (default: each run's data_dir)")
    p.add_argument("--device", default="cpu", help="cpu (default), cuda, cuda:1 or auto")
    p.add_argument(
        "--no-mask",
        action="store_true",
        help="do not mask each user's past items (the paper's Fig. 3 code did not); "
        "default: each run's eval.mask_history",
    )
    p.add_argument("--num-threads", type=thread_count, default=None, help="torch CPU threads (>= 1)")


def run_rq3(args: argparse.Namespace) -> list[Path]:
    """Compute and write RQ3 for parsed ``args``; returns the paths. Raises SeqrecError."""
    if args.num_threads:
        torch.set_num_threads(args.num_threads)
    out = args.out if args.out is not None else args.runs / "report"
    device = resolve_device(args.device, "--device ")
    frame = rq3_runs(args.runs, args.model, args.data_dir, device, False if args.no_mask else None)
    return write_rq3(frame, out)


def cli(argv: list[str] | None, prog: str, description: str, produce) -> int:
    """Shared command line of the analysis entry points: parse, run ``produce(args) -> paths``,
    list the files written; a :class:`SeqrecError` → one paragraph on stderr, exit status 1
    (:func:`seqrec.runs.cli.run_main`)."""
    p = argparse.ArgumentParser(prog=prog, description=description)
    add_arguments(p)
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")

    def body() -> None:
        args.runs = resolve_runs(args.runs)
        paths = produce(args)
        print(f"wrote {len(paths)} files:")
        for path in paths:
            print(f"  {path}")

    return run_main(body)


def main(argv: list[str] | None = None) -> int:
    return cli(
        argv,
        "python -m seqrec.analysis.rq3",
        "RQ3: NDCG@10 at every input position of the trained models under --runs (rq3_<dataset>.csv and rq3.png).",
        run_rq3,
    )


if __name__ == "__main__":
    sys.exit(main())
