"""Seeds: the run's global seed and the per-epoch seeds that make every epoch reproducible alone.

Each fine-tuning epoch draws its batch order, its sampled negatives and its dropout masks from
generators seeded by ``(seed, epoch)`` only, never from state carried over from earlier epochs.
A run resumed after epoch ``k`` therefore computes epochs ``k+1, …`` exactly as an uninterrupted
run does (bit for bit on a CPU). S3-Rec's pre-training does the same with :func:`epoch_seed`
(``seqrec.data.pretrain_samples``), kept as it is so existing pre-trained checkpoints stay valid.
"""

from __future__ import annotations

import hashlib
import random

import numpy as np
import torch


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch (CPU and every CUDA device) global generators."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def derive_seed(*parts: object) -> int:
    """A 63-bit seed from the parts' text (e.g. ``derive_seed("train", 42, 7)``).

    A hash, so seeds of different streams (``"train"`` vs pre-training) and neighbouring
    ``(seed, epoch)`` pairs are unrelated, and the value is the same on every machine and Python.
    """
    text = "/".join(map(str, parts)).encode()
    return int.from_bytes(hashlib.sha256(text).digest()[:8], "little") & (2**63 - 1)
