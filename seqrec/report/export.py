"""Command line: export finished runs as result folders (:mod:`seqrec.report.archive`).

    python -m seqrec.report.export outputs/table2 [--into results/table2] [--overwrite]
    python -m seqrec.report.export outputs/leaderboard --into results/leaderboard --keep-layout

Prints one line per run (``wrote`` or ``unchanged`` and the result folder). A user error (no
finished run, a destination holding a different result) prints one paragraph and exits with 1.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from seqrec.report.archive import export_runs
from seqrec.runs.cli import run_main


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m seqrec.report.export",
        description="Export finished runs as light result folders (see seqrec.report.archive).",
    )
    p.add_argument("runs", type=Path, help="a run folder or a folder of run folders (e.g. outputs/table2)")
    p.add_argument("--into", type=Path, default=Path("results/table2"), help="results root (default results/table2)")
    p.add_argument("--overwrite", action="store_true", help="replace result folders whose content differs")
    p.add_argument(
        "--keep-layout",
        action="store_true",
        help="name each result folder by its run folder's path below RUNS instead of "
        "<dataset>/<model>-<loss>/seed<seed> (runs beyond Table 2, e.g. outputs/leaderboard)",
    )
    args = p.parse_args(argv)

    def body() -> None:
        for dest, changed in export_runs(args.runs, args.into, args.overwrite, args.keep_layout):
            print(f"{'wrote' if changed else 'unchanged'} {dest}")

    return run_main(body)


if __name__ == "__main__":
    sys.exit(main())
