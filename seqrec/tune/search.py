"""The hyperparameter search behind ``python train.py hparams_search=<name>``: Optuna's ask/tell API
driven from seqrec's own Hydra sweeper (``hydra_plugins/seqrec_optuna_sweeper``).

One search is one Optuna study stored in the sweep folder (``study.db``, SQLite) and one run folder
per trial (``trial<N>/``, N = the Optuna trial number). :func:`run_search` does, in order:

1. **Checks before anything is written** (:func:`~seqrec.tune.space.check_search`): ``n_trials``/``n_jobs`` ≥ 1, the
   direction ``maximize`` (train.py returns a validation HR/NDCG), every searched range one Optuna
   can sample (named), every parameter and value one the config has (each range's edges composed),
   the fixed settings accepted by :func:`seqrec.runs.pipeline.validate_config`, the sampler and pruner
   constructible, and the ``study.db`` an Optuna storage of the installed Optuna's schema
   (:func:`~seqrec.tune.storage.check_storage`; a study written by the old optuna-2 sweeper is named with the command
   that upgrades it).
2. **Continuing a stopped search**: ``n_trials`` is the size of the whole search, so the same
   command run again runs only the missing trials; another space or other fixed settings in the
   same folder are refused (:func:`~seqrec.tune.storage.search_signature`); trials left ``RUNNING`` by a stopped search
   are recorded from their run's ``metrics.json`` when it finished, or marked failed, re-queued and
   their run handed to the new trial, which continues it from ``last.pt``
   (:func:`~seqrec.tune.trials.continue_study`); the sampler's generator is reseeded so the continued search does not
   draw the first command's random trials again.
3. **Trials in batches of** ``n_jobs``: ``study.ask(space)``, the trial's parameters as overrides,
   Hydra's launcher runs them (numbered by their Optuna numbers), ``study.tell`` records each as
   ``COMPLETE`` (the monitored validation metric), ``PRUNED`` (its run wrote ``pruned.json``, see
   :mod:`seqrec.tune.pruning`) or ``FAIL`` (an error, a diverged run); the search goes on after a
   failure unless more than ``max_failure_rate`` of the trials so far failed.
4. ``optimization_results.yaml`` in the sweep folder: the best trial's parameters and value.

The parts live beside it: :mod:`seqrec.tune.space` (the space and the checks),
:mod:`seqrec.tune.storage` (the study on disk), :mod:`seqrec.tune.trials` (the trials' run
folders and a stopped search's continuation), :mod:`seqrec.tune.pruning` (a pruner inside a trial).

Requires the ``tune`` extra (Optuna ≥ 4): ``pip install -e '.[tune]'``; without it the search is
refused with one paragraph before the sweep folder exists.
"""

from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import Any

import yaml

from seqrec.errors import ConfigError
from seqrec.locks import SEARCH_LOCK, exclusive
from seqrec.training.distributed import launched_processes
from seqrec.tune.space import build_part, check_search, override_value
from seqrec.tune.storage import SIGNATURE_ATTR, check_storage, import_optuna, search_signature, signature_differences
from seqrec.tune.trials import TrialRuns, continue_study, folder_namer

log = logging.getLogger(__name__)


def check_pruner(options: Any) -> None:
    """Refuse a pruner that cannot work: one Optuna cannot build, or one without a stored study
    (the trials report their per-epoch metric to the study from their own runs).

    Raises:
        ConfigError: naming the option and the fix.
    """
    build_part(options.pruner, "pruner")  # the trials build it; a bad one is refused here, once
    if options.pruner is not None and not options.storage:
        raise ConfigError(
            "hydra.sweeper.pruner needs a stored study (hydra.sweeper.storage, e.g. "
            "sqlite:///${hydra.sweep.dir}/study.db as in conf/hydra/sweeper/seqrec_optuna.yaml): each trial "
            "reports its per-epoch metric to the study from its own run. Set a storage, or pruner=null."
        )


def open_study(options: Any, sampler: Any, space: dict, fixed: dict, runs: TrialRuns) -> tuple[Any, int]:
    """Create the study, or load and prepare a stored one for a continued search (step 2).

    Returns:
        ``(study, remaining)``: the study and the trials still to run.

    Raises:
        ConfigError: the stored search has another space or other fixed settings, or every one
            of its ``n_trials`` trials failed.
    """
    optuna = import_optuna()
    storage, name = options.storage, options.study_name
    signature = search_signature(space, fixed)
    stored = None
    if storage is not None:
        try:
            stored = optuna.load_study(study_name=name, storage=storage, sampler=sampler)
        except KeyError:  # no such study yet: a new search
            stored = None
    if stored is None:
        study = optuna.create_study(study_name=name, storage=storage, sampler=sampler, direction="maximize")
        study.set_user_attr(SIGNATURE_ATTR, signature)
        return study, int(options.n_trials)
    where = str(storage).removeprefix("sqlite:///")
    previous = stored.user_attrs.get(SIGNATURE_ATTR)
    changed = signature_differences(previous, signature) if previous is not None else []
    if changed:
        raise ConfigError(
            f"{where} holds the search {name!r} with another space or other fixed settings: "
            f"{'; '.join(changed)}. Run this search in another folder (hydra.sweep.dir=…), or delete that "
            "folder's study.db to start over; to add trials to the stored search, repeat its command with "
            "a larger hydra.sweeper.n_trials."
        )
    if previous is None:  # a study stored before signatures: this search's from now on
        stored.set_user_attr(SIGNATURE_ATTR, signature)
    states = [t.state.name for t in stored.get_trials(deepcopy=False)]
    if "COMPLETE" not in states and states.count("FAIL") >= options.n_trials:
        raise ConfigError(
            f"{where}: every one of the search's {len(states)} trials failed, and they count towards "
            f"n_trials={options.n_trials}. Fix what made them fail (their train.log), then delete the "
            "study.db to run the search again."
        )
    finished, _ = continue_study(stored, runs)
    remaining = max(0, int(options.n_trials) - finished)
    log.info(
        "continuing the search in %s: %d of %d trials finished, %d to go",
        storage,
        finished,
        options.n_trials,
        remaining,
    )
    if hasattr(sampler, "reseed_rng"):  # else the continued search draws the first one's random trials again
        sampler.reseed_rng()
    if remaining == 0:
        log.info("the search is complete (n_trials=%d); raise hydra.sweeper.n_trials to run more trials", finished)
    return stored, remaining


def record(study: Any, trial: Any, job: Any, runs: TrialRuns) -> str:
    """Tell the study how ``trial``'s job ended (``COMPLETE`` with its value, ``PRUNED`` when its
    run wrote ``pruned.json``, else ``FAIL``); returns the state's name."""
    from hydra.core.utils import JobStatus

    optuna = import_optuna()
    state = optuna.trial.TrialState
    value = job.return_value if job.status == JobStatus.COMPLETED else None
    frozen = study.get_trials(deepcopy=False)[trial.number]
    if value is None and runs.pruned(frozen) is not None:
        study.tell(trial, state=state.PRUNED)
        return "PRUNED"
    try:
        value = float(value)
    except (TypeError, ValueError):
        value = math.nan
    if job.status != JobStatus.COMPLETED or not math.isfinite(value):
        study.tell(trial, state=state.FAIL)
        return "FAIL"
    study.tell(trial, value)
    return "COMPLETE"


def run_search(options: Any, config: Any, config_loader: Any, launcher: Any, arguments: list[str]) -> list:
    """Run (or continue) the search the sweeper's options describe (see the module docstring).

    Args:
        options: ``hydra.sweeper`` (n_trials, n_jobs, direction, storage, study_name, sampler,
            pruner, max_failure_rate, params).
        config: the whole composed config.
        config_loader: Hydra's config loader (the checks compose trial configs with it).
        launcher: Hydra's launcher, which runs a batch of trials.
        arguments: the command line's task overrides.

    Returns:
        One list of Hydra ``JobReturn`` per batch.

    Raises:
        ConfigError: a check fails (before anything is written: the space, the storage, torchrun),
            more trials failed than ``max_failure_rate`` allows, or no trial completed.
        FolderInUse: another search process holds the search folder.
    """
    import_optuna()
    if launched_processes() > 1:
        raise ConfigError(
            "A search does not run under torchrun (or a Slurm step of several tasks): every process would "
            "run its own sweeper on the one "
            "study, each asking for trials and marking the others' running trials failed. Run the search "
            "with plain python (one process per trial; a parallel launcher runs several at once, see "
            "docs/tuning.md), and use torchrun for single runs, e.g. the best configuration's."
        )
    space, fixed = check_search(options, config, config_loader, arguments)
    check_storage(options.storage)
    sampler = build_part(options.sampler, "sampler")
    check_pruner(options)
    sweep_dir = Path(str(config.hydra.sweep.dir))
    sweep_dir.mkdir(parents=True, exist_ok=True)
    # a second search process on the same study would take this one's running trials for interrupted
    # ones, mark them failed and rerun them: one search per folder at a time
    with exclusive(sweep_dir / SEARCH_LOCK, what="search folder"):
        return _search(options, config, launcher, sampler, space, fixed, sweep_dir)


def _search(options: Any, config: Any, launcher: Any, sampler: Any, space: dict, fixed: dict, sweep_dir: Path) -> list:
    """:func:`run_search` after its checks, holding the search folder's lock."""
    if int(options.n_jobs) > 1 and "BasicLauncher" in type(launcher).__name__:
        log.warning(
            "hydra.sweeper.n_jobs=%d with Hydra's basic launcher: each batch of %d trials is proposed at once but "
            "runs one trial after another (worse exploration, no speed-up). Add hydra/launcher=local "
            "hydra.launcher.n_jobs=%d to run them in parallel, or set n_jobs=1.",
            options.n_jobs,
            options.n_jobs,
            options.n_jobs,
        )
    runs = TrialRuns(sweep_dir, folder_namer(config))
    study, remaining = open_study(options, sampler, space, fixed, runs)
    fixed_overrides = [f"{k}={v}" for k, v in fixed.items()]
    returns, failures, done = [], 0, 0
    while remaining > 0:
        trials = [study.ask(space) for _ in range(min(int(options.n_jobs), remaining))]
        batch = [[*fixed_overrides, *(f"{k}={override_value(v)}" for k, v in t.params.items())] for t in trials]
        jobs = []
        for start, size in _consecutive([t.number for t in trials]):  # job numbers are trial numbers
            jobs.extend(launcher.launch(batch[start : start + size], initial_job_idx=trials[start].number))
        returns.append(jobs)
        runs = TrialRuns(sweep_dir, folder_namer(config))
        for trial, job in zip(trials, jobs):
            state = record(study, trial, job, runs)
            failures += state == "FAIL"
            log.info("trial %d: %s%s", trial.number, state, f" {job.return_value:.6g}" if state == "COMPLETE" else "")
        done += len(trials)
        remaining -= len(trials)
        if failures / done > float(options.max_failure_rate):
            raise ConfigError(
                f"{failures} of the {done} trials run so far failed, more than hydra.sweeper.max_failure_rate="
                f"{options.max_failure_rate} allows; each one's error is printed above and its folder holds its "
                "train.log. Fix the search space or the fixed settings and run the command again (the search "
                "continues), or raise max_failure_rate."
            )
    write_results(study, sweep_dir)
    return returns


def _consecutive(numbers: list[int]) -> list[tuple[int, int]]:
    """``(start index, length)`` of each run of consecutive trial numbers (a re-queued trial keeps
    its number, so a batch's numbers may have gaps)."""
    chunks: list[tuple[int, int]] = []
    for i, number in enumerate(numbers):
        if chunks and numbers[i - 1] + 1 == number:
            chunks[-1] = (chunks[-1][0], chunks[-1][1] + 1)
        else:
            chunks.append((i, 1))
    return chunks


def write_results(study: Any, sweep_dir: Path) -> None:
    """``optimization_results.yaml``: the best trial's number, parameters and value; when no trial
    completed because the pruner stopped some, a warning and no file.

    Raises:
        ConfigError: every trial of the study failed.
    """
    from seqrec.atomic import atomic_write

    states = [t.state.name for t in study.get_trials(deepcopy=False)]
    if "COMPLETE" not in states:
        if "PRUNED" not in states:
            raise ConfigError(
                f"No trial of the search {study.study_name!r} completed: every trial failed (each one's error is "
                "printed above, and its folder holds its train.log). Fix the search space or the fixed settings, "
                "then delete the study.db: its failed trials count towards n_trials."
            )
        log.warning(
            "no trial completed (%d pruned, %d failed), so the search has no best configuration: loosen "
            "hydra.sweeper.pruner (more n_startup_trials or n_warmup_steps) or raise n_trials",
            states.count("PRUNED"),
            states.count("FAIL"),
        )
        return
    best = study.best_trial
    result = {"name": study.study_name, "best_trial": best.number, "best_params": dict(best.params)}
    path = atomic_write(sweep_dir / "optimization_results.yaml", yaml.safe_dump({**result, "best_value": best.value}))
    log.info("best trial %d: objective %.6g (%s)", best.number, best.value, path)
