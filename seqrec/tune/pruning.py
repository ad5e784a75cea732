"""Pruning a search's trials from their per-epoch validation metric (``hydra.sweeper.pruner``).

A trial is one ``train.py`` run, in the sweeper's process or another one (a parallel launcher), so
the pruner runs inside the trial: :class:`TrialPruning` is a tracker (:mod:`seqrec.runs.tracking`) that,
after every epoch, stores the run's monitored validation metric (``trainer.monitor``) in the study
as the trial's intermediate value at step = epoch, asks the search's pruner
(``pruner.prune(study, trial)``, Optuna's public pruner API) whether to stop, and if so writes
``pruned.json`` into the run folder (epoch, metric, value, pruner) and raises :class:`TrialPruned`.
train.py ends such a run with no result and no error; the sweeper records the trial ``PRUNED``
(:func:`seqrec.tune.search.record`). Without a pruner (the default) nothing of this runs, so a
search without one picks its trials exactly as before.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from seqrec.errors import ConfigError
from seqrec.training.distributed import launched_processes
from seqrec.tune.space import build_part
from seqrec.tune.storage import import_optuna
from seqrec.tune.trials import PRUNED_FILE

SWEEPER = "hydra_plugins.seqrec_optuna_sweeper.SeqrecOptunaSweeper"


class TrialPruned(Exception):
    """The search's pruner stopped this trial after ``epoch`` (its run folder has ``pruned.json``)."""

    def __init__(self, number: int, epoch: int, monitor: str, value: float):
        super().__init__(f"trial {number} pruned after epoch {epoch} ({monitor} {value:.6g})")
        self.epoch = epoch


class TrialPruning:
    """Reports a trial's monitored metric to its Optuna trial and stops it when the pruner says so.

    Args:
        storage: the study's storage URL (``hydra.sweeper.storage``).
        study_name: the study (``hydra.sweeper.study_name``).
        number: the trial's Optuna number (= ``hydra.job.num``: the sweeper numbers jobs so).
        pruner: the pruner node (``{_target_: optuna.pruners.MedianPruner, …}``).
        monitor: the epoch row's key to report (``trainer.monitor``, e.g. ``valid/ndcg@20``).
    """

    name = "pruning"

    def __init__(self, storage: str, study_name: str, number: int, pruner: Any, monitor: str):
        self.url, self.study_name, self.number, self.node, self.monitor = storage, study_name, number, pruner, monitor
        self.run_dir: Path | None = None

    def start(self, run_dir: Path, config: dict, first_epoch: int) -> None:
        optuna = import_optuna()
        self.run_dir = Path(run_dir)
        self.pruner = build_part(self.node, "pruner")
        self.storage = optuna.storages.RDBStorage(self.url)
        self.study = optuna.load_study(study_name=self.study_name, storage=self.storage, pruner=self.pruner)
        study_id = self.storage.get_study_id_from_name(self.study_name)
        self.trial_id = self.storage.get_trial_id_from_study_id_trial_number(study_id, self.number)
        if first_epoch > 1:  # a continued run: the epochs before it count for this trial too
            import pandas as pd

            epochs = self.run_dir / "epochs.csv"
            if epochs.is_file():
                for row in pd.read_csv(epochs).to_dict("records"):
                    if row["epoch"] < first_epoch:
                        self._report(row)

    def _report(self, row: dict) -> float | None:
        value = row.get(self.monitor)
        if value is None or not math.isfinite(float(value)):
            return None
        self.storage.set_trial_intermediate_value(self.trial_id, int(row["epoch"]), float(value))
        return float(value)

    def log_epoch(self, row: dict) -> None:
        from seqrec.atomic import atomic_write

        value = self._report(row)
        if value is None or not self.pruner.prune(self.study, self.storage.get_trial(self.trial_id)):
            return
        import json

        epoch = int(row["epoch"])
        note = {"epoch": epoch, "monitor": self.monitor, "value": value, "pruner": type(self.pruner).__name__}
        atomic_write(self.run_dir / PRUNED_FILE, json.dumps(note, indent=2) + "\n")
        raise TrialPruned(self.number, epoch, self.monitor, value)

    def log_final(self, metrics: dict) -> None:
        pass

    def close(self) -> None:
        pass


def trial_trackers(hydra_config: Any, monitor: str) -> list:
    """The trackers a search's trial adds to its run: a :class:`TrialPruning` when the job is a
    trial of seqrec's sweeper with a pruner, else none.

    Args:
        hydra_config: the job's Hydra config (``HydraConfig.get()``).
        monitor: ``trainer.monitor``.

    Raises:
        ConfigError: a pruner under torchrun (one rank would stop, the others wait for it).
    """
    sweeper = hydra_config.get("sweeper") or {}
    if str(hydra_config.mode) != "RunMode.MULTIRUN" or sweeper.get("_target_") != SWEEPER:
        return []
    if sweeper.get("pruner") is None:
        return []
    if launched_processes() > 1:
        raise ConfigError(
            "hydra.sweeper.pruner stops one trial from rank 0's validation metric, which a multi-process "
            "(torchrun or Slurm tasks) trial cannot follow on its other ranks. Run the search's trials in one "
            "process each (a parallel launcher, hydra/launcher=local), or set hydra.sweeper.pruner=null."
        )
    return [TrialPruning(sweeper.storage, sweeper.study_name, int(hydra_config.job.num), sweeper.pruner, monitor)]
