"""The CCE authors' validation curves, summarised per Table 2 cell, into seqrec/resources/authors_valid.csv.

Li-fAngyU/CCE (the paper's public code) ships, under ``final_result/RQ2_data``, the TensorBoard
scalars of its fine-tuning runs: ``run_finetune_full.py`` logs ``trainer.valid`` (validation
HR/NDCG@5/10/20, full ranking) after every epoch and stops 10 epochs after the best validation
NDCG@20. Replaying that rule on every curve gives its last logged epoch, so each curve is the run
behind the paper's Table 2 cell (its test numbers come from the best epoch's model). This script
reads a clone and writes, per cell, the best epoch (1-based), the last epoch logged and the
validation NDCG@20 / NDCG@10 / HR@10 at the best epoch; ``docs/results.md`` compares them with
seqrec's validation numbers (``make pages``, block ``authors_valid``).

    git clone https://github.com/Li-fAngyU/CCE /tmp/CCE
    python scripts/authors_valid.py /tmp/CCE [--out seqrec/resources/authors_valid.csv]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

import pandas as pd

DATASETS = {"Beauty": "beauty", "LastFM": "lastfm", "Sports": "sports", "Toys": "toys", "Yelp": "yelp"}
LOSSES = {"Pointwise_BCE": "bce", "CE": "ce", "CE_ALL": "cce"}
MODELS = {"GRU4Rec": "gru4rec", "S3Rec": "s3rec"}  # SASRec's curves sit at the top level
METRICS = {"NDCG@20": "valid_ndcg20", "NDCG@10": "valid_ndcg10", "HIT@10": "valid_hr10"}


def curve(folder: Path, metric: str) -> pd.Series:
    """One scalar's values by epoch (1-based) from the single TensorBoard CSV export in ``folder``."""
    files = sorted(folder.glob(f"run-*_metric_{metric}-tag-metric.csv"))
    if len(files) != 1:
        raise SystemExit(f"{folder}: expected one *_metric_{metric}-tag-metric.csv, found {len(files)}")
    frame = pd.read_csv(files[0])
    return pd.Series(frame["Value"].to_numpy(), index=frame["Step"].to_numpy() + 1)


def summarise(clone: Path) -> pd.DataFrame:
    """One row per (dataset, model, loss) found under ``clone/final_result/RQ2_data``."""
    root = clone / "final_result" / "RQ2_data"
    rows = []
    for loss_dir in sorted(p for p in root.glob("**/*") if p.is_dir() and p.name in LOSSES):
        parts = loss_dir.relative_to(root).parts  # (Dataset, Loss) or (Model, Dataset, Loss)
        model = "sasrec" if len(parts) == 2 else MODELS[parts[0]]
        curves = {name: curve(loss_dir, metric) for metric, name in METRICS.items()}
        ndcg20 = curves["valid_ndcg20"]
        best = int(ndcg20.idxmax())  # the first epoch of the maximum: the stopping rule's strict improvement
        row = {"dataset": DATASETS[parts[-2]], "model": model, "loss": LOSSES[parts[-1]]}
        row |= {"best_epoch": best, "last_epoch": int(ndcg20.index.max())}
        row |= {name: round(float(values[best]), 6) for name, values in curves.items()}
        rows.append(row)
    return pd.DataFrame(rows).sort_values(["dataset", "model", "loss"]).reset_index(drop=True)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("clone", type=Path, help="a clone of https://github.com/Li-fAngyU/CCE")
    p.add_argument("--out", type=Path, default=Path(__file__).parents[1] / "seqrec/resources/authors_valid.csv")
    args = p.parse_args(argv)
    if not (args.clone / "final_result" / "RQ2_data").is_dir():
        raise SystemExit(f"{args.clone} has no final_result/RQ2_data: pass a clone of Li-fAngyU/CCE")
    commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=args.clone, capture_output=True, text=True).stdout
    table = summarise(args.clone)
    header = (
        f"# Li-fAngyU/CCE final_result/RQ2_data at {commit.strip() or 'unknown commit'}; scripts/authors_valid.py\n"
    )
    args.out.write_text(header + table.to_csv(index=False))
    print(f"wrote {args.out}: {len(table)} cells")
    return 0


if __name__ == "__main__":
    sys.exit(main())
