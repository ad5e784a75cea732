"""Train and evaluate one sequential recommender: ``python train.py model=sasrec loss=cce dataset=lastfm``.

See ``conf/config.yaml`` for every option and README.md for the sweeps (``-m``).
"""

import sys

import hydra
from omegaconf import DictConfig

from seqrec.cli import report_errors
from seqrec.pipeline import run


@hydra.main(version_base="1.3", config_path="conf", config_name="config")
def main(cfg: DictConfig) -> float:
    with report_errors():
        metrics = run(cfg)
    # returned for sweepers that optimise a value
    return metrics.get("valid/ndcg@20")  # None for stage=pretrain


if __name__ == "__main__":
    sys.exit(main())
