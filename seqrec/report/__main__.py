"""Command line: build every report from a folder of finished runs.

    python -m seqrec.report --runs outputs/ [--out outputs/report] [--paper my_table.csv]
                            [--no-paper] [--no-plots]

Reads every run below ``--runs`` (``metrics.json``, ``per_user_test.csv``, ``epochs.csv``) and
writes into ``--out`` (default ``<runs>/report``): ``table2.{md,csv,tex}``,
``table2_vs_paper.{md,csv}``, ``significance.{csv,md}`` and ``rq2_<dataset>.png``. All run
files are read and checked before the first output is written, and each output is written
atomically. Prints Table 2 and the paths written. A user error (no runs, mismatched data, …)
prints one paragraph on stderr and exits with status 1.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from rich.console import Console
from rich.measure import Measurement

from seqrec.errors import SeqrecError
from seqrec.report.curves import rq2_figures, write_rq2
from seqrec.report.runs import collect_runs, write_atomic
from seqrec.report.stats import significance_csv, significance_markdown, significance_table
from seqrec.report.table2 import build_table2, load_paper, to_rich, write_table2


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m seqrec.report",
        description="Build Table 2 (RQ1), significance tests and RQ2 curves from finished runs.",
    )
    p.add_argument("--runs", required=True, type=Path,
                   help="folder searched recursively for run folders (those with a metrics.json)")
    p.add_argument("--out", type=Path, default=None, help="output folder (default: <runs>/report)")
    p.add_argument("--paper", type=Path, default=None,
                   help="the paper's numbers, csv with dataset,model,loss,metric,value "
                   "(default: the copy shipped in seqrec/resources)")
    p.add_argument("--no-paper", action="store_true", help="skip the comparison with the paper")
    p.add_argument("--no-plots", action="store_true", help="skip the RQ2 curves")
    return p.parse_args(argv)


def report(runs_root: Path, out: Path, paper: Path | None = None, with_paper: bool = True,
           with_plots: bool = True, console: Console | None = None) -> list[Path]:
    """Build and write all report files; returns the paths written. Raises SeqrecError."""
    runs = collect_runs(runs_root)
    paper_df = load_paper(paper) if with_paper else None
    sig = significance_table(runs)
    table = build_table2(runs, paper_df, sig)
    figures = rq2_figures(runs) if with_plots else {}
    if console is not None:
        rich_table = to_rich(table)
        # a pipe or log file gets the full width; a terminal gets what fits
        if not console.is_terminal:  # a pipe or log file gets the full width, not 80 columns
            wide = Measurement.get(console, console.options.update_width(10_000), rich_table).maximum
            console.width = max(console.width, wide)
        console.print(rich_table)
    paths = write_table2(table, out)
    paths.append(write_atomic(out / "significance.csv", significance_csv(sig)))
    paths.append(write_atomic(out / "significance.md", significance_markdown(sig)))
    paths += write_rq2(figures, out)
    return paths


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    console = Console()
    out = args.out if args.out is not None else args.runs / "report"
    try:
        paths = report(args.runs, out, args.paper, not args.no_paper, not args.no_plots, console)
    except SeqrecError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    console.print(f"wrote {len(paths)} files:")
    for path in paths:
        console.print(f"  {path}", highlight=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
