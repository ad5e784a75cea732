"""The trials' run folders (``trial<N>/``, N = the Optuna trial number) and a stopped search's
continuation: trials left running are recorded from their run's ``metrics.json`` or marked failed
and re-queued with their run handed over.
"""

from __future__ import annotations

import json
import logging
import math
from pathlib import Path
from typing import Any, Callable

import yaml

from seqrec.tune.storage import import_optuna

log = logging.getLogger(__name__)

PRUNED_FILE = "pruned.json"  # written into a trial's run folder when its pruner stopped it
FINISHED = ("COMPLETE", "PRUNED", "FAIL")  # trial states that count towards ``n_trials``


class TrialRuns:
    """The trials' run folders in a search's folder.

    Args:
        sweep_dir: the search's folder (``hydra.sweep.dir``). Each trial's run folder records its
            job number (``.hydra/hydra.yaml``: ``hydra.job.num``, the Optuna trial number here).
        folder_name: the folder name a job number gets (``hydra.sweep.subdir`` resolved), or None
            when it cannot be known; then interrupted runs are not handed over.
    """

    def __init__(self, sweep_dir: str | Path, folder_name: Callable[[int], str | None] | None = None) -> None:
        self.sweep_dir = Path(sweep_dir)
        self.folder_name = folder_name
        self.folders: dict[int, Path] = {}
        for record in self.sweep_dir.glob("*/.hydra/hydra.yaml"):
            try:
                num = int(yaml.safe_load(record.read_text())["hydra"]["job"]["num"])
            except (OSError, yaml.YAMLError, KeyError, TypeError, ValueError):
                continue  # not a trial's run folder
            self.folders[num] = record.parent.parent

    def folder(self, number: int) -> Path | None:
        """Trial ``number``'s run folder: the one recorded, else the one its name gives."""
        if number in self.folders:
            return self.folders[number]
        name = self.folder_name(number) if self.folder_name is not None else None
        return self.sweep_dir / name if name is not None else None

    def _fresh(self, trial: Any, name: str) -> Path | None:
        """``<folder>/<name>`` when written after ``trial`` started (not an earlier search's file)."""
        folder = self.folder(trial.number)
        if folder is None:
            return None
        path = folder / name
        try:
            if trial.datetime_start is not None and path.stat().st_mtime < trial.datetime_start.timestamp():
                return None
        except OSError:
            return None
        return path

    def value(self, trial: Any) -> float | None:
        """The objective of ``trial``'s finished run (an Optuna ``FrozenTrial``): the monitored
        metric, as train.py returns it (``metrics[metrics["monitor"]]``), or None when the trial has
        no run folder, its run has no ``metrics.json`` (unfinished), that file is older than the
        trial (a previous search's run in the same folder) or its value is not finite."""
        from seqrec.tune.study import trial_metrics

        path = self._fresh(trial, "metrics.json")
        if path is None:
            return None
        metrics = trial_metrics(path.parent)
        try:
            result = float(metrics[metrics["monitor"]])
        except (KeyError, TypeError, ValueError):
            return None
        return result if math.isfinite(result) else None

    def pruned(self, trial: Any) -> dict | None:
        """What ``trial``'s run wrote when its pruner stopped it (``pruned.json``), or None."""
        path = self._fresh(trial, PRUNED_FILE)
        if path is None:
            return None
        try:
            return json.loads(path.read_text())
        except (OSError, ValueError):
            return None

    def hand_over(self, old: int, new: int) -> Path | None:
        """Move the unfinished run of trial ``old`` to the folder of trial ``new`` (its re-queued
        copy, same parameters), where train.py continues it from its ``last.pt`` instead of
        starting over. Returns the new folder, or None when there is nothing to move (no folder,
        no ``last.pt``), the new folder's name is unknown or the new folder exists already."""
        source = self.folders.get(old)
        name = self.folder_name(new) if self.folder_name is not None else None
        if source is None or name is None or not (source / "last.pt").is_file():
            return None
        target = self.sweep_dir / name
        if target.exists():
            return None
        source.rename(target)
        self.folders.pop(old)
        self.folders[new] = target
        return target


def continue_study(study: Any, runs: TrialRuns | None = None) -> tuple[int, int]:
    """Prepare a stored study for a continued search.

    Every ``RUNNING`` trial (its search stopped while it ran) whose run had finished
    (:meth:`TrialRuns.value`) is recorded ``COMPLETE`` with that value; every other one is marked
    ``FAIL`` and its parameters are queued again (``study.enqueue_trial``), so the next ``ask()``
    retries them, and its unfinished run is handed over to the queued trial's folder
    (:meth:`TrialRuns.hand_over`) to be continued from its ``last.pt``.

    Args:
        study: an ``optuna.Study`` loaded from its storage.
        runs: the trials' run folders, or None (no run finished, none to continue).

    Returns:
        ``(finished, next_number)``: trials that count towards ``n_trials`` (complete, pruned or
        failed, including the interrupted ones recorded complete, not the ones marked failed), and
        the Optuna number the next asked trial gets — a queued (``WAITING``) trial's own number if
        there is one, else the next free number.
    """
    optuna = import_optuna()
    state = optuna.trial.TrialState
    trials = study.get_trials(deepcopy=False)
    finished = sum(t.state.name in FINISHED for t in trials)
    for t in [t for t in trials if t.state == state.RUNNING]:
        value = runs.value(t) if runs is not None else None
        if value is not None:
            log.info(
                "trial %d finished its run before the search stopped: recorded complete with "
                "its objective %.6g from its metrics.json",
                t.number,
                value,
            )
            study.tell(t.number, value)
            finished += 1
            continue
        study.tell(t.number, state=state.FAIL)
        study.enqueue_trial(dict(t.params))
        queued = study.get_trials(deepcopy=False)[-1].number
        moved = runs.hand_over(t.number, queued) if runs is not None else None
        log.warning(
            "trial %d was running when the search stopped: marked failed, its parameters are "
            "tried again first as trial %d%s",
            t.number,
            queued,
            f", continuing its run (moved to {moved})" if moved else "",
        )
    trials = study.get_trials(deepcopy=False)
    waiting = [t.number for t in trials if t.state == state.WAITING]
    next_number = min(waiting) if waiting else len(trials)
    return finished, next_number


def folder_namer(config: Any) -> Callable[[int], str | None]:
    """``hydra.sweep.subdir`` for a job number (e.g. ``trial${hydra.job.num}`` → ``trial7``); None
    when the pattern needs more than the job number to resolve."""
    from omegaconf import OmegaConf

    pattern = OmegaConf.to_container(config.hydra.sweep, resolve=False).get("subdir")

    def name(number: int) -> str | None:
        try:
            node = OmegaConf.create({"hydra": {"job": {"num": number}, "sweep": {"subdir": pattern}}})
            return str(node.hydra.sweep.subdir)
        except Exception:  # noqa: BLE001 - any other interpolation (override_dirname, env, …)
            return None

    return name
