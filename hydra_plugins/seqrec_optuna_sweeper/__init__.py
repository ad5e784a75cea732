"""seqrec's Hydra sweeper for ``python train.py hparams_search=<name>``: Optuna's ask/tell API.

Hydra loads sweepers only from the ``hydra_plugins`` namespace package, so this module holds the
plugin class alone; the search itself is :mod:`seqrec.tune.search` (its checks, the continued
search, the trial loop) and the trials' pruning is :mod:`seqrec.tune.pruning`. The module imports
neither Optuna nor seqrec at import time: Hydra imports every plugin on every ``train.py`` start.

The options (``conf/hydra/sweeper/seqrec_optuna.yaml``, typed by :class:`SeqrecOptunaSweeperConf`):
``n_trials`` (the whole search), ``n_jobs`` (trials at once; > 1 needs a parallel launcher),
``direction`` (``maximize``), ``storage``/``study_name`` (the study, SQLite in the sweep folder),
``sampler`` and ``pruner`` (``_target_`` nodes naming an Optuna sampler/pruner class and its
options; the pruner is null by default), ``max_failure_rate`` and ``params`` (the search space in
Hydra's override grammar).
"""

from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional

from hydra.core.config_store import ConfigStore
from hydra.plugins.sweeper import Sweeper


@dataclass
class SeqrecOptunaSweeperConf:
    """The typed options of :class:`SeqrecOptunaSweeper` (``hydra.sweeper.*``)."""

    _target_: str = "hydra_plugins.seqrec_optuna_sweeper.SeqrecOptunaSweeper"
    # the sampler and pruner nodes are instantiated by the sweeper (one error paragraph), not by Hydra
    _recursive_: bool = False
    direction: str = "maximize"
    n_trials: int = 20
    n_jobs: int = 1
    storage: Optional[str] = None
    study_name: Optional[str] = None
    sampler: Any = field(default_factory=lambda: {"_target_": "optuna.samplers.TPESampler", "seed": 42})
    pruner: Any = None
    max_failure_rate: float = 1.0
    params: Optional[Dict[str, str]] = None


ConfigStore.instance().store(
    group="hydra/sweeper", name="seqrec_optuna_schema", node=SeqrecOptunaSweeperConf, provider="seqrec"
)


class SeqrecOptunaSweeper(Sweeper):
    """A Hydra sweeper whose search is an Optuna study driven by ask/tell
    (:func:`seqrec.tune.search.run_search`); takes the options of :class:`SeqrecOptunaSweeperConf`."""

    def __init__(self, **options: Any) -> None:
        self.options = options
        self.config = None
        self.launcher = None
        self.hydra_context = None

    def setup(self, *, hydra_context: Any, task_function: Any, config: Any) -> None:
        from hydra.core.plugins import Plugins
        from omegaconf import OmegaConf

        self.config = config
        self.hydra_context = hydra_context
        self.options = OmegaConf.create(self.options)
        self.launcher = Plugins.instance().instantiate_launcher(
            hydra_context=hydra_context, task_function=task_function, config=config
        )

    def sweep(self, arguments: List[str]) -> Any:
        from pathlib import Path

        from seqrec.runs.cli import report_errors
        from seqrec.tune.search import run_search

        # a refused search: one paragraph, exit status 1, and no empty sweep folder left behind
        with report_errors(run_dir=Path(str(self.config.hydra.sweep.dir))):
            return run_search(self.options, self.config, self.hydra_context.config_loader, self.launcher, arguments)
