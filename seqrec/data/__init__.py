"""Data pipeline: read interaction files, preprocess them into per-user sequences (cached), and
split them leave-one-out, following the CCE paper's public code (S3-Rec's ``datasets.py``).

Typical use::

    data = load_dataset(cfg.dataset, data_dir)            # SequenceData (CSR, cached)
    split = LeaveOneOut.build(data, cfg.dataset.max_len)  # torch tensors

Names are imported lazily so that ``python -m seqrec.data.fetch`` (``make data``) does not
import the fetch module twice (runpy warns about that). The function ``preprocess`` is not
re-exported (its module has the same name): ``from seqrec.data.preprocess import preprocess``.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

_EXPORTS = {
    "CACHE_VERSION": "cache",
    "load_dataset": "cache",
    "ensure_file": "fetch",
    "fetch_dataset": "fetch",
    "find_shared": "fetch",
    "shared_data_dir": "fetch",
    "PAD_TOKEN": "preprocess",
    "SequenceData": "preprocess",
    "kcore_mask": "preprocess",
    "Interactions": "readers",
    "read_atomic": "readers",
    "read_csv": "readers",
    "read_s3rec": "readers",
    "FORMATS": "spec",
    "DatasetSpec": "spec",
    "LeaveOneOut": "split",
}
__all__ = sorted(_EXPORTS)

if TYPE_CHECKING:
    from seqrec.data.cache import CACHE_VERSION, load_dataset
    from seqrec.data.fetch import ensure_file, fetch_dataset, find_shared, shared_data_dir
    from seqrec.data.preprocess import PAD_TOKEN, SequenceData, kcore_mask
    from seqrec.data.readers import Interactions, read_atomic, read_csv, read_s3rec
    from seqrec.data.spec import FORMATS, DatasetSpec
    from seqrec.data.split import LeaveOneOut


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'seqrec.data' has no attribute {name!r}")
    return getattr(importlib.import_module(f"seqrec.data.{_EXPORTS[name]}"), name)
