"""Hydra's Optuna sweeper with searches that continue where they stopped (``hparams_search=…``).

``conf/hydra/sweeper/seqrec_optuna.yaml`` selects :class:`SeqrecOptunaSweeper`; it is
hydra-optuna-sweeper's ``OptunaSweeper`` (TPE, seeded, study in SQLite) with three changes that a
long search on one machine needs. Hydra loads sweepers only from the ``hydra_plugins`` package,
so the class lives here rather than in ``seqrec``.

* ``n_trials`` is the size of the *whole* search, not of one command: running the same command
  again after an interruption runs only the trials still missing (the stock sweeper would run
  ``n_trials`` more).
* A trial that was running when the search stopped (Ctrl-C, SIGTERM, a killed job) is still
  ``RUNNING`` in the study. If its run had finished (its folder holds a ``metrics.json`` written
  after the trial started: with parallel jobs a finished trial waits for the others of its batch
  before it is recorded), its objective is read from there and the trial recorded ``COMPLETE``;
  otherwise it is marked ``FAIL`` and its parameters are queued again, so the re-run search tries
  them first, and its run folder is handed to the queued trial, which continues the run from its
  ``last.pt`` (bit-identical to an uninterrupted run, see :mod:`seqrec.resume`).
* The sampler's random generator is reseeded when a search continues: with its seed alone, the
  continued search would draw again the random start-up trials the first command already ran.
  An uninterrupted search is reproducible from the sampler's seed; a continued one is not.
* Trial folders are numbered by the Optuna trial number (``hydra.job.num`` starts at the study's
  next trial), so a continued search never writes into, or skips because of, an earlier trial's
  folder.

Failed trials (a diverged loss, an error in one configuration) are recorded as ``FAIL`` and the
search goes on: ``max_failure_rate: 1.0`` in the YAML (the stock default 0.0 stops the search).

Before the study file is opened, :func:`check_search` refuses what would waste or corrupt a search
with one paragraph and exit status 1 (no traceback): ``n_trials``/``n_jobs`` under 1, a direction
other than ``maximize`` (train.py returns a validation HR/NDCG), a range Optuna cannot sample
(named), a parameter or value the config does not have, fixed settings ``validate_config``
refuses (e.g. ``trainer.monitor=test/…``), a ``study.db`` that is not an Optuna storage, and a
different search (another space or other fixed settings, :func:`search_signature`) continued in
the folder of an earlier one.

Requires the ``tune`` extra: ``pip install -e '.[tune]'`` (``make install-tune``).
"""

from __future__ import annotations

import logging
import math
import warnings
from pathlib import Path
from typing import Any, Callable

import yaml

try:
    from hydra_plugins.hydra_optuna_sweeper.optuna_sweeper import OptunaSweeper
except ImportError:  # the tune extra is not installed: every other run must not notice
    OptunaSweeper = None

MISSING = (
    "hparams_search=… needs Hydra's Optuna sweeper, which is not installed. Install the tune "
    "extra with `make install-tune` (or `pip install -e '.[tune]'`) and run the search again."
)

log = logging.getLogger(__name__)
# optuna's SQL storage imports alembic, whose INFO records ("setup plugin …") Hydra would print
logging.getLogger("alembic").setLevel(logging.WARNING)

# trial states that count towards ``n_trials``
_FINISHED = ("COMPLETE", "PRUNED", "FAIL")


class TrialRuns:
    """The trials' run folders in a search's folder, for a continued search.

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

    def value(self, trial: Any) -> float | None:
        """The objective of ``trial``'s finished run (an Optuna ``FrozenTrial``): the monitored
        metric, as train.py returns it (``metrics[metrics["monitor"]]``), or None when the trial has
        no run folder, its run has no ``metrics.json`` (unfinished), that file is older than the
        trial (a previous search's run in the same folder) or its value is not finite."""
        from seqrec.tune.study import trial_metrics

        folder = self.folders.get(trial.number)
        if folder is None:
            return None
        try:
            if (
                trial.datetime_start is not None
                and (folder / "metrics.json").stat().st_mtime < trial.datetime_start.timestamp()
            ):
                return None
        except OSError:  # no metrics.json: the run did not finish
            return None
        metrics = trial_metrics(folder)
        try:
            result = float(metrics[metrics["monitor"]])
        except (KeyError, TypeError, ValueError):
            return None
        return result if math.isfinite(result) else None

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
    ``FAIL`` and its parameters are queued again (Optuna's ``enqueue_trial``), so the next
    ``ask()`` retries them, and its unfinished run is handed over to the queued trial's folder
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
    import optuna

    state = optuna.trial.TrialState
    trials = study.get_trials(deepcopy=False)
    finished = sum(t.state.name in _FINISHED for t in trials)
    interrupted = [t for t in trials if t.state == state.RUNNING]
    for t in interrupted:
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
        with warnings.catch_warnings():  # enqueue_trial is "experimental" in optuna 2.x
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
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


def _folder_name(config: Any) -> Callable[[int], str | None]:
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


SIGNATURE_ATTR = "seqrec_search"  # the study's user attribute holding :func:`search_signature`


def search_signature(space: dict, fixed: dict) -> dict:
    """What makes a search the same search: its space (parameter → its Optuna distribution as text)
    and its fixed settings (``key → value`` overrides; the runtime options of
    :data:`seqrec.resume.RUNTIME_KEYS` such as threads, which do not change a trial's result, left
    out). Stored in the study when it is created and compared when it continues."""
    import json

    from optuna.distributions import distribution_to_json

    from seqrec.resume import RUNTIME_KEYS

    def text(dist: Any) -> str:  # e.g. CategoricalDistribution(choices=[32, 64, 128])
        attrs = json.loads(distribution_to_json(dist))["attributes"]
        return f"{type(dist).__name__}({', '.join(f'{k}={v}' for k, v in sorted(attrs.items()))})"

    return {
        "space": {k: text(d) for k, d in sorted(space.items())},
        "fixed": {
            k: str(v)
            for k, v in sorted(fixed.items())
            if k.lstrip("+~") not in RUNTIME_KEYS and not k.startswith("hydra")
        },
    }


def signature_differences(old: dict, new: dict) -> list[str]:
    """``"<part> <key>: old → new"`` for each parameter or fixed setting that differs."""
    out = []
    for part in ("space", "fixed"):
        a, b = old.get(part, {}), new.get(part, {})
        for key in sorted(set(a) | set(b)):
            if a.get(key) != b.get(key):
                out.append(
                    f"{'parameter' if part == 'space' else 'setting'} {key}: "
                    f"{a.get(key, '(not set)')} → {b.get(key, '(not set)')}"
                )
    return out


def _candidates(dist: Any) -> list:
    """The values of a distribution a trial can get at its edges: every choice, or low and high."""
    if hasattr(dist, "choices"):
        return list(dist.choices)
    return [dist.low, dist.high]


def check_search(impl: Any, arguments: list[str]) -> tuple[dict, dict]:
    """Check a search before its study is opened (see the module docstring).

    Args:
        impl: the stock sweeper's implementation (``OptunaSweeperImpl``, after ``setup``).
        arguments: the command line's task overrides.

    Returns:
        ``(space, fixed)``: the searched parameters' distributions and the fixed overrides.

    Raises:
        ConfigError: a check fails; the message names the option and the fix.
    """
    from hydra.errors import HydraException
    from omegaconf import open_dict
    from omegaconf.errors import OmegaConfBaseException

    from hydra_plugins.hydra_optuna_sweeper._impl import create_params_from_overrides
    from seqrec.errors import ConfigError
    from seqrec.pipeline import validate_config

    for name in ("n_trials", "n_jobs"):
        value = getattr(impl, name)
        if not isinstance(value, int) or value < 1:
            raise ConfigError(
                f"hydra.sweeper.{name}={value}: it must be a whole number ≥ 1 ("
                f"{'the size of the whole search' if name == 'n_trials' else 'trials run at once'})."
            )
    directions = impl._get_directions()
    if directions != ["maximize"]:
        raise ConfigError(
            f"hydra.sweeper.direction={','.join(directions)}: train.py returns the run's "
            "trainer.monitor validation metric (HR@k or NDCG@k), where higher is better, so a "
            "search must maximize it; leave hydra.sweeper.direction out."
        )
    impl._process_searchspace_config()
    space, fixed = {}, {}
    for text in [*impl._parse_sweeper_params_config(), *arguments]:
        try:
            one_space, one_fixed = create_params_from_overrides([text])
        except (ValueError, AssertionError, NotImplementedError, HydraException) as exc:
            raise ConfigError(
                f"search parameter `{text}`: {str(exc).rstrip('.')}. Give it a range Optuna can sample, e.g. "
                "`interval(0.0, 0.7)`, `tag(log, interval(0.0001, 0.01))` (low > 0) or "
                "`choice(32, 64, 128)`."
            ) from None
        space.update(one_space)
        fixed.update(one_fixed)
    for key in fixed:
        space.pop(key, None)
    loader = impl.hydra_context.config_loader
    fixed_overrides = [f"{k}={v}" for k, v in fixed.items()]

    def compose(overrides: list[str], what: str):
        try:
            return loader.load_sweep_config(impl.config, overrides)
        except (HydraException, OmegaConfBaseException) as exc:
            first = str(exc).strip().splitlines()[0].rstrip(".")
            raise ConfigError(
                f"{what}: the config cannot be composed with it ({first}). Check the key's "
                "spelling and its values against conf/: `python train.py --cfg job` prints the "
                "config, and a config group's options are the files in conf/<group>/."
            ) from None

    base = compose(fixed_overrides, "the search's fixed settings")
    with open_dict(base):  # a trial's config, as the launcher hands it to train.py
        del base["hydra"]
    try:
        validate_config(base)
    except ConfigError as exc:
        raise ConfigError(f"the search's fixed settings: {exc}") from None
    for key, dist in space.items():
        for value in _candidates(dist):
            compose([*fixed_overrides, f"{key}={value}"], f"search parameter {key}={value}")
    return space, fixed


def check_storage(storage: str | None) -> None:
    """Refuse (read-only) an existing, non-empty SQLite ``study.db`` that is not an Optuna storage,
    before Optuna would add its tables to it or stop with an SQL traceback."""
    from seqrec.tune.study import check_optuna_storage

    prefix = "sqlite:///"
    if storage and storage.startswith(prefix):
        path = Path(storage[len(prefix) :])
        if path.is_file() and path.stat().st_size > 0:
            check_optuna_storage(
                path,
                "Run the search in another folder (hydra.sweep.dir=…), or move that "
                "file away; the search creates its own study.db.",
            )


if OptunaSweeper is None:
    from hydra.core.config_store import ConfigStore
    from hydra.plugins.sweeper import Sweeper

    class SeqrecOptunaSweeper(Sweeper):
        """Stands in when hydra-optuna-sweeper is missing: says how to install it."""

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            raise ImportError(MISSING)

        def setup(self, *args: Any, **kwargs: Any) -> None:  # pragma: no cover - never constructed
            raise ImportError(MISSING)

        def sweep(self, arguments: list[str]) -> None:  # pragma: no cover - never constructed
            raise ImportError(MISSING)

    # conf/hydra/sweeper/seqrec_optuna.yaml builds on the plugin's `optuna` config: without the
    # plugin, an untyped stand-in lets the config compose so that the sweeper above can speak
    ConfigStore.instance().store(
        group="hydra/sweeper", name="optuna", provider="seqrec", node={"_target_": f"{__name__}.SeqrecOptunaSweeper"}
    )
else:

    class SeqrecOptunaSweeper(OptunaSweeper):
        """``OptunaSweeper`` whose search resumes from its stored study (see the module docstring).

        Takes the stock sweeper's options (``hydra.sweeper.*``: sampler, direction, storage,
        study_name, n_trials, n_jobs, max_failure_rate, params).
        """

        def sweep(self, arguments: list[str]) -> None:
            from seqrec.cli import report_errors

            # a refused search: one paragraph, exit status 1, and no empty sweep folder left behind
            with report_errors(run_dir=Path(self.sweeper.config.hydra.sweep.dir)):
                return self._sweep(arguments)

        def _sweep(self, arguments: list[str]) -> None:
            from seqrec.errors import ConfigError

            impl = self.sweeper
            space, fixed = check_search(impl, arguments)
            if impl.storage and impl.study_name:
                import optuna

                check_storage(impl.storage)
                signature = search_signature(space, fixed)
                try:
                    study = optuna.load_study(study_name=impl.study_name, storage=impl.storage)
                except KeyError:  # no such study yet: a new search
                    study = None
                    optuna.create_study(
                        study_name=impl.study_name, storage=impl.storage, direction="maximize"
                    ).set_user_attr(SIGNATURE_ATTR, signature)
                if study is not None:
                    stored = study.user_attrs.get(SIGNATURE_ATTR)
                    changed = signature_differences(stored, signature) if stored is not None else []
                    where = impl.storage.removeprefix("sqlite:///")
                    if changed:
                        raise ConfigError(
                            f"{where} holds the search {impl.study_name!r} with another space or "
                            f"other fixed settings: {'; '.join(changed)}. Run this search in another folder "
                            "(hydra.sweep.dir=…), or delete that folder's study.db to start over; to add "
                            "trials to the stored search, repeat its command with a larger hydra.sweeper.n_trials."
                        )
                    if stored is None:  # a search stored before signatures: this one's from now on
                        study.set_user_attr(SIGNATURE_ATTR, signature)
                    states = [t.state.name for t in study.get_trials(deepcopy=False)]
                    if "COMPLETE" not in states and states.count("FAIL") >= impl.n_trials:
                        raise ConfigError(
                            f"{where}: every one of the search's {len(states)} trials failed, and they "
                            f"count towards n_trials={impl.n_trials}. Fix what made them fail (their "
                            "train.log), then delete the study.db to run the search again."
                        )
                    runs = TrialRuns(impl.config.hydra.sweep.dir, _folder_name(impl.config))
                    finished, next_number = continue_study(study, runs)
                    remaining = max(0, impl.n_trials - finished)
                    log.info(
                        "continuing the search in %s: %d of %d trials finished, %d to go",
                        impl.storage,
                        finished,
                        impl.n_trials,
                        remaining,
                    )
                    impl.n_trials = remaining
                    impl.job_idx = next_number
                    if hasattr(impl.sampler, "reseed_rng"):
                        impl.sampler.reseed_rng()
                    if remaining == 0:
                        log.info(
                            "the search is complete (n_trials=%d); raise hydra.sweeper.n_trials to run more trials",
                            finished,
                        )
            try:
                return super().sweep(arguments)
            except ValueError as exc:  # the stock sweeper asks for the best trial at the end
                if impl.storage and impl.study_name and "does not exist" in str(exc):
                    raise ConfigError(
                        f"No trial of the search {impl.study_name!r} completed: every trial failed (each "
                        "one's error is printed above, and its folder holds its train.log). Fix the search "
                        f"space or the fixed settings, then delete the study ({impl.storage}): its failed trials "
                        "count towards n_trials."
                    ) from None
                raise
