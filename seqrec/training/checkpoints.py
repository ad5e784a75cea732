"""What the training loop saves and how it is stopped: :class:`LoopState` (the loop's position,
part of ``last.pt``), :class:`Checkpoints` (where best and latest states go; in memory here,
run files in :class:`seqrec.runs.outputs.RunWriter`), :class:`StopRequest` / :class:`Interrupted`
(SIGTERM and Ctrl-C stop the loop at the end of the running batch), and :func:`read_checkpoint`,
the one reader of a saved state file.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass, field
from pathlib import Path

import torch

from seqrec.errors import SeqrecError


class DamagedCheckpoint(SeqrecError):
    """A checkpoint file that cannot be loaded (cut short by a crash or a full disk, not a
    checkpoint at all); the message names the file and the cause. Callers add what to do."""


def read_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict:
    """A state saved with ``torch.save`` (``last.pt``, ``best.pt``, a pre-training epoch), loaded
    with ``weights_only=True`` (tensors and plain containers only, never arbitrary code).

    Raises:
        DamagedCheckpoint: the file is truncated or not a checkpoint (any unpickling error).
        SeqrecError: the file cannot be opened (missing, no permission): not damaged, so no caller
            falls back to an older state or tells anyone to delete it.
        torch.OutOfMemoryError: as torch raises it (the file is fine; the device is full).
    """
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except torch.OutOfMemoryError:
        raise
    except OSError as err:
        raise SeqrecError(f"cannot open the checkpoint {path}: {err.strerror or err}") from None
    except Exception as err:  # noqa: BLE001 - zip and pickle errors share no base class
        raise DamagedCheckpoint(
            f"the checkpoint {path} is damaged: it cannot be read ({type(err).__name__}: {err})"
        ) from None


@dataclass
class LoopState:
    """Where the loop stands: what ``last.pt`` holds besides the model and optimizer.

    Attributes:
        epoch: epochs completed.
        best_score, best_epoch: the best monitored value so far and its epoch (0 = none yet).
        history: the log rows of the completed epochs.
        train_seconds, eval_seconds: time spent so far (seconds).
        batches_done: batches of epoch ``epoch + 1`` already trained (an interrupted epoch).
        loss_total: their summed weighted loss.
        rng: generator states at that batch (global torch CPU/CUDA, negatives), or None.
    """

    epoch: int = 0
    best_score: float = -math.inf
    best_epoch: int = 0
    history: list[dict] = field(default_factory=list)
    train_seconds: float = 0.0
    eval_seconds: float = 0.0
    batches_done: int = 0
    loss_total: float = 0.0
    rng: dict | None = None


class Checkpoints:
    """Where the loop keeps the best state and the latest state; this one keeps them in memory.

    :class:`seqrec.runs.outputs.RunWriter` keeps them as ``best.pt`` and ``last.pt`` in the run folder
    instead. ``save_best``/``save_last`` get the full state dict of :meth:`Trainer.state_dict`.
    """

    def __init__(self):
        self.best: dict | None = None

    def save_best(self, state: dict) -> None:
        self.best = copy.deepcopy(state)

    def save_last(self, state: dict) -> None:
        pass  # nothing to resume from in memory

    def load_best(self) -> dict | None:
        return self.best


class StopRequest:
    """A flag set by a signal handler (SIGTERM, Ctrl-C); the loop stops at the end of the batch."""

    def __init__(self):
        self.signal: int | None = None

    def __call__(self, signum: int, frame=None) -> None:
        self.signal = signum


class Interrupted(Exception):
    """The loop stopped on a :class:`StopRequest`; its state is saved (``last.pt``).

    Attributes:
        signal: the signal number that asked to stop.
        epoch: completed epochs; batches: batches of the next epoch already done.
    """

    def __init__(self, signal: int, epoch: int, batches: int):
        super().__init__(f"stopped by signal {signal} after epoch {epoch} and {batches} batches of the next")
        self.signal, self.epoch, self.batches = signal, epoch, batches
