"""Every figure of the paper from a folder of finished runs (``make plots``):

    python -m seqrec.analysis --runs outputs/table2 [--out DIR] [--model gru4rec] [--no-mask] …

writes ``rq2_<dataset>.png`` (Fig. 2, training curves from ``epochs.csv``, as ``python -m
seqrec.report`` draws them) and ``rq3_<dataset>.csv`` + ``rq3.png`` (Fig. 1c/3, per-position
NDCG@10 of the trained models, see :mod:`seqrec.analysis.rq3`) into ``--out`` (default
``<runs>/report``). A user error prints one paragraph on stderr and exits with status 1.
"""

from __future__ import annotations

import sys

from seqrec.analysis.rq3 import cli, run_rq3
from seqrec.report.curves import rq2_figures, write_rq2
from seqrec.report.runs import collect_runs


def all_figures(args) -> list:
    """RQ2 PNGs and the RQ3 CSV/PNG for ``args.runs``; returns the paths written."""
    out = args.out if args.out is not None else args.runs / "report"
    return write_rq2(rq2_figures(collect_runs(args.runs)), out) + run_rq3(args)


def main(argv: list[str] | None = None) -> int:
    return cli(
        argv,
        "python -m seqrec.analysis",
        "RQ2 training curves and RQ3 per-position accuracy from finished runs.",
        all_figures,
    )


if __name__ == "__main__":
    sys.exit(main())
