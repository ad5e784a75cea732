"""Table 2 (RQ1) of Li et al. (AAAI 2023): BCE vs CE vs CCE for each model, dataset and metric.

Layout as in the paper: rows dataset × metric (HR@5/10/20, NDCG@5/10/20), columns model × {BCE, CE,
CCE, Improve}. A cell is the mean test metric over seeds (``± std`` with ddof = 1 when seeds > 1).

Marks, all computed on the unrounded means:

* Improve = (CCE − max(BCE, CE)) / max(BCE, CE) × 100 %; blank unless all three cells exist;
  negative values (degradations) carry ↓.
* bold: the best of BCE/CE/CCE (only when all three exist; ties are all bold).
* underline: the better of BCE and CE (only when both exist; ties both underlined).
* ``***`` next to CCE: the paired t-test (``seqrec.report.stats``) of CCE against the underlined
  (better) baseline, or the only baseline run, has p < .001.

Files (``write_table2``): ``table2.md``, ``table2.tex`` (booktabs + multirow), ``table2.csv`` (wide,
plain numbers: ``dataset, metric, <model>_bce, <model>_ce, <model>_cce, <model>_improve_pct`` per
model, one row per dataset × metric), ``table2_vs_paper.csv`` (tidy: one row per dataset × model ×
loss × metric found in our runs or in the paper; ``ours, ours_std, n_seeds, paper, rel_diff_pct``
with rel_diff_pct = (ours / paper − 1) × 100, blank where either side is missing) and
``table2_vs_paper.md`` (rows dataset × model × metric, per loss: ours | paper | Δ).
"""

from __future__ import annotations

import importlib.resources
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from rich.table import Table

from seqrec.errors import SeqrecError
from seqrec.report.runs import (
    DATASET_ORDER,
    LOSS_ORDER,
    METRICS,
    MODEL_ORDER,
    check_same_data,
    ordered,
    write_atomic,
)
from seqrec.report.stats import MARKER, MARKER_MD

KEYS = ["dataset", "model", "loss", "metric"]
DATASET_NAMES = {
    "sports": "Sports", "toys": "Toys", "yelp": "Yelp", "beauty": "Beauty", "lastfm": "LastFM",
}
MODEL_NAMES = {"gru4rec": "GRU4Rec", "sasrec": "SASRec", "s3rec": "S3-Rec"}
MODEL_NAMES_TEX = {**MODEL_NAMES, "s3rec": "S$^3$-Rec"}
LOSS_NAMES_TEX = {loss: f"$L_{{{loss}}}$" for loss in LOSS_ORDER}


@dataclass(frozen=True)
class Table2:
    """Table 2 in data form.

    ``rows``: one row per dataset × model × metric (paper order) with columns dataset, model,
    metric (lower case), ``bce``/``ce``/``cce`` (mean), ``<loss>_std``, ``<loss>_n`` (seeds),
    ``improve`` (%), ``bold_<loss>``, ``ul_bce``, ``ul_ce`` (bool) and ``marker`` (str).
    ``vs_paper``: the tidy comparison with the paper (see module docstring), or None.
    """

    rows: pd.DataFrame
    vs_paper: pd.DataFrame | None = None


def load_paper(path: str | os.PathLike | None = None) -> pd.DataFrame:
    """The paper's Table 2 as a tidy frame (dataset, model, loss, metric lower case; value).

    Reads: ``path`` (csv with columns dataset,model,loss,metric,value), by default the copy shipped
    as ``seqrec/resources/paper_table2.csv``.

    Raises:
        SeqrecError: the file is missing, unreadable, or lacks one of those columns.
    """
    if path is None:
        source = importlib.resources.files("seqrec.resources") / "paper_table2.csv"
    else:
        source = Path(path)
    try:
        with source.open() as f:  # a Path or a package resource
            df = pd.read_csv(f)
    except (OSError, ValueError, pd.errors.ParserError) as exc:
        raise SeqrecError(f"Cannot read the paper's table '{source}': {exc}. Check --paper.") from exc
    missing = [c for c in (*KEYS, "value") if c not in df.columns]
    if missing:
        raise SeqrecError(
            f"The paper's table '{source}' lacks the column(s) {', '.join(missing)}; it needs "
            "dataset,model,loss,metric,value (one row per cell)."
        )
    df = df[[*KEYS, "value"]].copy()
    for k in KEYS:
        df[k] = df[k].astype(str).str.lower()
    return df


def cell_stats(runs: pd.DataFrame) -> pd.DataFrame:
    """Mean, std (ddof = 1, NaN for one seed) and number of seeds of every test metric per
    dataset × model × loss (a tidy frame with columns KEYS + mean, std, n_seeds)."""
    long = runs.melt(
        id_vars=["dataset", "model", "loss"], value_vars=[f"test/{m}" for m in METRICS],
        var_name="metric", value_name="value",
    ).dropna(subset=["value"])
    long["metric"] = long["metric"].str.removeprefix("test/")
    grouped = long.groupby(KEYS, sort=False)["value"]
    return grouped.agg(mean="mean", std="std", n_seeds="count").reset_index()


def build_table2(runs: pd.DataFrame, paper_df: pd.DataFrame | None = None,
                 significance: pd.DataFrame | None = None) -> Table2:
    """Build Table 2 from a ``collect_runs`` frame.

    Args:
        runs: one row per run; only losses bce/ce/cce enter Table 2 (all losses enter vs_paper).
        paper_df: ``load_paper()`` frame; when given, ``Table2.vs_paper`` is filled.
        significance: ``stats.significance_table`` frame; when given, CCE cells get their marker.

    Raises:
        SeqrecError: two runs of one dataset × model have different data fingerprints.
    """
    check_same_data(runs)
    cells = cell_stats(runs[runs["loss"].isin(LOSS_ORDER)])
    wide = cells.pivot(index=["dataset", "model", "metric"], columns="loss",
                       values=["mean", "std", "n_seeds"])
    rows = pd.DataFrame(index=wide.index)
    for loss in LOSS_ORDER:
        for stat, suffix in (("mean", ""), ("std", "_std"), ("n_seeds", "_n")):
            col = (stat, loss)
            rows[loss + suffix] = wide[col].astype(float) if col in wide.columns else np.nan
    rows = _sort(rows.reset_index(), ["dataset", "metric", "model"])

    b, c, x = rows["bce"], rows["ce"], rows["cce"]
    both, all3 = b.notna() & c.notna(), b.notna() & c.notna() & x.notna()
    base = np.maximum(b, c).where(both)
    rows["improve"] = ((x - base) / base * 100).where(all3 & (base > 0))
    best = rows[list(LOSS_ORDER)].max(axis=1)
    for loss in LOSS_ORDER:
        rows[f"bold_{loss}"] = all3 & (rows[loss] == best)
    rows["ul_bce"], rows["ul_ce"] = both & (b >= c), both & (c >= b)
    rows["marker"] = _markers(rows, significance)
    vs_paper = compare_with_paper(runs, paper_df) if paper_df is not None else None
    return Table2(rows=rows, vs_paper=vs_paper)


def _sort(df: pd.DataFrame, by: list[str]) -> pd.DataFrame:
    """Sort by the paper's orders: datasets, models, losses, metrics (others alphabetically)."""
    prefs = {"dataset": DATASET_ORDER, "model": MODEL_ORDER, "loss": LOSS_ORDER, "metric": METRICS}
    rank = {k: {n: i for i, n in enumerate(ordered(df[k], prefs[k]))} for k in by}
    return df.sort_values(by, key=lambda s: s.map(rank[s.name]), kind="stable").reset_index(drop=True)


def _markers(rows: pd.DataFrame, significance: pd.DataFrame | None) -> list[str]:
    if significance is None or significance.empty:
        return [""] * len(rows)
    lookup = {(r.dataset, r.model, r.metric, r.baseline): r.marker for r in significance.itertuples()}
    out = []
    for r in rows.itertuples():
        if r.ul_bce or r.ul_ce:  # test against the better baseline (BCE on a tie)
            baseline = "bce" if r.ul_bce else "ce"
        else:  # at most one baseline was run
            baseline = "ce" if pd.isna(r.bce) else "bce"
        out.append(lookup.get((r.dataset, r.model, r.metric, baseline), ""))
    return out


def compare_with_paper(runs: pd.DataFrame, paper_df: pd.DataFrame) -> pd.DataFrame:
    """Tidy ours-vs-paper frame: every dataset × model × loss × metric in either source, with
    ours, ours_std, n_seeds, paper, rel_diff_pct (= (ours / paper − 1) × 100). Cells missing on one
    side stay NaN (nothing is invented)."""
    ours = cell_stats(runs).rename(columns={"mean": "ours", "std": "ours_std"})
    paper = paper_df.rename(columns={"value": "paper"})
    merged = ours.merge(paper, on=KEYS, how="outer")
    merged["n_seeds"] = merged["n_seeds"].astype("Int64")  # NaN-able int: blank for paper-only cells
    merged["rel_diff_pct"] = ((merged["ours"] / merged["paper"] - 1) * 100).where(merged["paper"] != 0)
    merged = merged[[*KEYS, "ours", "ours_std", "n_seeds", "paper", "rel_diff_pct"]]
    return _sort(merged, ["dataset", "model", "loss", "metric"])


# --------------------------------------------------------------------------- rendering


@dataclass(frozen=True)
class _Style:
    bold: str
    ul: str
    pm: str
    marker: str
    down: str
    pct: str


_MD = _Style("**{}**", "<u>{}</u>", " ± ", MARKER_MD, " ↓", "%")
_TEX = _Style(r"\textbf{{{}}}", r"\underline{{{}}}", r" $\pm$ ", f"$^{{{MARKER}}}$", r" $\downarrow$",
              r"\%")
# the terminal table shows means only (std is in table2.md/.tex) so that it fits a terminal
_RICH = _Style("[bold]{}[/bold]", "[underline]{}[/underline]", "", MARKER, " [red]↓[/red]", "%")


def _cell(r, loss: str, st: _Style) -> str:
    mean = getattr(r, loss)
    if pd.isna(mean):
        return ""
    text = f"{mean:.4f}"
    if st.pm and getattr(r, f"{loss}_n") > 1:
        text += f"{st.pm}{getattr(r, f'{loss}_std'):.4f}"
    if getattr(r, f"ul_{loss}", False):
        text = st.ul.format(text)
    if getattr(r, f"bold_{loss}"):
        text = st.bold.format(text)
    if loss == "cce" and r.marker:
        text += st.marker
    return text


def _improve(r, st: _Style) -> str:
    if pd.isna(r.improve):
        return ""
    return f"{r.improve:.2f}{st.pct}" + (st.down if r.improve < 0 else "")


def _blocks(table: Table2):
    """Yield (dataset, metric, {model: row}) in table order (rows are sorted by build_table2)."""
    for (dataset, metric), g in table.rows.groupby(["dataset", "metric"], sort=False):
        yield dataset, metric, {r.model: r for r in g.itertuples()}


def _line_cells(by_model: dict, models: list[str], st: _Style) -> list[str]:
    out = []
    for model in models:
        r = by_model.get(model)
        out += [""] * 4 if r is None else [*(_cell(r, loss, st) for loss in LOSS_ORDER), _improve(r, st)]
    return out


def _models(table: Table2) -> list[str]:
    return ordered(table.rows["model"], MODEL_ORDER)


def to_markdown(table: Table2) -> str:
    """Table 2 as a markdown table (bold ``**x**``, underline ``<u>x</u>``, ↓, ``\\*\\*\\*``)."""
    models = _models(table)
    head = ["Dataset", "Metric"]
    head += [f"{MODEL_NAMES.get(m, m)} {h}" for m in models for h in ("BCE", "CE", "CCE", "Improve")]
    lines = [
        "Table 2 (RQ1). Test metrics, mean over seeds (± std when seeds > 1). **Bold**: best of the "
        "three losses; <u>underline</u>: better of BCE/CE; "
        "Improve = (CCE − max(BCE, CE)) / max(BCE, CE); "
        f"↓: degradation; {MARKER_MD}: paired t-test of CCE vs the better baseline, p < .001.",
        "",
        "| " + " | ".join(head) + " |",
        "|" + "|".join(["---"] * 2 + ["---:"] * (len(head) - 2)) + "|",
    ]
    previous = None
    for dataset, metric, by_model in _blocks(table):
        name = DATASET_NAMES.get(dataset, dataset) if dataset != previous else ""
        previous = dataset
        cells = [name, metric.upper(), *_line_cells(by_model, models, _MD)]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def _tex_escape(s: str) -> str:
    for char, escaped in (("\\", r"\textbackslash{}"), ("_", r"\_"), ("&", r"\&"), ("%", r"\%")):
        s = s.replace(char, escaped)
    return s


def _tex_model(model: str) -> str:
    return MODEL_NAMES_TEX.get(model, _tex_escape(model))


def to_latex(table: Table2) -> str:
    """Table 2 as a booktabs tabular (needs ``\\usepackage{booktabs,multirow}``)."""
    models = _models(table)
    n_metrics = table.rows.groupby("dataset", sort=False)["metric"].nunique()
    lines = [
        r"% Table 2 (RQ1), generated by `python -m seqrec.report`; needs \usepackage{booktabs,multirow}.",
        r"\begin{tabular}{ll" + "rrrr" * len(models) + "}",
        r"\toprule",
        r"\multirow{2}{*}{Dataset} & \multirow{2}{*}{Metric} & "
        + " & ".join(rf"\multicolumn{{4}}{{c}}{{{_tex_model(m)}}}" for m in models) + r" \\",
        "".join(rf"\cmidrule(lr){{{3 + 4 * i}-{6 + 4 * i}}}" for i in range(len(models))),
        " & & " + " & ".join([*LOSS_NAMES_TEX.values(), "Improve."] * len(models)) + r" \\",
    ]
    previous = None
    for dataset, metric, by_model in _blocks(table):
        if dataset != previous:
            lines.append(r"\midrule")
            shown = DATASET_NAMES.get(dataset, _tex_escape(dataset))
            name = rf"\multirow{{{n_metrics[dataset]}}}{{*}}{{{shown}}}"
        else:
            name = ""
        previous = dataset
        lines.append(" & ".join([name, metric.upper(), *_line_cells(by_model, models, _TEX)]) + r" \\")
    lines += [r"\bottomrule", r"\end{tabular}"]
    return "\n".join(lines) + "\n"


def to_wide_csv(table: Table2) -> str:
    """Table 2 as wide csv: dataset, metric, then <model>_bce, _ce, _cce, _improve_pct per model."""
    out = table.rows[["dataset", "metric"]].drop_duplicates().reset_index(drop=True)
    for model in _models(table):
        part = table.rows[table.rows["model"] == model]
        names = {loss: f"{model}_{loss}" for loss in LOSS_ORDER} | {"improve": f"{model}_improve_pct"}
        part = part[["dataset", "metric", *LOSS_ORDER, "improve"]].rename(columns=names)
        out = out.merge(part, on=["dataset", "metric"], how="left")
    return out.assign(metric=out["metric"].str.upper()).to_csv(index=False)


def vs_paper_markdown(table: Table2) -> str:
    """Ours vs paper as markdown: rows dataset × model × metric, per loss ours | paper | Δ %."""
    vs = table.vs_paper
    losses = ordered(vs["loss"], LOSS_ORDER)
    head = ["Dataset", "Model", "Metric"]
    head += [f"{loss.upper()} {h}" for loss in losses for h in ("ours", "paper", "Δ")]
    lines = [
        "Ours vs the paper's Table 2 (test metrics). ours: mean over seeds (± std when seeds > 1); "
        "Δ = ours / paper − 1; blank: not run by us / not in the paper.",
        "",
        "| " + " | ".join(head) + " |",
        "|" + "|".join(["---"] * 3 + ["---:"] * (len(head) - 3)) + "|",
    ]
    # groupby(sort=False) keeps first-appearance order, which _sort made the paper's order
    for (dataset, model, metric), g in vs.groupby(["dataset", "model", "metric"], sort=False):
        by_loss = {r.loss: r for r in g.itertuples()}
        cells = [DATASET_NAMES.get(dataset, dataset), MODEL_NAMES.get(model, model), metric.upper()]
        for loss in losses:
            r = by_loss.get(loss)
            if r is None:
                cells += ["", "", ""]
                continue
            ours = "" if pd.isna(r.ours) else f"{r.ours:.4f}"
            if ours and r.n_seeds > 1:
                ours += f" ± {r.ours_std:.4f}"
            paper = "" if pd.isna(r.paper) else f"{r.paper:.4f}"
            diff = "" if pd.isna(r.rel_diff_pct) else f"{r.rel_diff_pct:+.1f}%"
            cells += [ours, paper, diff]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def to_rich(table: Table2) -> Table:
    """Table 2 as a ``rich`` table for the terminal (bold, underline, red ↓, ``***``)."""
    models = _models(table)
    title = "Table 2 (RQ1): test metrics, mean over seeds (± std in table2.md)"
    out = Table(title=title, title_justify="left")
    out.add_column("Dataset")
    out.add_column("Metric")
    for m in models:
        for h in ("BCE", "CE", "CCE", "Improve"):
            out.add_column(f"{MODEL_NAMES.get(m, m)}\n{h}", justify="right")
    previous = None
    for dataset, metric, by_model in _blocks(table):
        if previous is not None and dataset != previous:
            out.add_section()
        name = DATASET_NAMES.get(dataset, dataset) if dataset != previous else ""
        previous = dataset
        out.add_row(name, metric.upper(), *_line_cells(by_model, models, _RICH))
    return out


def write_table2(table: Table2, out_dir: str | os.PathLike) -> list[Path]:
    """Write table2.md/.csv/.tex and, when ``table.vs_paper`` is set, table2_vs_paper.md/.csv
    into ``out_dir`` (each atomically). Returns the paths written."""
    out = Path(out_dir)
    paths = [
        write_atomic(out / "table2.md", to_markdown(table)),
        write_atomic(out / "table2.csv", to_wide_csv(table)),
        write_atomic(out / "table2.tex", to_latex(table)),
    ]
    if table.vs_paper is not None:
        vs = table.vs_paper.assign(metric=table.vs_paper["metric"].str.upper())
        paths += [
            write_atomic(out / "table2_vs_paper.md", vs_paper_markdown(table)),
            write_atomic(out / "table2_vs_paper.csv", vs.to_csv(index=False)),
        ]
    return paths
