"""Command line: build every report from a folder of finished runs.

    python -m seqrec.report [--runs outputs/table2] [--out DIR] [--proposed cce] [--baselines bce,ce]
                            [--paper my_table.csv] [--no-paper] [--no-plots]
                            [--page docs/results.md ...] [--beyond results/leaderboard] [--pages-only]

Reads every run below ``--runs`` (``metrics.json``, ``per_user_test.csv``, ``epochs.csv``; default:
``outputs/table2``, or ``outputs/table2-smoke`` while only the smoke sweep has finished runs, see
:func:`seqrec.report.runs.resolve_runs`) and writes into ``--out`` (default ``<runs>/report``):
``table2.{md,csv,tex}``, ``table2_vs_paper.{md,csv}``, ``significance.{csv,md}`` and
``rq2_<dataset>.png``; with ``--page FILE`` also the generated blocks of that markdown page
(:mod:`seqrec.report.page`). Table 2 and the t-tests compare ``--proposed`` with each of ``--baselines``.
All run files are read and checked before the first output is written, and each output is written
atomically. Prints Table 2 and the paths written. A user error (no runs, mismatched data, a loss
without runs, …) prints one paragraph on stderr and exits with status 1.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from rich.console import Console
from rich.measure import Measurement

from seqrec.atomic import atomic_write
from seqrec.errors import SeqrecError
from seqrec.report.curves import rq2_figures, write_rq2
from seqrec.report.leaderboard import collect_beyond
from seqrec.report.page import render_blocks, update_page
from seqrec.report.paper import BASELINES, LOSS_ORDER, PROPOSED, load_paper, ordered, to_rich
from seqrec.report.protocol import TABLE2_PROTOCOL, protocol_departures
from seqrec.report.runs import collect_runs, resolve_runs
from seqrec.report.stats import significance_csv, significance_markdown, significance_table
from seqrec.report.table2 import build_table2, write_table2
from seqrec.runs.cli import run_main

log = logging.getLogger(__name__)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m seqrec.report",
        description="Build Table 2 (RQ1), significance tests and RQ2 curves from finished runs.",
    )
    p.add_argument(
        "--runs",
        type=Path,
        default=None,
        help="folder searched recursively for run folders (those with a metrics.json); default: "
        "outputs/table2, or outputs/table2-smoke while only that has finished runs",
    )
    p.add_argument("--out", type=Path, default=None, help="output folder (default: <runs>/report)")
    p.add_argument("--proposed", default=PROPOSED, help=f"the loss compared with the baselines (default {PROPOSED})")
    p.add_argument(
        "--baselines",
        default=",".join(BASELINES),
        help=f"comma-separated losses it is compared with, in column order (default {','.join(BASELINES)})",
    )
    p.add_argument(
        "--paper",
        type=Path,
        default=None,
        help="the paper's numbers, csv with dataset,model,loss,metric,value "
        "(default: the copy shipped in seqrec/resources)",
    )
    p.add_argument("--no-paper", action="store_true", help="skip the comparison with the paper")
    p.add_argument("--no-plots", action="store_true", help="skip the RQ2 curves")
    p.add_argument(
        "--page",
        type=Path,
        action="append",
        default=[],
        help="a markdown page whose generated blocks (<!-- generated:NAME begin -->) are rewritten "
        "from the runs, e.g. docs/results.md; repeatable (see seqrec.report.page)",
    )
    p.add_argument(
        "--beyond",
        type=Path,
        default=None,
        help="result folders of configurations beyond Table 2 (<dataset>/<name>/seed<seed>/, e.g. "
        "results/leaderboard) that the pages' leaderboard also chooses from",
    )
    p.add_argument(
        "--pages-only",
        action="store_true",
        help="only rewrite the --page blocks (no table files; works while some losses have no runs yet)",
    )
    return p.parse_args(argv)


def check_losses(runs, proposed: str, baselines: list[str]) -> None:
    """Refuse a comparison that cannot be made: a loss named twice, or one with no run at all.

    Raises:
        SeqrecError: naming the loss and the losses the runs have.
    """
    found = ordered(runs["loss"], LOSS_ORDER)
    if not baselines or proposed in baselines or len(set(baselines)) != len(baselines):
        raise SeqrecError(
            f"--proposed {proposed} --baselines {','.join(baselines)}: name at least one baseline, each once, "
            f"and not the proposed loss (e.g. --proposed cce --baselines bce,ce). Losses with runs: {', '.join(found)}."
        )
    missing = [loss for loss in (proposed, *baselines) if loss not in found]
    if missing:
        raise SeqrecError(
            f"No finished run of the loss(es) {', '.join(missing)} under the runs folder, so Table 2 cannot "
            f"compare them. Losses with runs: {', '.join(found)}; pick --proposed and --baselines among "
            "those, or train the missing ones first."
        )


def report(
    runs_root: Path,
    out: Path,
    paper: Path | None = None,
    with_paper: bool = True,
    with_plots: bool = True,
    console: Console | None = None,
    proposed: str = PROPOSED,
    baselines: tuple[str, ...] | list[str] = BASELINES,
    pages: list[Path] = (),
    beyond: Path | None = None,
) -> list[Path]:
    """Build and write all report files, and the generated blocks of ``pages`` (their leaderboard
    also chooses from the runs below ``beyond``); returns the paths written. Raises SeqrecError."""
    runs = collect_runs(runs_root)
    check_losses(runs, proposed, list(baselines))
    paper_df = load_paper(paper) if with_paper or pages else None
    blocks = render_blocks(runs, paper_df, _beyond(beyond)) if pages else {}
    sig = significance_table(runs, proposed, baselines)
    table = build_table2(runs, paper_df if with_paper else None, sig, proposed, baselines)
    figures = rq2_figures(runs) if with_plots else {}
    if console is not None:
        rich_table = to_rich(table)
        if not console.is_terminal:  # a pipe or log file gets the full width, not 80 columns
            wide = Measurement.get(console, console.options.update_width(10_000), rich_table).maximum
            console.width = max(console.width, wide)
        console.print(rich_table)
    paths = write_table2(table, out)
    departures = protocol_departures(runs, TABLE2_PROTOCOL) if with_paper else []
    if departures:  # e.g. a smoke test on a user subset: its comparison with the paper says so
        note = off_protocol_note(departures)
        log.warning("%s", note)
        vs_paper = out / "table2_vs_paper.md"
        if vs_paper.is_file():
            atomic_write(vs_paper, f"> **Warning:** {note}\n\n" + vs_paper.read_text())
    paths.append(atomic_write(out / "significance.csv", significance_csv(sig)))
    paths.append(atomic_write(out / "significance.md", significance_markdown(sig)))
    paths += write_rq2(figures, out)
    paths += [update_page(page, blocks) for page in pages]
    return paths


def off_protocol_note(departures: list[tuple[str, str, object, object]]) -> str:
    """One sentence naming the runs that depart from the paper's protocol and how (up to three)."""
    shown = "; ".join(f"{run}: {key}={value!r} (paper: {wanted!r})" for run, key, value, wanted in departures[:3])
    runs = len({run for run, *_ in departures})
    return (
        f"{runs} run(s) depart from the paper's protocol, so their comparison with the paper's numbers "
        f"does not measure a reproduction: {shown}{'; …' if len(departures) > 3 else ''}."
    )


def _beyond(root: Path | None):
    """The runs below ``--beyond`` (None when not given).

    Raises:
        SeqrecError: the folder does not exist.
    """
    if root is None:
        return None
    if not root.is_dir():
        raise SeqrecError(
            f"--beyond '{root}' is not a folder; pass the folder of result folders beyond Table 2 "
            "(e.g. results/leaderboard) or leave the option out."
        )
    return collect_beyond(root)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    console = Console()

    def body() -> None:
        runs = resolve_runs(args.runs)
        if args.pages_only:
            if not args.page:
                raise SeqrecError(
                    "--pages-only rewrites the pages given with --page; name at least one, e.g. --page docs/results.md."
                )
            blocks = render_blocks(collect_runs(runs), load_paper(args.paper), _beyond(args.beyond))
            for page in args.page:
                console.print(f"wrote {update_page(page, blocks)}", highlight=False)
            return
        out = args.out if args.out is not None else runs / "report"
        baselines = [b.strip().lower() for b in args.baselines.split(",") if b.strip()]
        paths = report(
            runs,
            out,
            args.paper,
            not args.no_paper,
            not args.no_plots,
            console,
            args.proposed.strip().lower(),
            baselines,
            args.page,
            args.beyond,
        )
        console.print(f"wrote {len(paths)} files:")
        for path in paths:
            console.print(f"  {path}", highlight=False)

    return run_main(body)


if __name__ == "__main__":
    sys.exit(main())
