"""The rich summary printed at the end of a run."""

from __future__ import annotations

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from seqrec.evaluation import METRICS


def print_summary(metrics: dict, console: Console | None = None) -> None:
    """Print valid/test HR@k and NDCG@k and the run's timings as a rich table."""
    console = console or Console()
    title = f"{metrics['model']} + {metrics['loss']} on {metrics['dataset']} (seed {metrics['seed']})"
    table = Table(title=title)
    table.add_column("split")
    for name in METRICS:
        table.add_column(name.upper(), justify="right")
    for split in ("valid", "test"):
        table.add_row(split, *(f"{metrics[f'{split}/{name}']:.4f}" for name in METRICS))
    console.print(table)
    console.print(
        f"best epoch {metrics['best_epoch']} of {metrics['epochs_run']} · "
        f"{metrics['seconds_per_epoch']:.2f} s/epoch training · {metrics['total_seconds']:.1f} s total"
    )
    if "test/repeat_share" in metrics:
        console.print(
            f"targets that repeat a history item ({repeat_treatment(metrics)}): valid "
            f"{100 * metrics['valid/repeat_share']:.1f}% · test {100 * metrics['test/repeat_share']:.1f}%",
            highlight=False,
        )
    # the folder on a line of its own, never wrapped, so it can be copied
    console.print(f"results in {escape(metrics['output_dir'])}", soft_wrap=True, highlight=False)


def repeat_treatment(metrics: dict) -> str:
    """How the run ranked a target that repeats a history item, from its ``metrics.json``.

    ``eval.mask_history=false`` ranks every item; with the history masked, ``eval.rank_repeats``
    decides between ranking such a target among the unseen items and masking it with the history
    (a miss at every k, the CCE paper's protocol). ``metrics.json`` files written before
    ``rank_repeats`` was recorded point to the config."""
    if not metrics.get("mask_history", True):
        return "ranked: the history is not masked"
    if "rank_repeats" not in metrics:
        return "ranked or masked: see eval.rank_repeats in config.yaml"
    return "ranked, not masked" if metrics["rank_repeats"] else "masked with the history: a miss"
