"""Train and evaluate one sequential recommender: ``python train.py model=sasrec loss=cce dataset=lastfm``.

See ``conf/config.yaml`` for every option and README.md for the sweeps (``-m``).
"""

import sys
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig

from seqrec.cli import check_group_overrides, report_errors
from seqrec.pipeline import run


@hydra.main(version_base="1.3", config_path="conf", config_name="config")
def main(cfg: DictConfig) -> float:
    # in a sweep (-m) a failing run must not stop the others
    hydra_cfg = HydraConfig.get()
    with report_errors(keep_going=hydra_cfg.mode == RunMode.MULTIRUN, run_dir=Path(hydra_cfg.runtime.output_dir)):
        metrics = run(cfg, overrides=list(hydra_cfg.overrides.task))
    # the monitored validation metric, for sweepers that optimise a value (None for stage=pretrain)
    return metrics.get(metrics.get("monitor", ""))


if __name__ == "__main__":
    check_group_overrides(sys.argv[1:], Path(__file__).parent / "conf")
    sys.exit(main())
