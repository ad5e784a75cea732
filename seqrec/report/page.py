"""Generated blocks of the documentation pages: numbers rebuilt from result folders, never typed.

A page (``docs/results.md``, ``README.md``) marks each generated block with two HTML comments::

    <!-- generated:table2 begin -->
    ...
    <!-- generated:table2 end -->

``make pages`` (``python -m seqrec.report --runs results/table2 --beyond results/leaderboard
--page docs/results.md --page README.md --pages-only``) rewrites every marked block from the runs;
:func:`stale_blocks` says which blocks of a page differ from what the runs give (the test that
keeps the pages honest). Blocks:

* ``table2``: every cell of the paper's Table 2 (dataset × model × loss) with our HR@10 and NDCG@10
  (mean ± std over seeds), the paper's, the difference and whether it is within noise (below).
* ``significance``: per dataset × model, CCE against its best baseline on NDCG@10 and HR@10 (paired
  t-test over users, seeds averaged per user; :mod:`seqrec.report.stats`).
* ``leaderboard``: per dataset the best NDCG@10 published on the same S3-Rec files with full
  ranking (``seqrec/resources/published_best.csv``) beside seqrec's configuration chosen on
  validation, at ``max_len`` 50 and over every ``max_len`` (Table 2 cells and the runs beyond
  Table 2, :mod:`seqrec.report.leaderboard`).
* ``backbones``: per dataset with BSARec runs, BSARec as published (prefix samples, last-position
  CE), its causal variant with CCE and SASRec + CCE, with paired t-tests against SASRec + CCE.
* ``plan``: the cells that lack seeds and the commands that add them (:mod:`seqrec.report.plan`).
* ``summary``: a few lines per dataset for the README.
* ``authors_valid``: per cell the paper's own run on validation (its published validation curve,
  ``seqrec/resources/authors_valid.csv``) beside seqrec's seeds: the monitored NDCG@20 at the best
  epoch and the best epochs, a comparison free of the test split's noise and of the test's history
  scoring.

Noise and the ``within``/``outside`` verdict: :mod:`seqrec.report.noise`.
"""

from __future__ import annotations

import math
import os
import re
from pathlib import Path

import pandas as pd

from seqrec.atomic import atomic_write
from seqrec.errors import SeqrecError
from seqrec.report.leaderboard import (
    backbones_block,
    comparable_runs,
    configurations,
    leaderboard_block,
    load_published,
)
from seqrec.report.markdown import markdown_table
from seqrec.report.noise import Z_OUTSIDE, cell_noise, ndcg_z, noise_verdict
from seqrec.report.paper import (
    BASELINES,
    DATASET_NAMES,
    DATASET_ORDER,
    MODEL_NAMES,
    PROPOSED,
    load_authors_valid,
    loss_name,
    table2_order,
)
from seqrec.report.plan import plan_block, pretrained_from, remaining
from seqrec.report.stats import significance_table

_BLOCK_RE = re.compile(
    r"(<!-- generated:(?P<name>[a-z0-9_]+) begin[^>]*-->\n)(?P<body>.*?)(<!-- generated:(?P=name) end -->)", re.DOTALL
)


def _fmt(mean: float, std: float) -> str:
    if pd.isna(mean):
        return "not run"
    return f"{mean:.4f}" if pd.isna(std) else f"{mean:.4f} ± {std:.4f}"


def table2_block(cells: pd.DataFrame, paper: pd.DataFrame) -> str:
    """Markdown table of every cell of the paper's Table 2 and every cell we ran (see module)."""
    paper_wide = paper.pivot_table(index=["dataset", "model", "loss"], columns="metric", values="value")
    keys = set(map(tuple, cells[["dataset", "model", "loss"]].to_numpy())) | set(paper_wide.index)
    keys = sorted(keys, key=table2_order)
    indexed = cells.set_index(["dataset", "model", "loss"])
    z_of = dict(zip(indexed.index, ndcg_z(cells, paper), strict=True))
    out = []
    for key in keys:
        ours = indexed.loc[key] if key in indexed.index else None
        line = [
            DATASET_NAMES.get(key[0], key[0]),
            MODEL_NAMES.get(key[1], key[1]),
            loss_name(key[2]),
            "" if ours is None else str(int(ours["n_seeds"])),
        ]
        verdict = ""
        for m in ("hr@10", "ndcg@10"):
            ref = paper_wide.loc[key, m] if key in paper_wide.index and m in paper_wide.columns else math.nan
            mean = math.nan if ours is None else ours[m]
            line += [_fmt(mean, math.nan if ours is None else ours[f"{m}_std"]), "" if pd.isna(ref) else f"{ref:.4f}"]
            if m == "ndcg@10":
                if pd.isna(mean) or pd.isna(ref):
                    line += ["", ""]
                else:
                    z = z_of[key]
                    line += [f"{mean - ref:+.4f}", f"{z:+.1f}"]
                    verdict = noise_verdict(z, int(ours["n_seeds"]))
        out.append(line + [verdict])
    head = ["Dataset", "Model", "Loss", "seeds", "HR@10", "paper", "NDCG@10", "paper", "Δ NDCG@10", "z", "noise"]
    return markdown_table(pd.DataFrame(out, columns=head), left=3)


def significance_block(runs: pd.DataFrame) -> str:
    """CCE against its best baseline per dataset × model (NDCG@10, HR@10), as markdown."""
    present = [b for b in BASELINES if b in set(runs["loss"])]
    if PROPOSED not in set(runs["loss"]) or not present:
        return "(no dataset × model has runs of CCE and of a baseline yet)"
    sig = significance_table(runs, PROPOSED, present)
    out = []
    for (dataset, model), group in sig.groupby(["dataset", "model"], sort=False):
        ndcg = group[group["metric"] == "ndcg@10"]
        best = ndcg.loc[ndcg["mean_baseline"].idxmax()]  # the first baseline on a tie
        hr = group[(group["metric"] == "hr@10") & (group["baseline"] == best.baseline)].iloc[0]
        out.append(
            [
                DATASET_NAMES.get(dataset, dataset),
                MODEL_NAMES.get(model, model),
                loss_name(best.baseline),
                f"{best.n_seeds_proposed}/{best.n_seeds_baseline}",
                str(best.n_users),
                f"{best.mean_proposed:.4f} vs {best.mean_baseline:.4f}",
                f"{best.t:.1f}",
                f"{best.p:.2g}",
                f"{hr.mean_proposed:.4f} vs {hr.mean_baseline:.4f}",
                f"{hr.p:.2g}",
            ]
        )
    head = [
        "Dataset",
        "Model",
        "best baseline",
        "seeds CCE/base",
        "users",
        "NDCG@10 CCE vs base",
        "t",
        "p",
        "HR@10 CCE vs base",
        "p (HR@10)",
    ]
    return markdown_table(pd.DataFrame(out, columns=head), left=3)


def summary_block(cells: pd.DataFrame, paper: pd.DataFrame) -> str:
    """README lines: per dataset, cells run, CCE cells within noise, best CCE NDCG@10 vs the paper's."""
    paper_ndcg = paper[paper["metric"] == "ndcg@10"].set_index(["dataset", "model", "loss"])["value"]
    lines = []
    for dataset in [d for d in DATASET_ORDER if d in set(paper["dataset"])]:
        ours = cells[cells["dataset"] == dataset]
        n_paper = int((paper_ndcg.index.get_level_values(0) == dataset).sum())
        if ours.empty:
            lines.append(f"| {DATASET_NAMES[dataset]} | 0 of {n_paper} | | | |")
            continue
        within = int((ndcg_z(ours, paper).abs() <= Z_OUTSIDE).sum())
        cce = ours[ours["loss"] == PROPOSED]
        best = "" if cce.empty else cce.loc[cce["ndcg@10"].idxmax()]
        best_text = (
            ""
            if cce.empty
            else (
                f"{best['ndcg@10']:.4f} ({MODEL_NAMES.get(best.model, best.model)}; paper "
                f"{paper_ndcg.get((dataset, best.model, PROPOSED), math.nan):.4f})"
            )
        )
        seeds = f"{int(cce['n_seeds'].min())}–{int(cce['n_seeds'].max())}" if not cce.empty else ""
        seeds = seeds.split("–")[0] if seeds and len(set(seeds.split("–"))) == 1 else seeds
        lines.append(
            f"| {DATASET_NAMES[dataset]} | {len(ours)} of {n_paper} | {within} of {len(ours)} | {best_text} | {seeds} |"
        )
    head = (
        "| Dataset | cells run | within noise of the paper (NDCG@10) | best CCE NDCG@10 | seeds per CCE cell |\n"
        "|---|---|---|---|---|"
    )
    return head + "\n" + "\n".join(lines)


def authors_valid_block(runs: pd.DataFrame, authors: pd.DataFrame) -> str:
    """Per Table 2 cell, the paper's run on validation (best NDCG@20, its epoch, the last epoch
    logged) beside seqrec's seeds (mean ± std of the best validation NDCG@20, best epochs) and
    their ratio, as markdown; cells without seqrec runs show the paper's side only."""
    by_cell = {key: group for key, group in runs.groupby(["dataset", "model", "loss"])}
    out = []
    for row in sorted(authors.itertuples(), key=lambda r: table2_order((r.dataset, r.model, r.loss))):
        ours = by_cell.get((row.dataset, row.model, row.loss))
        line = [
            DATASET_NAMES.get(row.dataset, row.dataset),
            MODEL_NAMES.get(row.model, row.model),
            loss_name(row.loss),
            f"{row.valid_ndcg20:.4f}",
            f"{row.best_epoch} / {row.last_epoch}",
        ]
        if ours is None:
            line += ["not run", "", "", ""]
        else:
            values = ours["valid/ndcg@20"]
            mean = values.mean()
            line += [
                _fmt(mean, values.std(ddof=1) if len(values) > 1 else math.nan),
                str(len(values)),
                ", ".join("?" if pd.isna(e) else str(int(e)) for e in ours["best_epoch"]),
                f"{mean / row.valid_ndcg20:.2f}",
            ]
        out.append(line)
    head = ["Dataset", "Model", "Loss", "paper's run: valid NDCG@20", "best / last epoch",
            "seqrec: valid NDCG@20", "seeds", "best epochs", "seqrec / paper"]  # fmt: skip
    return markdown_table(pd.DataFrame(out, columns=head), left=3)


def render_blocks(runs: pd.DataFrame, paper: pd.DataFrame, beyond: pd.DataFrame | None = None) -> dict[str, str]:
    """Every generated block (name → markdown, ending in a newline) from a ``collect_runs`` frame
    of Table 2 runs, the paper's table (``load_paper()``) and the runs beyond Table 2 that the
    leaderboard also chooses from (``leaderboard.collect_beyond``; None: Table 2 cells only)."""
    cells = cell_noise(runs)
    comparable = comparable_runs(runs, beyond)
    return {
        "table2": table2_block(cells, paper) + "\n",
        "significance": significance_block(runs) + "\n",
        "leaderboard": leaderboard_block(configurations(comparable), load_published(), paper) + "\n",
        "backbones": backbones_block(comparable) + "\n",
        "plan": plan_block(remaining(runs, paper, cells), pretrained_from(runs)) + "\n",
        "summary": summary_block(cells, paper) + "\n",
        "authors_valid": authors_valid_block(runs, load_authors_valid()) + "\n",
    }


_MARKER_RE = re.compile(r"<!-- generated:(?P<name>[^ >]*) (?P<end>begin|end)")


def page_blocks(text: str, path: str | os.PathLike = "the page") -> dict[str, str]:
    """The generated blocks of a page's text: name → body.

    Raises:
        SeqrecError: a marker that pairs with none (a ``begin`` without its ``end``, or the
            reverse, a name outside ``[a-z0-9_]``): its block would silently stay as it is.
    """
    blocks = list(_BLOCK_RE.finditer(text))
    paired = {m.start(1) for m in blocks} | {m.start(4) for m in blocks}
    for marker in _MARKER_RE.finditer(text):
        if marker.start() not in paired:
            line = text.count("\n", 0, marker.start()) + 1
            raise SeqrecError(
                f"{path}, line {line}: the marker '<!-- generated:{marker['name']} {marker['end']}' "
                "has no partner; a generated block is <!-- generated:NAME begin --> on its own "
                "line, the block, then <!-- generated:NAME end --> (NAME: lower-case letters, digits, _)."
            )
    return {m["name"]: m["body"] for m in blocks}


def stale_blocks(path: str | os.PathLike, blocks: dict[str, str]) -> list[str]:
    """Names of the generated blocks of the page at ``path`` whose body differs from ``blocks``
    (a block the page marks but ``blocks`` lacks counts as stale)."""
    found = page_blocks(Path(path).read_text(), path)
    return [name for name, body in found.items() if blocks.get(name) != body]


def update_page(path: str | os.PathLike, blocks: dict[str, str]) -> Path:
    """Rewrite the generated blocks of the page at ``path`` (atomically); the text around them is
    kept.

    Raises:
        SeqrecError: the page cannot be read, marks no block, or marks one that is not generated.
    """
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as exc:
        raise SeqrecError(
            f"Cannot read the page '{path}' ({exc.strerror}); pass --page an existing markdown file."
        ) from exc
    found = page_blocks(text, path)
    unknown = sorted(set(found) - set(blocks))
    if not found or unknown:
        raise SeqrecError(
            f"'{path}' marks {'no generated block' if not found else 'the unknown block(s) ' + ', '.join(unknown)}; "
            f"mark a block with <!-- generated:NAME begin --> … <!-- generated:NAME end -->, "
            f"NAME one of {', '.join(blocks)}."
        )
    new = _BLOCK_RE.sub(lambda m: m.group(1) + blocks[m["name"]] + m.group(4), text)
    return atomic_write(path, new)
