"""The hyperparameter search behind ``python train.py hparams_search=<name>``: Optuna's ask/tell API
driven from seqrec's own Hydra sweeper (``hydra_plugins/seqrec_optuna_sweeper``).

One search is one Optuna study stored in the sweep folder (``study.db``, SQLite) and one run folder
per trial (``trial<N>/``, N = the Optuna trial number). :func:`run_search` does, in order:

1. **Checks before anything is written** (:func:`check_search`): ``n_trials``/``n_jobs`` ≥ 1, the
   direction ``maximize`` (train.py returns a validation HR/NDCG), every searched range one Optuna
   can sample (named), every parameter and value one the config has (each range's edges composed),
   the fixed settings accepted by :func:`seqrec.runs.pipeline.validate_config`, the sampler and pruner
   constructible, and the ``study.db`` an Optuna storage of the installed Optuna's schema
   (:func:`check_storage`; a study written by the old optuna-2 sweeper is named with the command
   that upgrades it).
2. **Continuing a stopped search**: ``n_trials`` is the size of the whole search, so the same
   command run again runs only the missing trials; another space or other fixed settings in the
   same folder are refused (:func:`search_signature`); trials left ``RUNNING`` by a stopped search
   are recorded from their run's ``metrics.json`` when it finished, or marked failed, re-queued and
   their run handed to the new trial, which continues it from ``last.pt``
   (:func:`continue_study`); the sampler's generator is reseeded so the continued search does not
   draw the first command's random trials again.
3. **Trials in batches of** ``n_jobs``: ``study.ask(space)``, the trial's parameters as overrides,
   Hydra's launcher runs them (numbered by their Optuna numbers), ``study.tell`` records each as
   ``COMPLETE`` (the monitored validation metric), ``PRUNED`` (its run wrote ``pruned.json``, see
   :mod:`seqrec.tune.pruning`) or ``FAIL`` (an error, a diverged run); the search goes on after a
   failure unless more than ``max_failure_rate`` of the trials so far failed.
4. ``optimization_results.yaml`` in the sweep folder: the best trial's parameters and value.

Requires the ``tune`` extra (Optuna ≥ 4): ``pip install -e '.[tune]'``; without it the search is
refused with one paragraph before the sweep folder exists.
"""

from __future__ import annotations

import json
import logging
import math
import sqlite3
from pathlib import Path
from typing import Any, Callable

import yaml

from seqrec.errors import ConfigError

log = logging.getLogger(__name__)

MISSING = (
    "hparams_search=… needs Optuna, which is not installed. Install the tune extra with "
    "`make install-tune` (or `pip install -e '.[tune]'`) and run the search again."
)

SIGNATURE_ATTR = "seqrec_search"  # the study's user attribute holding :func:`search_signature`
PRUNED_FILE = "pruned.json"  # written into a trial's run folder when its pruner stopped it
_FINISHED = ("COMPLETE", "PRUNED", "FAIL")  # trial states that count towards ``n_trials``


def import_optuna():
    """Optuna (quiet: warnings only), or :class:`ConfigError` naming the extra to install."""
    try:
        import optuna
    except ImportError:
        raise ConfigError(MISSING) from None
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    # the SQL storage imports alembic, whose INFO records ("setup plugin …") Hydra would print
    logging.getLogger("alembic").setLevel(logging.WARNING)
    return optuna


# -- the search space -------------------------------------------------------------------------
def distribution(override: Any) -> Any:
    """The Optuna distribution of one parsed sweep override (Hydra's override grammar).

    * ``choice(a, b, …)`` → ``CategoricalDistribution`` (values as Hydra parses them);
    * ``interval(lo, hi)`` → ``FloatDistribution(lo, hi)``; ``int(interval(lo, hi))`` →
      ``IntDistribution``; ``tag(log, …)`` makes either log-uniform;
    * ``range(start, stop, step)`` → the values Hydra's range gives (``stop`` excluded, as in
      Python): ``IntDistribution``/``FloatDistribution`` with that ``step``; ``shuffle(range(…))``
      → categorical.

    Raises:
        ValueError: a range Optuna cannot sample (low > high, log with low ≤ 0, an empty range),
            or a sweep kind Optuna has no distribution for.
    """
    from hydra.core.override_parser.types import ChoiceSweep, IntervalSweep, RangeSweep, Transformer
    from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

    value = override.value()
    if isinstance(value, ChoiceSweep) or (isinstance(value, RangeSweep) and value.shuffle):
        return CategoricalDistribution(list(override.sweep_iterator(transformer=Transformer.encode)))
    if isinstance(value, RangeSweep):
        values = list(override.sweep_iterator())
        if not values:
            raise ValueError("the range holds no value (Hydra's range excludes its stop, as Python's does)")
        if all(isinstance(v, int) for v in values):
            return IntDistribution(min(values), max(values), step=int(value.step))
        return FloatDistribution(float(min(values)), float(max(values)), step=float(value.step))
    if isinstance(value, IntervalSweep):
        log_scale = "log" in value.tags
        if isinstance(value.start, int) and isinstance(value.end, int):
            return IntDistribution(value.start, value.end, log=log_scale)
        return FloatDistribution(float(value.start), float(value.end), log=log_scale)
    raise ValueError(f"{type(value).__name__} has no Optuna distribution")


def parse_space(texts: list[str]) -> tuple[dict, dict]:
    """Split overrides into the searched space and the fixed settings.

    Args:
        texts: override strings, the sweeper's ``params`` (``key=expression``) then the command
            line's; a later one replaces an earlier one of the same key.

    Returns:
        ``(space, fixed)``: key → Optuna distribution, and key (with its ``+``/``~`` prefix) → the
        override's value as text.

    Raises:
        ConfigError: an override that does not parse or whose range Optuna cannot sample, naming it.
    """
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.errors import HydraException

    parser = OverridesParser.create()
    space, fixed = {}, {}
    for text in texts:
        try:
            (override,) = parser.parse_overrides([text])
            key = override.get_key_element()
            if override.is_sweep_override():
                space[key], _ = distribution(override), fixed.pop(key, None)
            else:
                fixed[key], _ = override.get_value_element_as_str(), space.pop(key, None)
        except (ValueError, HydraException) as exc:
            raise ConfigError(
                f"search parameter `{text}`: {str(exc).rstrip('.')}. Give it a range Optuna can sample, e.g. "
                "`interval(0.0, 0.7)`, `tag(log, interval(0.0001, 0.01))` (low > 0) or "
                "`choice(32, 64, 128)`."
            ) from None
    return space, fixed


def override_value(value: Any) -> str:
    """A trial's parameter value as the text of a Hydra override (``1e-05``, ``true``, ``sasrec``)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value)
    return str(value)


def _edges(dist: Any) -> list:
    """The values of a distribution a trial can get at its edges: every choice, or low and high."""
    if hasattr(dist, "choices"):
        return list(dist.choices)
    return [dist.low, dist.high]


def check_search(sweeper: Any, config: Any, config_loader: Any, arguments: list[str]) -> tuple[dict, dict]:
    """Check a search before its study is opened (see the module docstring, step 1).

    Args:
        sweeper: the sweeper's options (``n_trials``, ``n_jobs``, ``direction``, ``params``).
        config: the whole composed config (``hydra`` included).
        config_loader: Hydra's config loader, which composes a trial's config from overrides.
        arguments: the command line's task overrides.

    Returns:
        ``(space, fixed)``: the searched parameters' distributions and the fixed overrides.

    Raises:
        ConfigError: a check fails; the message names the option and the fix.
    """
    from hydra.errors import HydraException
    from omegaconf import open_dict
    from omegaconf.errors import OmegaConfBaseException

    from seqrec.runs.pipeline import validate_config

    for name in ("n_trials", "n_jobs"):
        value = sweeper[name]
        if not isinstance(value, int) or value < 1:
            raise ConfigError(
                f"hydra.sweeper.{name}={value}: it must be a whole number ≥ 1 ("
                f"{'the size of the whole search' if name == 'n_trials' else 'trials run at once'})."
            )
    if str(sweeper.direction) != "maximize":
        raise ConfigError(
            f"hydra.sweeper.direction={sweeper.direction}: train.py returns the run's "
            "trainer.monitor validation metric (HR@k or NDCG@k), where higher is better, so a "
            "search must maximize it; leave hydra.sweeper.direction out."
        )
    params = dict(sweeper.params or {})
    space, fixed = parse_space([f"{k}={v}" for k, v in params.items()] + list(arguments))
    fixed_overrides = [f"{k}={v}" for k, v in fixed.items()]

    def compose(overrides: list[str], what: str):
        try:
            return config_loader.load_sweep_config(config, overrides)
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
        for value in _edges(dist):
            compose([*fixed_overrides, f"{key}={override_value(value)}"], f"search parameter {key}={value}")
    return space, fixed


def build_part(node: Any, what: str, default: Any = None) -> Any:
    """Instantiate a sampler or pruner node (``{_target_: optuna.samplers.TPESampler, seed: 42}``);
    ``default`` when the node is null.

    Raises:
        ConfigError: the class cannot be imported or does not take the given options.
    """
    from hydra.utils import instantiate

    if node is None:
        return default
    try:
        return instantiate(node)
    except Exception as exc:  # noqa: BLE001 - an import error, a wrong keyword: the user's option
        cause = exc.__cause__ or exc
        raise ConfigError(
            f"hydra.sweeper.{what}: {str(cause).strip().splitlines()[0]}. Give the class of an Optuna "
            f"{what} and its constructor's options, e.g. "
            + (
                "{_target_: optuna.samplers.TPESampler, seed: 42, n_startup_trials: 10}."
                if what == "sampler"
                else "{_target_: optuna.pruners.MedianPruner, n_startup_trials: 5, n_warmup_steps: 5}, or null."
            )
        ) from None


# -- the stored study -------------------------------------------------------------------------
def check_optuna_storage(db: Path, fix: str | None = None) -> None:
    """Raise ConfigError unless ``db`` is an SQLite file with Optuna's tables at the schema the
    installed Optuna reads. The file is opened read-only, so a wrong file is left as it was
    (Optuna would add its tables to a foreign file, or stop with an SQL traceback).

    Args:
        db: the ``study.db`` path.
        fix: the sentence that ends the message (what to do instead).
    """
    fix = fix or (
        "The search writes it (`python train.py hparams_search=<name>`); pass that search's "
        "folder, or delete the file and run the search again."
    )
    with db.open("rb") as f:
        header = f.read(16)
    if header != b"SQLite format 3\x00":
        what = "is empty" if not header else "is not an SQLite database"
        raise ConfigError(f"'{db}' {what}, so it holds no Optuna study. {fix}")
    try:
        con = sqlite3.connect(f"{db.resolve().as_uri()}?mode=ro", uri=True)
        try:
            tables = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type='table'")}
            version = None
            if "alembic_version" in tables:
                row = con.execute("SELECT version_num FROM alembic_version").fetchone()
                version = row[0] if row else None
        finally:
            con.close()
    except sqlite3.Error as exc:
        raise ConfigError(f"'{db}' cannot be read as an SQLite database ({exc}). {fix}") from exc
    if "studies" not in tables:
        raise ConfigError(
            f"'{db}' is an SQLite database but not an Optuna study storage (no "
            f"'studies' table; it has {', '.join(sorted(tables)) or 'no tables'}). {fix}"
        )
    head = _schema_head()
    if version is not None and head is not None and version != head:
        raise ConfigError(
            f"'{db}' was written by an older Optuna (storage schema {version}; the installed Optuna "
            f"reads {head}): the search before seqrec's own sweeper used optuna 2.x. Upgrade the file "
            f"in place with `optuna storage upgrade --storage sqlite:///{db.resolve()}` (copy it first "
            "to keep the old one), then run the command again."
        )


def _schema_head() -> str | None:
    """The storage schema version the installed Optuna writes (its alembic head), read from a
    throw-away in-memory storage; None without Optuna."""
    try:
        optuna = import_optuna()
    except ConfigError:
        return None
    return optuna.storages.RDBStorage("sqlite:///:memory:").get_current_version()


def check_storage(storage: str | None) -> None:
    """:func:`check_optuna_storage` for an existing, non-empty SQLite storage URL of a search."""
    prefix = "sqlite:///"
    if storage and storage.startswith(prefix):
        path = Path(storage[len(prefix) :])
        if path.is_file() and path.stat().st_size > 0:
            check_optuna_storage(
                path,
                "Run the search in another folder (hydra.sweep.dir=…), or move that "
                "file away; the search creates its own study.db.",
            )


def search_signature(space: dict, fixed: dict) -> dict:
    """What makes a search the same search: its space (parameter → its Optuna distribution as text)
    and its fixed settings (``key → value`` overrides; the runtime options of
    :data:`seqrec.runs.resume.RUNTIME_KEYS` such as threads, which do not change a trial's result, left
    out). Stored in the study when it is created and compared when it continues."""
    from optuna.distributions import distribution_to_json

    from seqrec.runs.resume import RUNTIME_KEYS

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


# -- trials' run folders ----------------------------------------------------------------------
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
    finished = sum(t.state.name in _FINISHED for t in trials)
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


# -- the search -------------------------------------------------------------------------------
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


def open_study(options: Any, space: dict, fixed: dict, runs: TrialRuns) -> tuple[Any, int]:
    """Create the study, or load and prepare a stored one for a continued search (step 2).

    Returns:
        ``(study, remaining)``: the study and the trials still to run.

    Raises:
        ConfigError: the storage is not an Optuna study of this Optuna, the stored search has
            another space or other fixed settings, or every one of its ``n_trials`` trials failed.
    """
    optuna = import_optuna()
    sampler = build_part(options.sampler, "sampler")
    check_pruner(options)
    storage, name = options.storage, options.study_name
    check_storage(storage)
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
        ConfigError: a check fails (before anything is written), more trials failed than
            ``max_failure_rate`` allows, or no trial completed.
    """
    import_optuna()
    space, fixed = check_search(options, config, config_loader, arguments)
    sweep_dir = Path(str(config.hydra.sweep.dir))
    runs = TrialRuns(sweep_dir, folder_namer(config))
    study, remaining = open_study(options, space, fixed, runs)
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
