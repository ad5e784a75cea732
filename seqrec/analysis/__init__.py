"""Analyses of trained models: unlike :mod:`seqrec.report`, which reads only run files, these load a
run's ``best.pt`` and evaluate it again.

``positions``: NDCG@10 at every input position of a trained model, the measurement behind RQ3
of Li et al. (AAAI 2023) (Fig. 1c, Fig. 3); ``rq3``: that over a folder of finished runs, as CSV
files and a figure, ``python -m seqrec.analysis.rq3 --runs <root>``.

Names are imported lazily so that ``python -m seqrec.analysis.rq3`` does not import the module
twice (runpy warns about that).
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "per_position_metrics": "positions",
    "position_ranks": "positions",
    "position_targets": "positions",
    "rq3_figure": "rq3",
    "rq3_runs": "rq3",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'seqrec.analysis' has no attribute {name!r}")
    return getattr(importlib.import_module(f"seqrec.analysis.{_EXPORTS[name]}"), name)
