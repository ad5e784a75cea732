"""Hydra's Optuna sweeper with searches that continue where they stopped (``hparams_search=…``).

``conf/hydra/sweeper/seqrec_optuna.yaml`` selects :class:`SeqrecOptunaSweeper`; it is
hydra-optuna-sweeper's ``OptunaSweeper`` (TPE, seeded, study in SQLite) with three changes that a
long search on one machine needs. Hydra loads sweepers only from the ``hydra_plugins`` package,
so the class lives here rather than in ``seqrec``.

* ``n_trials`` is the size of the *whole* search, not of one command: running the same command
  again after an interruption runs only the trials still missing (the stock sweeper would run
  ``n_trials`` more).
* A trial that was running when the search stopped (Ctrl-C, SIGTERM, a killed job) is still
  ``RUNNING`` in the study; it is marked ``FAIL`` and its parameters are queued again, so the
  re-run search tries them first.
* The sampler's random generator is reseeded when a search continues: with its seed alone, the
  continued search would draw again the random start-up trials the first command already ran.
  An uninterrupted search is reproducible from the sampler's seed; a continued one is not.
* Trial folders are numbered by the Optuna trial number (``hydra.job.num`` starts at the study's
  next trial), so a continued search never writes into, or skips because of, an earlier trial's
  folder.

Failed trials (a diverged loss, an error in one configuration) are recorded as ``FAIL`` and the
search goes on: ``max_failure_rate: 1.0`` in the YAML (the stock default 0.0 stops the search).

Requires the ``tune`` extra: ``pip install -e '.[tune]'`` (``make install-tune``).
"""

from __future__ import annotations

import logging
import warnings
from typing import Any

try:
    from hydra_plugins.hydra_optuna_sweeper.optuna_sweeper import OptunaSweeper
except ImportError:  # the tune extra is not installed: every other run must not notice
    OptunaSweeper = None

MISSING = ("hparams_search=… needs Hydra's Optuna sweeper, which is not installed. Install the tune "
           "extra with `make install-tune` (or `pip install -e '.[tune]'`) and run the search again.")

log = logging.getLogger(__name__)
# optuna's SQL storage imports alembic, whose INFO records ("setup plugin …") Hydra would print
logging.getLogger("alembic").setLevel(logging.WARNING)

# trial states that count towards ``n_trials``
_FINISHED = ("COMPLETE", "PRUNED", "FAIL")


def continue_study(study: Any) -> tuple[int, int]:
    """Prepare a stored study for a continued search.

    Marks every ``RUNNING`` trial (its search stopped while it ran) ``FAIL`` and queues its
    parameters again (Optuna's ``enqueue_trial``), so the next ``ask()`` retries them.

    Args:
        study: an ``optuna.Study`` loaded from its storage.

    Returns:
        ``(finished, next_number)``: trials that count towards ``n_trials`` (complete, pruned or
        failed, not counting the interrupted ones just marked), and the Optuna number the next
        asked trial gets — a queued (``WAITING``) trial's own number if there is one, else the
        next free number.
    """
    import optuna

    state = optuna.trial.TrialState
    trials = study.get_trials(deepcopy=False)
    finished = sum(t.state.name in _FINISHED for t in trials)
    interrupted = [t for t in trials if t.state == state.RUNNING]
    for t in interrupted:
        log.warning("trial %d was running when the search stopped: marked failed, its parameters "
                    "are tried again first", t.number)
        study.tell(t.number, state=state.FAIL)
        with warnings.catch_warnings():  # enqueue_trial is "experimental" in optuna 2.x
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            study.enqueue_trial(dict(t.params))
    trials = study.get_trials(deepcopy=False)
    waiting = [t.number for t in trials if t.state == state.WAITING]
    next_number = min(waiting) if waiting else len(trials)
    return finished, next_number


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
    ConfigStore.instance().store(group="hydra/sweeper", name="optuna", provider="seqrec",
                                 node={"_target_": f"{__name__}.SeqrecOptunaSweeper"})
else:

    class SeqrecOptunaSweeper(OptunaSweeper):
        """``OptunaSweeper`` whose search resumes from its stored study (see the module docstring).

        Takes the stock sweeper's options (``hydra.sweeper.*``: sampler, direction, storage,
        study_name, n_trials, n_jobs, max_failure_rate, params).
        """

        def sweep(self, arguments: list[str]) -> None:
            impl = self.sweeper
            if impl.storage and impl.study_name:
                import optuna

                try:
                    study = optuna.load_study(study_name=impl.study_name, storage=impl.storage)
                except KeyError:  # no such study yet: a new search
                    study = None
                if study is not None:
                    finished, next_number = continue_study(study)
                    remaining = max(0, impl.n_trials - finished)
                    log.info("continuing the search in %s: %d of %d trials finished, %d to go",
                             impl.storage, finished, impl.n_trials, remaining)
                    impl.n_trials = remaining
                    impl.job_idx = next_number
                    if hasattr(impl.sampler, "reseed_rng"):
                        impl.sampler.reseed_rng()
                    if remaining == 0:
                        log.info("the search is complete (n_trials=%d); raise hydra.sweeper.n_trials "
                                 "to run more trials", finished)
            try:
                return super().sweep(arguments)
            except ValueError as exc:  # the stock sweeper asks for the best trial at the end
                if impl.storage and impl.study_name and "does not exist" in str(exc):
                    raise RuntimeError(
                        f"No trial of the search {impl.study_name!r} completed: every trial failed (each "
                        "one's error is printed above, and its folder holds its train.log). Fix the search "
                        f"space or the fixed settings; the study ({impl.storage}) keeps the failed trials."
                    ) from None
                raise
