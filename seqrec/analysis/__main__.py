"""Every figure of the paper from a folder of finished runs (``make plots``):

    python -m seqrec.analysis --runs outputs/table2 [--out DIR] [--model gru4rec] [--no-mask] …

writes ``rq2_<dataset>.png`` (Fig. 2, training curves from ``epochs.csv``, as ``python -m
seqrec.report`` draws them) and ``rq3_<dataset>.csv`` + ``rq3.png`` (Fig. 1c/3, per-position
NDCG@10 of the trained models, see :mod:`seqrec.analysis.timestamps`) into ``--out`` (default
``<runs>/report``). A user error prints one paragraph on stderr and exits with status 1.
"""

from __future__ import annotations

import argparse
import logging
import sys

from seqrec.analysis.timestamps import add_arguments, run_rq3
from seqrec.errors import SeqrecError
from seqrec.report.curves import rq2_figures, write_rq2
from seqrec.report.runs import collect_runs


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m seqrec.analysis",
        description="RQ2 training curves and RQ3 per-position accuracy from finished runs.")
    add_arguments(p)
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    out = args.out if args.out is not None else args.runs / "report"
    try:
        paths = write_rq2(rq2_figures(collect_runs(args.runs)), out)
        paths += run_rq3(args)
    except SeqrecError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"wrote {len(paths)} files:")
    for path in paths:
        print(f"  {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
