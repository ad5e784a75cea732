"""The files a run leaves in its output directory, all written atomically.

``config.yaml`` (resolved config), ``ids.npz`` (raw item and user ids, for recommendations from
the run folder alone), ``epochs.csv`` (one row per epoch, appended as training goes),
``best.pt`` (checkpoint of the selected state), ``per_user_test.csv`` (per-user test metrics keyed
by the raw user id, for paired t-tests), and last ``metrics.json``. A directory without
``metrics.json`` is not a finished run: tables and plots only read directories that have it.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from seqrec.atomic import atomic_write, write_bytes
from seqrec.evaluation import metrics_from_ranks


def write_text(path: Path, text: str) -> None:
    """Atomically write ``text`` (UTF-8) to ``path``."""
    write_bytes(path, text)


def write_json(path: Path, obj: dict) -> None:
    """Atomically write ``obj`` as indented JSON."""
    write_text(path, json.dumps(obj, indent=2, sort_keys=False) + "\n")


def write_csv(path: Path, frame: pd.DataFrame) -> None:
    """Atomically write ``frame`` as CSV without the index."""
    write_bytes(path, frame.to_csv(index=False))


def per_user_frame(ranks: torch.Tensor, user_tokens) -> pd.DataFrame:
    """Per-user test metrics: ``user_id`` (raw token), ``rank``, ``hr@k``, ``ndcg@k``.

    Args:
        ranks: ``[U]`` ranks from full-ranking evaluation, in user-index order.
        user_tokens: ``[U]`` raw user ids.
    """
    frame = pd.DataFrame({"user_id": pd.Series(user_tokens, dtype=str), "rank": ranks.numpy()})
    for name, values in metrics_from_ranks(ranks).items():
        frame[name] = values.numpy()
    return frame


class RunWriter:
    """Writes one run's files into ``out_dir`` as the run progresses."""

    def __init__(self, out_dir: Path):
        self.out_dir = Path(out_dir)
        self.out_dir.mkdir(parents=True, exist_ok=True)
        self.epochs: list[dict] = []
        # A re-run into the same folder must not look finished before it is.
        (self.out_dir / "metrics.json").unlink(missing_ok=True)

    def config(self, yaml_text: str) -> None:
        write_text(self.out_dir / "config.yaml", yaml_text)

    def ids(self, item_tokens: np.ndarray, user_tokens: np.ndarray) -> None:
        """``ids.npz``: ``item_tokens [N + 1]`` (raw id of item index i; ``[0]`` is padding) and
        ``user_tokens [U]`` (raw id of user index u), as strings; no pickles."""
        atomic_write(self.out_dir / "ids.npz", lambda handle: np.savez(
            handle, item_tokens=np.asarray(item_tokens, dtype=str), user_tokens=np.asarray(user_tokens, dtype=str)))

    def epoch(self, row: dict) -> None:
        """Append one epoch's row to ``epochs.csv`` (rewritten atomically, it is small)."""
        self.epochs.append(row)
        write_csv(self.out_dir / "epochs.csv", pd.DataFrame(self.epochs))

    def checkpoint(self, payload: dict) -> None:
        """``best.pt``: ``{model, optimizer, epoch, best_metric, config}``."""
        atomic_write(self.out_dir / "best.pt", lambda handle: torch.save(payload, handle))

    def finish(self, metrics: dict, per_user: pd.DataFrame) -> None:
        """Per-user test metrics, then ``metrics.json`` last: its presence marks a finished run."""
        write_csv(self.out_dir / "per_user_test.csv", per_user)
        write_json(self.out_dir / "metrics.json", metrics)
