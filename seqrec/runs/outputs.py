"""The files a run leaves in its output directory, all written atomically.

``config.yaml`` (resolved config), ``ids.npz`` (raw item and user ids, for recommendations from
the run folder alone), ``epochs.csv`` (one row per epoch, rewritten as training goes),
``best.pt`` (the selected state, written whenever the monitor improves), ``last.pt`` (everything
a resumed run needs, written after every epoch and on SIGTERM/Ctrl-C), ``per_user_test.csv``
(per-user test metrics keyed by the raw user id, for paired t-tests), and last ``metrics.json``.
A directory without ``metrics.json`` is not a finished run: tables and plots only read
directories that have it, and ``resume`` continues it from ``last.pt``.
"""

from __future__ import annotations

import contextlib
import shutil
from pathlib import Path
from typing import Protocol

import numpy as np
import pandas as pd
import torch

from seqrec.atomic import atomic_write, write_json
from seqrec.errors import SeqrecError
from seqrec.evaluation import metrics_from_ranks
from seqrec.runs.resume import load_state
from seqrec.training.checkpoints import Checkpoints

# what last.pt holds (bump when its layout changes)
LAST_VERSION = 1


class OutputError(SeqrecError):
    """A run file could not be written (disk full, read-only folder, …)."""


def _is_write_failure(err: BaseException) -> bool:
    """An ``OSError``, or the ``RuntimeError`` torch's zip writer raises when a write fails
    (a full disk shows up as "[enforce fail at inline_container.cc] unexpected pos …")."""
    if isinstance(err, OSError):
        return True
    text = str(err)
    return isinstance(err, RuntimeError) and ("inline_container" in text or "PytorchStreamWriter" in text)


@contextlib.contextmanager
def writing(folder: Path, what: str):
    """Turn a failed write of ``what`` into ``folder`` (an ``OSError``, or torch's writer failing
    on a full disk) into one :class:`OutputError` paragraph naming the folder, the free space and
    the fix (the atomic writer leaves no partial file)."""
    try:
        yield
    except (OSError, RuntimeError) as err:
        if not _is_write_failure(err):
            raise
        reason = getattr(err, "strerror", None) or str(err).splitlines()[0]
        try:
            reason += f" ({shutil.disk_usage(folder).free:,} bytes free on that disk)"
        except OSError:
            pass
        raise OutputError(
            f"could not write {what} into the run folder {folder}: {reason}. Free disk space or make "
            "the folder writable, or send runs elsewhere with hydra.run.dir=<folder> (sweeps: "
            "hydra.sweep.dir=<folder>). A run that already saved last.pt continues with "
            f"`python train.py resume={folder}`."
        ) from None


def write_csv(path: Path, frame: pd.DataFrame) -> None:
    """Atomically write ``frame`` as CSV without the index."""
    atomic_write(path, frame.to_csv(index=False))


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


class RunOutput(Protocol):
    """What a run's parts call on its output: the trainer's checkpoints (``save_best``,
    ``save_last``, ``load_best``) and the run's files and trackers. :class:`RunWriter` writes them
    (rank 0); :class:`NoWriter` is the same interface writing nothing (the other DDP ranks).

    Attributes:
        facts: run facts kept in ``last.pt`` for ``metrics.json`` (S3-Rec's pre-training facts),
            known only after the config is written, so set after construction.
    """

    facts: dict

    def config(self, yaml_text: str) -> None: ...
    def ids(self, item_tokens: np.ndarray, user_tokens: np.ndarray) -> None: ...
    def start_trackers(self, trackers: list, first_epoch: int) -> None: ...
    def close_trackers(self) -> None: ...
    def epoch(self, row: dict) -> None: ...
    def save_best(self, state: dict) -> None: ...
    def save_last(self, state: dict) -> None: ...
    def load_best(self) -> dict | None: ...
    def finish(self, metrics: dict, per_user: pd.DataFrame) -> None: ...


class RunWriter(Checkpoints):
    """Writes one run's files into ``out_dir`` as the run progresses; the trainer's checkpoints
    (a :class:`RunOutput`).

    Args:
        out_dir: the run folder (created).
        config: the resolved config as a plain dict (saved in ``best.pt`` and ``last.pt``).
        history: epoch rows already written (a resumed run), so ``epochs.csv`` continues.
        model_kwargs: the model's data-derived constructor arguments (``n_items``, …), kept in
            ``best.pt`` so that :func:`seqrec.runs.rundir.read_run` rebuilds the model without
            re-deriving them.
        data_fingerprint: the data the run trains on (``SequenceData.fingerprint``), kept in
            ``best.pt`` and ``last.pt`` so a checkpoint of another run or other data is refused
            (:func:`seqrec.runs.resume.check_identity`).

    Raises:
        OutputError: a file cannot be written (every method).
    """

    def __init__(
        self,
        out_dir: Path,
        config: dict | None = None,
        history: list[dict] | None = None,
        model_kwargs: dict | None = None,
        data_fingerprint: str | None = None,
    ):
        self.out_dir = Path(out_dir)
        self.run_config = config or {}
        self.epochs: list[dict] = list(history or [])
        self.facts: dict = {}
        self.model_kwargs: dict = dict(model_kwargs or {})
        self.data_fingerprint = data_fingerprint
        self.trackers: list = []  # seqrec.runs.tracking: experiment trackers beside the files
        self.unsaved: list[dict] = []  # epoch rows the trackers get once last.pt holds their epoch
        with writing(self.out_dir, "the run folder"):
            self.out_dir.mkdir(parents=True, exist_ok=True)

    def _write(self, name: str, write) -> None:
        if not self.out_dir.is_dir():  # the atomic writer would quietly make a new, partial folder
            raise OutputError(
                f"the run folder {self.out_dir} disappeared while the run was going (deleted or moved), "
                f"so {name} has nowhere to go and the run stops. Start the run again; to keep results, "
                "do not delete or move a run folder while its run is going."
            )
        with writing(self.out_dir, name):
            write(self.out_dir / name)

    def config(self, yaml_text: str) -> None:
        self._write("config.yaml", lambda path: atomic_write(path, yaml_text))

    def ids(self, item_tokens: np.ndarray, user_tokens: np.ndarray) -> None:
        """``ids.npz``: ``item_tokens [N + 1]`` (raw id of item index i; ``[0]`` is padding) and
        ``user_tokens [U]`` (raw id of user index u), as strings; no pickles."""
        self._write(
            "ids.npz",
            lambda path: atomic_write(
                path,
                lambda handle: np.savez(
                    handle,
                    item_tokens=np.asarray(item_tokens, dtype=str),
                    user_tokens=np.asarray(user_tokens, dtype=str),
                ),
            ),
        )

    def start_trackers(self, trackers: list, first_epoch: int) -> None:
        """Start the run's experiment trackers (:mod:`seqrec.runs.tracking`) at ``first_epoch`` (> 1 for a
        resumed run, which continues their records)."""
        self.trackers = list(trackers)
        for tracker in self.trackers:
            tracker.start(self.out_dir, self.run_config, first_epoch)

    def close_trackers(self) -> None:
        """Flush and close every tracker (also after an error or an interruption)."""
        for tracker in self.trackers:
            tracker.close()

    def epoch(self, row: dict) -> None:
        """Append one epoch's row to ``epochs.csv`` (rewritten atomically, it is small); the
        trackers get it from :meth:`save_last`, once ``last.pt`` holds that epoch, so a process
        killed in between never leaves a tracked epoch that its resumed run computes again."""
        self.epochs.append(row)
        self._write("epochs.csv", lambda path: write_csv(path, pd.DataFrame(self.epochs)))
        self.unsaved.append(row)

    def save_best(self, state: dict) -> None:
        """``best.pt``: ``{model, loss, optimizer, epoch, best_metric, config, model_kwargs,
        data_fingerprint}`` of the selected epoch (``loss``: the loss's own parameters, empty for most losses;
        ``model_kwargs``: the model's data-derived constructor arguments)."""
        loop = state["loop"]
        payload = {
            "model": state["model"],
            "loss": state.get("loss", {}),
            "optimizer": state["optimizer"],
            "epoch": loop["best_epoch"],
            "best_metric": {state["monitor"]: loop["best_score"]},
            "config": self.run_config,
            "model_kwargs": self.model_kwargs,
            "data_fingerprint": self.data_fingerprint,
        }
        self._write("best.pt", lambda path: atomic_write(path, lambda handle: torch.save(payload, handle)))

    def save_last(self, state: dict) -> None:
        """``last.pt``: the trainer's state dict (model, optimizer, loop state with generator
        states and log rows) plus the config, the run's facts and a format version."""
        payload = {
            **state,
            "config": self.run_config,
            "facts": self.facts,
            "version": LAST_VERSION,
            "data_fingerprint": self.data_fingerprint,
        }
        self._write("last.pt", lambda path: atomic_write(path, lambda handle: torch.save(payload, handle)))
        rows, self.unsaved = self.unsaved, []
        for row in rows:
            for tracker in self.trackers:
                tracker.log_epoch(row)

    def load_best(self) -> dict | None:
        """The best epoch's checkpoint (None before any epoch was validated).

        Raises:
            SeqrecError: ``best.pt`` is missing although the run validated epochs, or damaged.
        """
        path = self.out_dir / "best.pt"
        if path.is_file():
            return load_state(path)
        if self.epochs:  # validated epochs and no best state: the results would be the last epoch's
            raise SeqrecError(
                f"{path} disappeared while the run was going, so the best epoch's weights are gone "
                f"and its results cannot be computed. Delete the folder {self.out_dir} and train the run again."
            )
        return None

    def finish(self, metrics: dict, per_user: pd.DataFrame) -> None:
        """Per-user test metrics, then ``metrics.json`` last: its presence marks a finished run."""
        self._write("per_user_test.csv", lambda path: write_csv(path, per_user))
        self._write("metrics.json", lambda path: write_json(path, metrics))
        for tracker in self.trackers:
            tracker.log_final(metrics)
        self.close_trackers()


class NoWriter(Checkpoints):
    """The :class:`RunOutput` of a DDP rank other than 0: writes and tracks nothing and keeps no
    best state (the trainer then takes rank 0's best weights by
    :func:`seqrec.training.distributed.broadcast_module`). Same constructor as :class:`RunWriter`."""

    def __init__(self, *args, **kwargs):
        super().__init__()
        self.facts: dict = {}

    def config(self, yaml_text: str) -> None:
        pass

    def ids(self, item_tokens: np.ndarray, user_tokens: np.ndarray) -> None:
        pass

    def start_trackers(self, trackers: list, first_epoch: int) -> None:
        pass  # only the rank that writes the run folder tracks

    def close_trackers(self) -> None:
        pass

    def epoch(self, row: dict) -> None:
        pass

    def save_best(self, state: dict) -> None:
        pass

    def finish(self, metrics: dict, per_user: pd.DataFrame) -> None:
        pass
