"""Does scoring the history 0 instead of removing it (the S3-Rec / CCE public code) move any HR@k or NDCG@k?

The paper's code evaluates with ``rating_pred[train_matrix > 0] = 0``: the user's past items stay
in the ranking with score 0, so they rank above a target whose score is negative. seqrec removes
them (``-inf``). For every finished run under ``--runs`` that still has its ``best.pt``, this
script ranks the test targets both ways (:func:`seqrec.evaluation.evaluate_ranks` with
``history_score`` ``-inf`` and ``0``, the run's own ``eval.rank_repeats``) and prints, per run,
test NDCG@10 and HR@10 both ways, how many users' ranks change, and the best (smallest) rank
among the changed ones: a change that starts beyond rank 20 moves no reported metric.

    python scripts/history_zero.py --runs outputs/table2            # every run with best.pt
    python scripts/history_zero.py --runs outputs/table2 --out zero.csv
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import pandas as pd
import torch
from omegaconf import OmegaConf

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from seqrec.evaluation import MASKED_RANK, evaluate_ranks, mean_metrics  # noqa: E402
from seqrec.report.runs import collect_runs  # noqa: E402
from seqrec.runs.configs import legacy_rank_repeats  # noqa: E402
from seqrec.runs.rundir import load_trained  # noqa: E402


def compare(run_dir: Path) -> dict:
    """Test NDCG@10/HR@10 of one run with its history removed and scored 0, and the changed ranks."""
    trained = load_trained(run_dir)
    split = trained.split
    keep = OmegaConf.select(trained.cfg, "eval.rank_repeats", default=None)
    if keep is None:  # a run from before the option: what it did, from its metrics.json
        keep = legacy_rank_repeats(json.loads((run_dir / "metrics.json").read_text()))
    ranks = {
        name: evaluate_ranks(
            trained.model,
            split.test_input,
            split.test_target,
            lambda users: split.history(users, "test"),
            rank_repeats=keep,
            history_score=score,
        )
        for name, score in (("removed", float("-inf")), ("zero", 0.0))
    }
    ranked = ranks["removed"] != MASKED_RANK
    changed = ranked & (ranks["removed"] != ranks["zero"])
    row = {"users": len(ranked), "changed": int(changed.sum())}
    row["best_changed_rank"] = int(ranks["removed"][changed].min()) if changed.any() else None
    for name, r in ranks.items():
        metrics = mean_metrics(r)
        row[f"ndcg@10_{name}"], row[f"hr@10_{name}"] = metrics["ndcg@10"], metrics["hr@10"]
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", required=True, help="folder searched for finished runs")
    parser.add_argument("--out", help="also write the table to this CSV file")
    parser.add_argument("--num-threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.num_threads)
    rows = []
    for run in collect_runs(args.runs).itertuples():
        if not (Path(run.run_dir) / "best.pt").is_file():
            continue
        row = {"dataset": run.dataset, "model": run.model, "loss": run.loss, "seed": run.seed}
        rows.append({**row, **compare(Path(run.run_dir))})
        print(pd.DataFrame(rows[-1:]).to_string(index=False, header=len(rows) == 1), flush=True)
    if not rows:
        sys.exit(f"no finished run with best.pt under {args.runs}")
    if args.out:
        pd.DataFrame(rows).to_csv(args.out, index=False)


if __name__ == "__main__":
    main()
