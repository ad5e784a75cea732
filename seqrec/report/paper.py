"""Everything specific to the CCE paper's presentation, in one place.

Li, Yu, Zeng, Yang, "Effective and Efficient Training for Sequential Recommendation Using
Cumulative Cross-Entropy Loss" (AAAI 2023): its Table 2 numbers (``seqrec/resources/
paper_table2.csv``), the display names and orders of its datasets, models and losses, the loss it
proposes and the baselines it compares with (the defaults of ``python -m seqrec.report``), and
the Table-2 layout: rows dataset × metric, columns model × (baselines…, proposed, Improve), in
markdown, LaTeX (booktabs + multirow), wide CSV and a rich terminal table.

The numbers themselves (means, Improve, bold/underline, significance) are computed generically
for any proposed loss and baselines in :mod:`seqrec.report.table2` and :mod:`seqrec.report.stats`.
"""

from __future__ import annotations

import importlib.resources
import os
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
from rich.table import Table

from seqrec.errors import SeqrecError
from seqrec.report.markdown import markdown_table

# The paper's comparison: CCE against BCE and CE (the report's defaults).
PROPOSED = "cce"
BASELINES = ("bce", "ce")
# Preferred display orders (the paper's); names not listed come after, alphabetically.
DATASET_ORDER = ("sports", "toys", "yelp", "beauty", "lastfm")
MODEL_ORDER = ("gru4rec", "sasrec", "s3rec")
LOSS_ORDER = ("bce", "ce", "cce")
DATASET_NAMES = {"sports": "Sports", "toys": "Toys", "yelp": "Yelp", "beauty": "Beauty", "lastfm": "LastFM"}
MODEL_NAMES = {"gru4rec": "GRU4Rec", "sasrec": "SASRec", "s3rec": "S3-Rec"}
MODEL_NAMES_TEX = {**MODEL_NAMES, "s3rec": "S$^3$-Rec"}
# line colour and dash of each loss in the RQ2/RQ3 figures; other losses get a dotted line
LOSS_STYLE = {"bce": ("tab:blue", "--"), "ce": ("tab:green", "-."), "cce": ("tab:red", "-")}
PAPER_COLUMNS = ["dataset", "model", "loss", "metric"]
MARKER = "***"
MARKER_MD = MARKER.replace("*", r"\*")  # escaped so markdown does not read it as emphasis


def ordered(names, preferred=()) -> list[str]:
    """The distinct ``names`` in ``preferred`` order first, then the rest alphabetically."""
    present = set(names)
    first = [n for n in preferred if n in present]
    return first + sorted(present - set(first))


def table2_order(cell: tuple[str, str, str]) -> tuple:
    """Sort key of a ``(dataset, model, loss)`` cell in the paper's Table 2 order (datasets, models
    and losses it does not have after its own, alphabetically)."""
    orders = (DATASET_ORDER, MODEL_ORDER, LOSS_ORDER)
    return tuple(x for name, order in zip(cell, orders, strict=True) for x in (_rank(order, name), name))


def _rank(order: tuple[str, ...], name: str) -> int:
    return order.index(name) if name in order else len(order)


def loss_name(loss: str) -> str:
    """Display name of a loss: upper case (``cce`` → ``CCE``)."""
    return loss.upper()


AUTHORS_VALID_COLUMNS = ("best_epoch", "last_epoch", "valid_ndcg20", "valid_ndcg10", "valid_hr10")


def load_authors_valid(path: str | os.PathLike | None = None) -> pd.DataFrame:
    """The paper's own runs on validation: per Table 2 cell (dataset, model, loss) the best epoch,
    the last epoch logged (best + 10: patience 10) and the validation NDCG@20 / NDCG@10 / HR@10 at
    the best epoch, from the validation curves the paper's public code published
    (``scripts/authors_valid.py`` writes ``seqrec/resources/authors_valid.csv`` from a clone).

    Raises:
        SeqrecError: the file is missing, unreadable, or lacks one of the columns.
    """
    source = importlib.resources.files("seqrec.resources") / "authors_valid.csv" if path is None else Path(path)
    try:
        with source.open() as f:
            df = pd.read_csv(f, comment="#")
    except (OSError, ValueError, pd.errors.ParserError) as exc:
        raise SeqrecError(f"Cannot read the authors' validation summary '{source}': {exc}.") from exc
    missing = [c for c in ("dataset", "model", "loss", *AUTHORS_VALID_COLUMNS) if c not in df.columns]
    if missing:
        raise SeqrecError(
            f"'{source}' lacks the column(s) {', '.join(missing)}; rebuild it with scripts/authors_valid.py."
        )
    return df


def load_paper(path: str | os.PathLike | None = None) -> pd.DataFrame:
    """The paper's Table 2 as a tidy frame (dataset, model, loss, metric lower case; value).

    Reads: ``path`` (csv with columns dataset,model,loss,metric,value), by default the copy shipped
    as ``seqrec/resources/paper_table2.csv``.

    Raises:
        SeqrecError: the file is missing, unreadable, or lacks one of those columns.
    """
    source = importlib.resources.files("seqrec.resources") / "paper_table2.csv" if path is None else Path(path)
    try:
        with source.open() as f:  # a Path or a package resource
            df = pd.read_csv(f)
    except (OSError, ValueError, pd.errors.ParserError) as exc:
        raise SeqrecError(f"Cannot read the paper's table '{source}': {exc}. Check --paper.") from exc
    missing = [c for c in (*PAPER_COLUMNS, "value") if c not in df.columns]
    if missing:
        raise SeqrecError(
            f"The paper's table '{source}' lacks the column(s) {', '.join(missing)}; it needs "
            "dataset,model,loss,metric,value (one row per cell)."
        )
    df = df[[*PAPER_COLUMNS, "value"]].copy()
    for k in PAPER_COLUMNS:
        df[k] = df[k].astype(str).str.lower()
    return df


# --------------------------------------------------------------------------- Table-2 layout


@dataclass(frozen=True)
class _Style:
    bold: str
    ul: str
    pm: str
    marker: str
    down: str
    pct: str


_MD = _Style("**{}**", "<u>{}</u>", " ± ", MARKER_MD, " ↓", "%")
_TEX = _Style(r"\textbf{{{}}}", r"\underline{{{}}}", r" $\pm$ ", f"$^{{{MARKER}}}$", r" $\downarrow$", r"\%")
# the terminal table shows means only (std is in table2.md/.tex) so that it fits a terminal
_RICH = _Style("[bold]{}[/bold]", "[underline]{}[/underline]", "", MARKER, " [red]↓[/red]", "%")


def _cell(r: pd.Series, loss: str, proposed: str, st: _Style) -> str:
    # a row is read by column name: loss names such as bce-last are no Python identifiers
    mean = r[loss]
    if pd.isna(mean):
        return ""
    text = f"{mean:.4f}"
    if st.pm and r[f"{loss}_n"] > 1:
        text += f"{st.pm}{r[f'{loss}_std']:.4f}"
    if r.get(f"ul_{loss}", False):
        text = st.ul.format(text)
    if r[f"bold_{loss}"]:
        text = st.bold.format(text)
    if loss == proposed and r.marker:
        text += st.marker
    return text


def _improve(r, st: _Style) -> str:
    if pd.isna(r.improve):
        return ""
    return f"{r.improve:.2f}{st.pct}" + (st.down if r.improve < 0 else "")


def _blocks(table):
    """Yield (dataset, metric, {model: row}) in table order (rows are sorted by build_table2)."""
    for (dataset, metric), g in table.rows.groupby(["dataset", "metric"], sort=False):
        yield dataset, metric, {r["model"]: r for _, r in g.iterrows()}


def _line_cells(table, by_model: dict, models: list[str], st: _Style) -> list[str]:
    out = []
    for model in models:
        r = by_model.get(model)
        out += (
            [""] * (len(table.losses) + 1)
            if r is None
            else [*(_cell(r, loss, table.proposed, st) for loss in table.losses), _improve(r, st)]
        )
    return out


def _models(table) -> list[str]:
    return ordered(table.rows["model"], MODEL_ORDER)


def _headings(table) -> list[str]:
    return [*map(loss_name, table.losses), "Improve"]


def _legend(table) -> str:
    base = "/".join(map(loss_name, table.baselines))
    best = f"max({', '.join(map(loss_name, table.baselines))})"
    return (
        f"Test metrics, mean over seeds (± std when seeds > 1). **Bold**: best of the "
        f"{len(table.losses)} losses; <u>underline</u>: best of {base}; Improve = "
        f"({loss_name(table.proposed)} − {best}) / {best}; ↓: degradation; {MARKER_MD}: paired "
        f"t-test of {loss_name(table.proposed)} vs the best baseline, p < .001."
    )


def to_markdown(table) -> str:
    """Table 2 as a markdown table (bold ``**x**``, underline ``<u>x</u>``, ↓, ``\\*\\*\\*``)."""
    models = _models(table)
    head = ["Dataset", "Metric", *(f"{MODEL_NAMES.get(m, m)} {h}" for m in models for h in _headings(table))]
    rows, previous = [], None
    for dataset, metric, by_model in _blocks(table):
        name = DATASET_NAMES.get(dataset, dataset) if dataset != previous else ""
        previous = dataset
        rows.append([name, metric.upper(), *_line_cells(table, by_model, models, _MD)])
    return f"Table 2 (RQ1). {_legend(table)}\n\n{markdown_table(pd.DataFrame(rows, columns=head), left=2)}\n"


def _tex_escape(s: str) -> str:
    for char, escaped in (("\\", r"\textbackslash{}"), ("_", r"\_"), ("&", r"\&"), ("%", r"\%")):
        s = s.replace(char, escaped)
    return s


def to_latex(table) -> str:
    """Table 2 as a booktabs tabular (needs ``\\usepackage{booktabs,multirow}``)."""
    models, width = _models(table), len(table.losses) + 1
    n_metrics = table.rows.groupby("dataset", sort=False)["metric"].nunique()
    losses_tex = [f"$L_{{{_tex_escape(loss)}}}$" for loss in table.losses]
    lines = [
        r"% Table 2 (RQ1), generated by `python -m seqrec.report`; needs \usepackage{booktabs,multirow}.",
        r"\begin{tabular}{ll" + "r" * width * len(models) + "}",
        r"\toprule",
        r"\multirow{2}{*}{Dataset} & \multirow{2}{*}{Metric} & "
        + " & ".join(rf"\multicolumn{{{width}}}{{c}}{{{MODEL_NAMES_TEX.get(m, _tex_escape(m))}}}" for m in models)
        + r" \\",
        "".join(rf"\cmidrule(lr){{{3 + width * i}-{2 + width * (i + 1)}}}" for i in range(len(models))),
        " & & " + " & ".join([*losses_tex, "Improve."] * len(models)) + r" \\",
    ]
    previous = None
    for dataset, metric, by_model in _blocks(table):
        name = ""
        if dataset != previous:
            lines.append(r"\midrule")
            name = rf"\multirow{{{n_metrics[dataset]}}}{{*}}{{{DATASET_NAMES.get(dataset, _tex_escape(dataset))}}}"
        previous = dataset
        lines.append(" & ".join([name, metric.upper(), *_line_cells(table, by_model, models, _TEX)]) + r" \\")
    lines += [r"\bottomrule", r"\end{tabular}"]
    return "\n".join(lines) + "\n"


def to_wide_csv(table) -> str:
    """Table 2 as wide csv: dataset, metric, then ``<model>_<loss>`` per loss and
    ``<model>_improve_pct`` per model (plain numbers)."""
    out = table.rows[["dataset", "metric"]].drop_duplicates().reset_index(drop=True)
    for model in _models(table):
        part = table.rows[table.rows["model"] == model]
        names = {loss: f"{model}_{loss}" for loss in table.losses} | {"improve": f"{model}_improve_pct"}
        part = part[["dataset", "metric", *table.losses, "improve"]].rename(columns=names)
        out = out.merge(part, on=["dataset", "metric"], how="left")
    return out.assign(metric=out["metric"].str.upper()).to_csv(index=False)


def vs_paper_markdown(table) -> str:
    """Ours vs paper as markdown: rows dataset × model × metric, per loss ours | paper | Δ %."""
    vs = table.vs_paper
    losses = ordered(vs["loss"], LOSS_ORDER)
    head = [
        "Dataset",
        "Model",
        "Metric",
        *(f"{loss_name(loss)} {h}" for loss in losses for h in ("ours", "paper", "Δ")),
    ]
    rows = []
    # groupby(sort=False) keeps first-appearance order, which table2._sort made the paper's order
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
        rows.append(cells)
    return (
        "Ours vs the paper's Table 2 (test metrics). ours: mean over seeds (± std when seeds > 1); "
        "Δ = ours / paper − 1; blank: not run by us / not in the paper.\n\n"
        f"{markdown_table(pd.DataFrame(rows, columns=head), left=3)}\n"
    )


def to_rich(table) -> Table:
    """Table 2 as a ``rich`` table for the terminal (bold, underline, red ↓, ``***``)."""
    models = _models(table)
    out = Table(title="Table 2 (RQ1): test metrics, mean over seeds (± std in table2.md)", title_justify="left")
    out.add_column("Dataset")
    out.add_column("Metric")
    for m in models:
        for h in _headings(table):
            out.add_column(f"{MODEL_NAMES.get(m, m)}\n{h}", justify="right")
    previous = None
    for dataset, metric, by_model in _blocks(table):
        if previous is not None and dataset != previous:
            out.add_section()
        name = DATASET_NAMES.get(dataset, dataset) if dataset != previous else ""
        previous = dataset
        out.add_row(name, metric.upper(), *_line_cells(table, by_model, models, _RICH))
    return out
