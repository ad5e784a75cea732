"""Report of a hyperparameter search (``hparams_search=…``) and the rerun of its best configuration.

    python -m seqrec.tune outputs/search/lastfm_sasrec_cce [--seeds 5] [--name NAME]
                          [--no-rerun] [--train-args "num_threads=1 trainer.progress=false"]

(``make tune-report SEARCH=…``.) Modules: :mod:`.study` (the Optuna study and its trials),
:mod:`.experiment` (the best configuration), :mod:`.plots`, :mod:`.compare` (rerun and comparison)
and ``__main__`` (the command line). From the search folder that ``python train.py
hparams_search=<name>`` wrote (``study.db``, the Optuna study; ``trial<N>/``, one run per trial):

1. the trials table — number, state, the objective (the trials' ``trainer.monitor`` validation
   metric), each parameter, duration, epochs — printed and written as ``trials.csv``;
2. ``search_history.png`` (objective per trial and the best so far) and ``search_params.png``
   (objective against each parameter);
3. the best complete trial (highest objective: selection on validation only) written as
   ``conf/experiment/<name>.yaml`` (default name ``<study>_best``), usable as
   ``python train.py experiment=<name>``;
4. unless ``--no-rerun``: that configuration and the default one (the search's dataset, model and
   loss with nothing else changed) trained with ``--seeds`` seeds (42, 43, …) into
   ``<search>/best/seed<s>`` and ``<search>/default/seed<s>`` — a repeated report skips finished
   runs — and ``comparison.{md,csv}``: test metrics mean ± std over the seeds, the paper's value
   (Table 2 of the CCE paper, where it has the cell) and a paired t-test of the tuned against the
   default configuration over the test users (per-user metrics averaged over the seeds).

A user error (no study, optuna missing, no complete trial, a failed rerun) prints one paragraph
and exits with status 1.
"""

from __future__ import annotations

from seqrec.tune.compare import compare, comparison_markdown, rerun
from seqrec.tune.experiment import experiment_yaml, parse_value, trial_overrides, write_best_experiment
from seqrec.tune.plots import plot_search
from seqrec.tune.study import best_trial, load_study, trials_table

__all__ = [
    "best_trial",
    "compare",
    "comparison_markdown",
    "experiment_yaml",
    "load_study",
    "parse_value",
    "plot_search",
    "rerun",
    "trial_overrides",
    "trials_table",
    "write_best_experiment",
]
