"""What Table 2 still needs: the seeds each cell lacks, and the ``train.py`` commands that add them.

The rule (docs/results.md, "Seeds"): every cell of the paper's Table 2 has a run (seed 42); every
CCE cell, and every cell outside noise of the paper (|z| > 2 on test NDCG@10,
:func:`seqrec.report.page.noise_verdict`), has :data:`WANTED_SEEDS` seeds, 42, 43 and 44. A cell
run once and found outside noise asks for its further seeds only then: its verdict decides it.

    python -m seqrec.report.plan [--runs results/table2] [--per-run] [--commands] [EXTRA OVERRIDES...]

prints the cells that lack seeds and one command per cell (``--per-run``: per seed, for a queue
that runs several at once). EXTRA overrides go on every command (``device=cuda``, ``num_threads=4``).
S3-Rec commands repeat the ``model.pretrained_from`` of the dataset's earlier S3-Rec runs, since
seeds of one cell must agree in every setting but the seed (:mod:`seqrec.report.protocol`).
"""

from __future__ import annotations

import argparse
import math
import shlex
import sys
from pathlib import Path

import pandas as pd

from seqrec.errors import SeqrecError
from seqrec.report.markdown import markdown_table
from seqrec.report.noise import cell_noise, ndcg_z, noise_verdict
from seqrec.report.paper import (
    DATASET_NAMES,
    MODEL_NAMES,
    PROPOSED,
    load_paper,
    loss_name,
    table2_order,
)
from seqrec.report.protocol import TABLE2_PROTOCOL, check_protocol, flat_config
from seqrec.report.runs import collect_runs
from seqrec.runs.cli import run_main

WANTED_SEEDS = 3
FIRST_SEED = 42  # conf/config.yaml's seed: seeds=N sweeps 42, 43, …
SWEEP = "python train.py -m experiment=table2"
SETUP = "num_threads=1 trainer.progress=false hydra.sweep.dir=outputs/table2"


def remaining(
    runs: pd.DataFrame | None, paper: pd.DataFrame, cells: pd.DataFrame | None = None, wanted: int = WANTED_SEEDS
) -> pd.DataFrame:
    """The cells of the paper's Table 2 that lack seeds under the rule of the module docstring.

    Args:
        runs: :func:`seqrec.report.runs.collect_runs` of the Table 2 runs (None: none yet).
        paper: :func:`seqrec.report.paper.load_paper`.
        cells: :func:`seqrec.report.noise.cell_noise` of ``runs`` when the caller has it (it
            reads every per-user file); computed when None.
        wanted: seeds a CCE cell or a cell outside noise should have.

    Returns:
        One row per cell that lacks a seed, in Table 2's order: dataset, model, loss, ``seeds``
        (the seeds it has, a list), ``why`` (``not run``, ``CCE cell``, ``outside noise (z +3.1)``)
        and ``missing`` (the seeds to run: the lowest from 42 up that it lacks).
    """
    have: dict[tuple, list[int]] = {}
    z_of: dict[tuple, float] = {}
    if runs is not None and not runs.empty:
        for key, group in runs.groupby(["dataset", "model", "loss"]):
            have[key] = sorted(int(s) for s in group["seed"])
        cells = cell_noise(runs) if cells is None else cells
        z_of = dict(zip(map(tuple, cells[["dataset", "model", "loss"]].to_numpy()), ndcg_z(cells, paper), strict=True))
    rows = []
    for key in _table2_cells(paper):
        seeds = have.get(key, [])
        z = z_of.get(key, math.nan)
        if not seeds:
            why, n = "not run", wanted if key[2] == PROPOSED else 1
        elif key[2] == PROPOSED:
            why, n = "CCE cell", wanted
        elif not math.isnan(z) and noise_verdict(z, len(seeds)) != "within":
            why, n = f"outside noise (z {z:+.1f})", wanted
        else:
            continue
        missing = [s for s in range(FIRST_SEED, FIRST_SEED + 100) if s not in seeds][: max(n - len(seeds), 0)]
        if missing:
            rows.append(
                {"dataset": key[0], "model": key[1], "loss": key[2], "seeds": seeds, "why": why, "missing": missing}
            )
    return pd.DataFrame(rows, columns=["dataset", "model", "loss", "seeds", "why", "missing"])


def _table2_cells(paper: pd.DataFrame) -> list[tuple[str, str, str]]:
    keys = {tuple(k) for k in paper[["dataset", "model", "loss"]].drop_duplicates().to_numpy()}
    return sorted(keys, key=table2_order)


def pretrained_from(runs: pd.DataFrame | None) -> dict[str, str]:
    """Dataset → the ``model.pretrained_from`` its S3-Rec runs fine-tuned from (absent: the
    pre-training store, no override needed)."""
    out: dict[str, str] = {}
    if runs is None:
        return out
    for row in runs[runs["model"] == "s3rec"].itertuples():
        path = flat_config(row.run_dir).get("model.pretrained_from")
        if path:
            out.setdefault(row.dataset, path)
    return out


def commands(plan: pd.DataFrame, pretrained: dict[str, str], per_run: bool = False, extra: str = SETUP) -> list[str]:
    """``train.py`` command lines adding the missing seeds of :func:`remaining`'s cells: one per
    cell (``seed=43,44``), or one per seed with ``per_run``. ``extra``: overrides appended to each."""
    out = []
    for row in plan.itertuples():
        init = (
            f" model.pretrained_from={shlex.quote(pretrained[row.dataset])}"
            if row.model == "s3rec" and row.dataset in pretrained
            else ""
        )
        for seeds in [[s] for s in row.missing] if per_run else [row.missing]:
            seed = ",".join(map(str, seeds))
            out.append(
                f"{SWEEP} dataset={row.dataset} model={row.model} loss={row.loss} seed={seed}{init} {extra}".rstrip()
            )
    return out


def plan_block(plan: pd.DataFrame, pretrained: dict[str, str]) -> str:
    """Markdown for docs/results.md: the cells that lack seeds and the commands that add them."""
    if plan.empty:
        return "Every cell has the seeds the rule asks for."
    table = pd.DataFrame(
        {
            "Dataset": [DATASET_NAMES.get(d, d) for d in plan["dataset"]],
            "Model": [MODEL_NAMES.get(m, m) for m in plan["model"]],
            "Loss": [loss_name(v) for v in plan["loss"]],
            "seeds run": [", ".join(map(str, s)) or "none" for s in plan["seeds"]],
            "why": plan["why"],
            "to run": [", ".join(map(str, s)) for s in plan["missing"]],
        }
    )
    n = int(plan["missing"].map(len).sum())
    cmds = "\n".join(commands(plan, pretrained))
    return f"{markdown_table(table, left=6)}\n\n{n} runs in all:\n\n```\n{cmds}\n```"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m seqrec.report.plan", description=__doc__.split("\n\n")[0])
    p.add_argument("--runs", type=Path, default=Path("results/table2"), help="Table 2 results (default results/table2)")
    p.add_argument("--per-run", action="store_true", help="one command per seed instead of per cell")
    p.add_argument("--commands", action="store_true", help="print only the commands, one per line")
    p.add_argument("overrides", nargs="*", help=f"overrides for every command (default: {SETUP})")
    args = p.parse_args(argv)

    def body() -> None:
        if not args.runs.is_dir():
            raise SeqrecError(
                f"--runs '{args.runs}' is not a folder. Pass the Table 2 results (results/table2 in the "
                "repository's root), or an empty folder to list every run."
            )
        runs = collect_runs(args.runs) if any(args.runs.rglob("metrics.json")) else None
        if runs is not None:  # the runs the plan counts are the ones the pages accept
            check_protocol(runs, TABLE2_PROTOCOL, "Table 2")
        plan = remaining(runs, load_paper())
        pretrained = pretrained_from(runs)
        if not args.commands:
            print(plan_block(plan, pretrained))
            return
        for line in commands(plan, pretrained, args.per_run, " ".join(args.overrides) or SETUP):
            print(line)

    return run_main(body)


if __name__ == "__main__":
    sys.exit(main())
