"""Train and evaluate one sequential recommender: ``python train.py model=sasrec loss=cce dataset=lastfm``.

See ``conf/config.yaml`` for every option and README.md for the sweeps (``-m``).
"""

import sys

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig

from seqrec.cli import report_errors
from seqrec.pipeline import run


@hydra.main(version_base="1.3", config_path="conf", config_name="config")
def main(cfg: DictConfig) -> float:
    # in a sweep (-m) a failing run must not stop the others
    with report_errors(keep_going=HydraConfig.get().mode == RunMode.MULTIRUN):
        metrics = run(cfg)
    # returned for sweepers that optimise a value
    return metrics.get("valid/ndcg@20")  # None for stage=pretrain


if __name__ == "__main__":
    sys.exit(main())
