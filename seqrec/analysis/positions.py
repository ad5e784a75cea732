"""RQ3 of Li et al. (AAAI 2023): accuracy at every position of the input (Fig. 1c and Fig. 3).

For a trained model and each user, the input is the test input (the most recent ``L`` items of
``s[:-1]``, left-padded, ``L = dataset.max_len`` = 50) and the model's hidden state at position
``t`` (1-based) is scored against the item at position ``t + 1``, i.e. the last ``L`` items of
``s[1:]``: position ``L`` → the test item ``s[-1]``, ``L - 1`` → the validation item ``s[-2]``,
``≤ L - 2`` → training items. Ranking is full ranking over all items with the project's
pessimistic tie rule (:func:`seqrec.evaluation.target_ranks`). Each position's HR@10/NDCG@10 is
the mean over the users that have an item there (``n_users``); short users only reach the right
end of the window.

History masking (``mask_history``, default: the run's ``eval.mask_history``, true in the paper's
Table 2 protocol): at each position every item the user interacted with *before that position's
target* (the full past, not only the window) is removed from the ranking. A target the user had
already consumed follows the run's ``eval.rank_repeats``, as in :mod:`seqrec.evaluation`: ranked
among the unseen items (true, the default) or masked with the past, a miss (false, the paper's
protocol, ``experiment=table2``). Position ``L`` thus gives exactly the run's test metrics. The
paper's code for Fig. 3 did not mask; ``--no-mask`` reproduces that.

Files (``python -m seqrec.analysis.positions --runs <root>``): ``rq3_<dataset>.csv`` (dataset,
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

import numpy as np
import pandas as pd
import torch
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from omegaconf import OmegaConf

from seqrec.atomic import atomic_write
from seqrec.data import LeaveOneOut
from seqrec.data.csr import expand
from seqrec.errors import SeqrecError
from seqrec.evaluation import metrics_from_ranks, target_ranks
from seqrec.models.scoring import item_rows, score_items
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

log = logging.getLogger(__name__)

# Floats in one [rows, N] score matrix: 2^26 × 4 bytes = 256 MiB.
MAX_SCORES = 2**26
CSV_COLUMNS = ["dataset", "model", "loss", "seed", "position", "ndcg@10", "hr@10", "n_users", "mask_history"]


def position_targets(split: LeaveOneOut) -> tuple[torch.Tensor, torch.Tensor]:
    """Inputs and per-position targets: ``(test_input [U, L], targets [U, L])``.

    ``targets[:, t]`` is the item after ``test_input[:, t]`` (the input shifted left by one, then
    the test item), and 0 where the input is padding (no prediction is made there).
    """
    inputs = split.test_input
    shifted = torch.cat([inputs[:, 1:], split.test_target[:, None]], dim=1)  # [U, L]
    return inputs, torch.where(inputs != 0, shifted, torch.zeros_like(shifted))


def _history(split: LeaveOneOut, users: torch.Tensor, first: int) -> tuple[torch.Tensor, ...]:
    """The items to mask at window positions ``first..L-1`` of the users ``[B]``.

    For a user with ``n`` items the target at 0-based position ``t`` is ``s[n - L + t]``, so the
    item ``s[i]`` is history for every ``t >= i - n + L + 1``. Items older than the window's first
    target are history at every position: they come back per user, ``(b, item)``, so a long past
    costs one entry per item, not one per item and position. The rest (at most ``L`` per user) come
    back per position, ``(b, t, item)``. Repeated items repeat (harmless).

    Returns:
        ``(old_b [M1], old_item [M1], b [M2], t [M2], item [M2])``.
    """
    L = split.max_len
    device = users.device
    starts = split.offsets[users]
    n = split.offsets[users + 1] - starts  # [B]
    b, idx = expand(n)  # [M]: the user's row, the position in its sequence s
    item = split.items[starts[b] + idx]  # [M]
    t0 = idx - n[b] + L + 1  # first position where s[idx] is history
    old = t0 <= first
    recent_b, recent_item, t0 = b[~old], item[~old], t0[~old]
    count = L - t0  # [M'] >= 1: positions t0..L-1
    src = torch.repeat_interleave(torch.arange(len(t0), device=device), count)  # [M2]
    t = t0[src] + torch.arange(len(src), device=device) - (torch.cumsum(count, 0) - count)[src]
    return b[old], item[old], recent_b[src], t, recent_item[src]


@torch.no_grad()
def position_ranks(
    model: torch.nn.Module,
    split: LeaveOneOut,
    mask_history: bool = True,
    max_scores: int = MAX_SCORES,
    rank_repeats: bool = True,
) -> torch.Tensor:
    """Full-ranking rank of the target at every input position of every user.

    Users go in length order, batched so that one score matrix ``[rows, N]`` holds about
    ``max_scores`` floats (at most ``max_scores + L·N``; masking adds a bool matrix of the same
    shape), and each batch drops its common left padding (the models' outputs at real positions
    do not change).

    Args:
        model: returns hidden states ``[B, L, d]`` and has ``output_table()`` ``[N, d]``
            (scored with :func:`seqrec.models.scoring.score_items`, as in evaluation).
        split: the run's leave-one-out split (on the model's device).
        mask_history: remove each target's past items from its ranking (see module docstring).
        max_scores: memory bound in floats.
        rank_repeats: with ``mask_history``, rank a target that repeats a past item among the
            unseen items (True) or mask it with the past (False: rank ``MASKED_RANK``, a miss).

    Returns:
        ``[U, L]`` int64 ranks (1..N, or ``MASKED_RANK`` for a masked repeat), 0 where there is
        no target.
    """
    was_training = model.training
    model.eval()
    inputs, targets = position_targets(split)
    n_users, L = inputs.shape
    n_items = model.output_table().shape[0]
    lengths = (inputs != 0).sum(1)  # [U] = number of targets of each user
    order = torch.argsort(lengths, stable=True)
    max_rows = max(L, max_scores // n_items)
    batch_of = (torch.cumsum(lengths[order], 0) - 1).clamp(min=0) // max_rows  # [U], non-decreasing
    counts = torch.unique_consecutive(batch_of, return_counts=True)[1]
    ranks = torch.zeros(n_users, L, dtype=torch.long, device=inputs.device)
    for users in order.split(counts.tolist()):
        width = max(int(lengths[users].max()), 1)
        first = L - width
        tgt = targets[users, first:]  # [B, w]
        hidden = model(inputs[users, first:])  # [B, w, d]
        b, t = (tgt != 0).nonzero(as_tuple=True)  # [R] each
        scores = score_items(model, hidden[b, t])  # [R, N]
        if mask_history:
            _mask_past(scores, split, users, first, tgt, b, t, rank_repeats)
        ranks[users[b], first + t] = target_ranks(scores, tgt[b, t])
    model.train(was_training)
    return ranks


def _mask_past(
    scores: torch.Tensor,
    split: LeaveOneOut,
    users: torch.Tensor,
    first: int,
    tgt: torch.Tensor,
    b: torch.Tensor,
    t: torch.Tensor,
    rank_repeats: bool,
) -> None:
    """Set to -inf, in place, each row's items the user consumed before that row's target.

    Args:
        scores: ``[R, N]``, row r scores the target ``tgt[b[r], t[r]]``.
        users: ``[B]`` the batch's users; ``first``: the window's first kept position.
        tgt: ``[B, w]`` targets of the trimmed window; ``b``, ``t``: ``[R]`` each row's position.
        rank_repeats: put a target that the past masked back (ranked), else it stays a miss.
    """
    n_items = scores.shape[1]
    columns = item_rows(tgt[b, t]).unsqueeze(1)  # [R, 1]: each row's target
    kept = scores.gather(1, columns)
    old_b, old_item, hb, ht, hitem = _history(split, users, first)
    seen = torch.zeros(len(users), n_items, dtype=torch.bool, device=tgt.device)  # [B, N]
    seen[old_b, item_rows(old_item)] = True
    scores.masked_fill_(seen[b], float("-inf"))  # the past before the window: every row
    row_of = torch.full(tgt.shape, -1, dtype=torch.long, device=tgt.device)  # [B, w]
    row_of[b, t] = torch.arange(len(b), device=tgt.device)
    rows = row_of[hb, ht - first]  # -1: a position without a target
    keep = rows >= 0
    scores[rows[keep], item_rows(hitem[keep])] = float("-inf")
    if rank_repeats:
        scores.scatter_(1, columns, kept)


def per_position_metrics(ranks: torch.Tensor, k: int = 10) -> pd.DataFrame:
    """Mean HR@k and NDCG@k per position over the users with a target there.

    Args:
        ranks: ``[U, L]`` from :func:`position_ranks` (0 = no target).

    Returns:
        One row per position: ``position`` (1..L), ``ndcg@k``, ``hr@k`` (NaN without users),
        ``n_users``.
    """
    has = ranks > 0  # [U, L]
    per_entry = metrics_from_ranks(ranks.clamp(min=1), ks=(k,))
    n = has.sum(0)  # [L]
    mean = {
        name: (torch.where(has, v, torch.zeros_like(v)).sum(0) / n).cpu().numpy()  # NaN where n = 0
        for name, v in per_entry.items()
    }
    return pd.DataFrame(
        {
            "position": np.arange(1, ranks.shape[1] + 1),
            f"ndcg@{k}": mean[f"ndcg@{k}"],
            f"hr@{k}": mean[f"hr@{k}"],
            "n_users": n.cpu().numpy().astype(np.int64),
        }
    )


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
    from seqrec.runs.pipeline import load_trained  # the training stack, only needed here

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
    from seqrec.runs.pipeline import resolve_device  # the training stack, only needed here

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
        "python -m seqrec.analysis.positions",
        "RQ3: NDCG@10 at every input position of the trained models under --runs (rq3_<dataset>.csv and rq3.png).",
        run_rq3,
    )


if __name__ == "__main__":
    sys.exit(main())
