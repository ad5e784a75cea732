"""Train and evaluate one sequential recommender: ``python train.py model=sasrec loss=cce dataset=lastfm``.

See ``conf/config.yaml`` for every option and README.md for the sweeps (``-m``).
"""

import logging
import sys
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig

from seqrec.runs.cli import check_group_overrides, check_launcher, check_override_syntax, report_errors
from seqrec.runs.pipeline import run


@hydra.main(version_base="1.3", config_path="conf", config_name="config")
def main(cfg: DictConfig) -> float | None:
    # in a sweep (-m) a failing run must not stop the others
    hydra_cfg = HydraConfig.get()
    sweep = hydra_cfg.mode == RunMode.MULTIRUN
    # Hydra's basic sweeper and launcher run the jobs in this process: their failures are summed up
    # at the end (seqrec.runs.cli.SweepSummary); other launchers need the job to fail
    in_process = sweep and all(
        name in str(hydra_cfg[part].get("_target_", "")) for part, name in (("sweeper", "Basic"), ("launcher", "Basic"))
    )
    search = sweep and "SeqrecOptuna" in str(hydra_cfg.sweeper.get("_target_", ""))
    metrics = None
    with report_errors(
        keep_going=sweep,
        run_dir=Path(hydra_cfg.runtime.output_dir),
        keep_run_dir=bool(str(cfg.get("resume") or "").strip()),  # a folder the user named: never removed
        sweep_job=f"#{hydra_cfg.job.num} {' '.join(hydra_cfg.overrides.task)}" if in_process else None,
        search_dir=str(hydra_cfg.sweep.dir) if search else None,
    ):
        trackers, pruned = [], ()  # a search trial with a pruner: seqrec.tune.pruning
        if hydra_cfg.mode == RunMode.MULTIRUN and hydra_cfg.sweeper.get("pruner") is not None:
            from seqrec.tune.pruning import TrialPruned, trial_trackers

            trackers, pruned = trial_trackers(hydra_cfg, str(cfg.trainer.monitor)), (TrialPruned,)
        try:
            metrics = run(cfg, overrides=list(hydra_cfg.overrides.task), trackers=trackers)
        except pruned as err:
            # the search's pruner stopped this trial: no result, no error (the sweeper records it pruned)
            logging.getLogger("seqrec").info("%s: no result (pruned.json in its folder)", err)
            return None
    # the monitored validation metric, for sweepers that optimise a value (None for stage=pretrain, or
    # a sweep job that failed on bad input)
    return None if metrics is None else metrics.get(metrics.get("monitor", ""))


if __name__ == "__main__":
    check_override_syntax(sys.argv[1:])
    check_group_overrides(sys.argv[1:], Path(__file__).parent / "conf")
    check_launcher(sys.argv[1:], Path(__file__).parent / "conf")
    sys.exit(main())
