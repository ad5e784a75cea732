"""Tests of seqrec.report on hand-made run folders (no training, no data files).

Every expected number is written out or computed by hand from the inputs in the test.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest

from seqrec.atomic import atomic_write
from seqrec.errors import SeqrecError
from seqrec.evaluation import METRICS
from seqrec.report.__main__ import main
from seqrec.report.curves import rq2_figures, write_rq2
from seqrec.report.page import authors_valid_block
from seqrec.report.paper import load_authors_valid, load_paper, to_latex, to_markdown, vs_paper_markdown
from seqrec.report.runs import collect_runs, read_per_user
from seqrec.report.stats import paired_ttest, significance_table
from seqrec.report.table2 import build_table2, compare_with_paper

USERS = [f"u{i:03d}" for i in range(6)]


def make_run(
    root,
    dataset="lastfm",
    model="sasrec",
    loss="cce",
    seed=42,
    value=0.03,
    metrics=None,
    per_user=None,
    users=USERS,
    fingerprint="fp-a",
    epochs=3,
    epoch_seconds=1.5,
):
    """Write one finished run folder and return its path.

    ``value`` is the test value of every metric unless ``metrics`` ({"ndcg@10": 0.045}) overrides
    some; ``per_user`` ({"ndcg@10": [...]}) sets per-user values (default: every user = the mean).
    """
    run_dir = root / f"{dataset}-{model}-{loss}-{seed}"
    run_dir.mkdir(parents=True)
    test = {m: value for m in METRICS} | (metrics or {})
    per_user = per_user or {}
    table = {"user_id": users, "rank": np.arange(1, len(users) + 1)}
    for m in METRICS:
        table[m] = per_user.get(m, [test[m]] * len(users))
        test[m] = float(np.mean(table[m]))
    pd.DataFrame(table).to_csv(run_dir / "per_user_test.csv", index=False)
    data = {
        "dataset": dataset,
        "model": model,
        "loss": loss,
        "seed": seed,
        "best_epoch": 2,
        "epochs_run": epochs,
        "seconds_per_epoch": epoch_seconds,
        "total_seconds": 9.0,
        "n_users": len(users),
        "n_items": 50,
        "data_fingerprint": fingerprint,
        "extra": "ignored",
    }
    data |= {f"test/{m}": v for m, v in test.items()} | {f"valid/{m}": v for m, v in test.items()}
    (run_dir / "metrics.json").write_text(json.dumps(data))
    ep = np.arange(1, epochs + 1)
    pd.DataFrame(
        {
            "epoch": ep,
            "train_loss": 1.0 / ep,
            "test/ndcg@10": test["ndcg@10"] * ep / epochs,
            "epoch_seconds": epoch_seconds,
            "eval_seconds": 0.1,
            "train_seconds_cum": epoch_seconds * ep,
        }
    ).to_csv(run_dir / "epochs.csv", index=False)
    (run_dir / "config.yaml").write_text("seed: 42\n")
    return run_dir


def three_losses(root, bce, ce, cce, metric="ndcg@10", **kw):
    for loss, v in (("bce", bce), ("ce", ce), ("cce", cce)):
        make_run(root, loss=loss, metrics={metric: v}, **kw)


def md_rows(text: str) -> list[list[str]]:
    """Body rows of the markdown table in ``text`` as lists of stripped cells."""
    lines = [ln for ln in text.splitlines() if ln.startswith("|")][2:]
    return [[c.strip() for c in ln.strip("|").split("|")] for ln in lines]


def row_of(table, metric="ndcg@10", model="sasrec"):
    rows = table.rows
    return rows[(rows["metric"] == metric) & (rows["model"] == model)].iloc[0]


# ------------------------------------------------------------------ collecting runs


def test_collect_runs_reads_finished_runs_only(tmp_path):
    make_run(tmp_path / "a", seed=1, users=["007", "010"])
    (tmp_path / "b" / "unfinished").mkdir(parents=True)
    (tmp_path / "b" / "unfinished" / "config.yaml").write_text("x: 1\n")
    runs = collect_runs(tmp_path)
    assert len(runs) == 1
    r = runs.iloc[0]
    assert (r.dataset, r.model, r.loss, r.seed) == ("lastfm", "sasrec", "cce", 1)
    assert r.data_fingerprint == "fp-a"
    assert r["test/ndcg@10"] == pytest.approx(0.03) and r.n_items == 50
    assert "extra" not in runs.columns
    assert list(read_per_user(r.run_dir).index) == ["007", "010"]  # user ids stay strings


def test_collect_runs_errors(tmp_path):
    with pytest.raises(SeqrecError, match="does not exist"):
        collect_runs(tmp_path / "nope")
    with pytest.raises(SeqrecError, match="No finished run"):
        collect_runs(tmp_path)
    make_run(tmp_path / "x")
    make_run(tmp_path / "y")
    with pytest.raises(SeqrecError, match="same dataset=lastfm") as err:
        collect_runs(tmp_path)
    assert str(tmp_path / "x") in str(err.value) and str(tmp_path / "y") in str(err.value)


# ------------------------------------------------------------------ Table 2


def test_improve_bold_underline_hand_case(tmp_path):
    three_losses(tmp_path, bce=0.02, ce=0.03, cce=0.045)
    table = build_table2(collect_runs(tmp_path))
    r = row_of(table)
    assert r.improve == pytest.approx(50.0)  # (0.045 - 0.03) / 0.03
    assert (r.bold_bce, r.bold_ce, r.bold_cce, r.ul_bce, r.ul_ce) == (False, False, True, False, True)
    md = to_markdown(table)
    line = next(row for row in md_rows(md) if row[1] == "NDCG@10")
    assert line[2:6] == ["0.0200", "<u>0.0300</u>", "**0.0450**", "50.00%"]
    tex = to_latex(table)
    assert r"0.0200 & \underline{0.0300} & \textbf{0.0450} & 50.00\% \\" in tex
    assert r"\multirow{6}{*}{LastFM}" in tex and r"\toprule" in tex and r"\bottomrule" in tex


def test_degradation_marked_and_baseline_bold(tmp_path):
    three_losses(tmp_path, bce=0.0468, ce=0.0312, cce=0.0459)  # the paper's LastFM GRU4Rec HR@10
    table = build_table2(collect_runs(tmp_path))
    r = row_of(table)
    assert r.improve == pytest.approx((0.0459 - 0.0468) / 0.0468 * 100)  # -1.923 %
    assert (r.bold_bce, r.bold_cce, r.ul_bce, r.ul_ce) == (True, False, True, False)
    line = next(row for row in md_rows(to_markdown(table)) if row[1] == "NDCG@10")
    assert line[2:6] == ["**<u>0.0468</u>**", "0.0312", "0.0459", "-1.92% ↓"]
    assert r"\textbf{\underline{0.0468}} & 0.0312 & 0.0459 & -1.92\% $\downarrow$ \\" in to_latex(table)


def test_missing_cells_are_blank(tmp_path):
    make_run(tmp_path, model="gru4rec", loss="bce", value=0.02)
    make_run(tmp_path, model="gru4rec", loss="cce", value=0.04)  # no CE run for gru4rec
    three_losses(tmp_path, bce=0.02, ce=0.03, cce=0.045)  # full sasrec
    table = build_table2(collect_runs(tmp_path))
    r = row_of(table, model="gru4rec")
    assert math.isnan(r.ce) and math.isnan(r.improve)
    assert not (r.bold_bce or r.bold_cce or r.ul_bce)  # "best of three" needs all three
    line = next(row for row in md_rows(to_markdown(table)) if row[1] == "NDCG@10")
    assert line[2:10] == ["0.0200", "", "0.0400", "", "0.0200", "<u>0.0300</u>", "**0.0450**", "50.00%"]


def test_seeds_mean_std_and_order(tmp_path):
    for seed, v in ((1, 0.02), (2, 0.04)):
        make_run(tmp_path, dataset="ml100k", model="s3rec", loss="cce", seed=seed, value=v)
    make_run(tmp_path, dataset="sports", model="gru4rec", loss="ce", value=0.01)
    make_run(tmp_path, dataset="lastfm", model="s3rec", loss="bce", value=0.01)
    table = build_table2(collect_runs(tmp_path))
    assert list(dict.fromkeys(table.rows["dataset"])) == ["sports", "lastfm", "ml100k"]
    assert list(table.rows["metric"][:6]) == list(METRICS)
    r = table.rows[(table.rows.dataset == "ml100k") & (table.rows.metric == "hr@5")].iloc[0]
    assert r.cce == pytest.approx(0.03) and r.cce_std == pytest.approx(0.02 / math.sqrt(2)) and r.cce_n == 2
    md = to_markdown(table)
    assert "| GRU4Rec BCE | GRU4Rec CE |" in md and md.index("GRU4Rec CE") < md.index("S3-Rec BCE")
    assert "0.0300 ± 0.0141" in md and r"0.0300 $\pm$ 0.0141" in to_latex(table)


# ------------------------------------------------------------------ paper comparison


def test_packaged_paper_table():
    paper = load_paper()
    assert len(paper) == 270 and set(paper["metric"]) == set(METRICS)
    cell = paper.set_index(["dataset", "model", "loss", "metric"]).loc[("lastfm", "s3rec", "bce", "hr@5")]
    assert cell["value"] == 0.0431


def test_compare_with_paper(tmp_path):
    make_run(tmp_path, dataset="lastfm", model="sasrec", loss="cce", value=0.0495)  # paper HR@5: 0.0450
    make_run(tmp_path, dataset="ml100k", model="sasrec", loss="cce", value=0.1)  # not in the paper
    paper = load_paper()
    vs = compare_with_paper(collect_runs(tmp_path), paper)
    assert len(vs) == 270 + 6  # every paper cell, plus our six ml100k cells
    get = vs.set_index(["dataset", "model", "loss", "metric"])
    ours = get.loc[("lastfm", "sasrec", "cce", "hr@5")]
    assert ours.paper == 0.0450 and ours.rel_diff_pct == pytest.approx(10.0)  # 0.0495 / 0.0450 - 1
    not_run = get.loc[("sports", "gru4rec", "bce", "hr@5")]
    assert pd.isna(not_run.ours) and not_run.paper == 0.0100 and pd.isna(not_run.rel_diff_pct)
    assert pd.isna(get.loc[("ml100k", "sasrec", "cce", "hr@5")].paper)

    table = build_table2(collect_runs(tmp_path), paper)
    rows = md_rows(vs_paper_markdown(table))
    sports = next(r for r in rows if r[:3] == ["Sports", "GRU4Rec", "HR@5"])
    assert sports[3:6] == ["", "0.0100", ""]  # BCE: ours blank, paper, Δ blank
    lastfm = next(r for r in rows if r[:3] == ["LastFM", "SASRec", "HR@5"])
    assert lastfm[9:12] == ["0.0495", "0.0450", "+10.0%"]


# ------------------------------------------------------------------ significance


def test_paired_ttest_literal_value():
    res = paired_ttest([1, 2, 3, 4, 5], [0, 0, 0, 0, 0])  # d = 1..5: mean 3, sd sqrt(2.5)
    assert res.t == pytest.approx(4.242640687, rel=1e-8)  # 3 / (sqrt(2.5) / sqrt(5)) = 3 sqrt(2)
    assert res.p == pytest.approx(0.0132355996, rel=1e-7)  # two-sided, 4 degrees of freedom
    assert res.n == 5
    assert math.isnan(paired_ttest([1, 2], [1, 2]).p)


def test_significance_matches_formula(tmp_path):
    cce = [0.5, 0.2, 0.9, 0.4, 0.7, 0.3]
    bce = [0.1, 0.3, 0.2, 0.1, 0.5, 0.0]
    make_run(tmp_path, loss="cce", per_user={"ndcg@10": cce})
    # BCE users written in reverse order: pairing must go by user_id, not by row
    make_run(tmp_path, loss="bce", per_user={"ndcg@10": bce[::-1]}, users=USERS[::-1])
    sig = significance_table(collect_runs(tmp_path))
    row = sig[(sig.metric == "ndcg@10") & (sig.baseline == "bce")].iloc[0]
    d = np.array(cce) - np.array(bce)
    t = d.mean() / (d.std(ddof=1) / math.sqrt(len(d)))
    assert row.t == pytest.approx(t) and row.n_users == 6
    assert row.mean_proposed == pytest.approx(np.mean(cce)) and row.marker == ""  # p = 0.02 > .001
    assert set(sig["baseline"]) == {"bce"}  # no CE run
    from seqrec.report.stats import significance_markdown

    line = next(r for r in md_rows(significance_markdown(sig)) if r[2] == "NDCG@10")
    assert line[:8] == ["lastfm", "sasrec", "NDCG@10", "CCE", "BCE", "6", "1/1", f"{np.mean(cce):.4f}"]
    assert line[9] == f"{t:.3f}"


def test_seeds_averaged_per_user_before_pairing(tmp_path):
    s1, s2 = [0.4, 0.1, 0.8, 0.3, 0.6, 0.5], [0.6, 0.5, 0.6, 0.3, 0.8, 0.1]
    base = [0.1, 0.2, 0.3, 0.1, 0.2, 0.4]
    make_run(tmp_path, loss="cce", seed=1, per_user={"hr@10": s1})
    make_run(tmp_path, loss="cce", seed=2, per_user={"hr@10": s2})
    make_run(tmp_path, loss="ce", seed=1, per_user={"hr@10": base})
    sig = significance_table(collect_runs(tmp_path))
    row = sig[sig.metric == "hr@10"].iloc[0]
    d = (np.array(s1) + np.array(s2)) / 2 - np.array(base)
    assert row.n_users == 6 and (row.n_seeds_proposed, row.n_seeds_baseline) == (2, 1)
    assert row.t == pytest.approx(d.mean() / (d.std(ddof=1) / math.sqrt(6)))


def test_pairing_refused_on_different_users_or_data(tmp_path):
    a = make_run(tmp_path / "users", loss="cce")
    b = make_run(tmp_path / "users", loss="bce", users=USERS[:5] + ["zzz"])
    with pytest.raises(SeqrecError, match="different users") as err:
        significance_table(collect_runs(tmp_path / "users"))
    assert str(a) in str(err.value) and str(b) in str(err.value)

    a = make_run(tmp_path / "fp", loss="cce")
    b = make_run(tmp_path / "fp", loss="ce", fingerprint="fp-b")
    with pytest.raises(SeqrecError, match="different data") as err:
        significance_table(collect_runs(tmp_path / "fp"))
    assert str(a) in str(err.value) and str(b) in str(err.value)


def test_markers_in_md_and_tex(tmp_path):
    rng = np.random.default_rng(0)
    users = [str(i) for i in range(200)]
    base = rng.uniform(0.0, 0.5, size=200)
    per_user = {m: base for m in METRICS}
    make_run(tmp_path, loss="bce", per_user=per_user, users=users)
    make_run(tmp_path, loss="ce", per_user={m: base + 0.01 for m in METRICS}, users=users)
    better = {m: base + 0.1 + rng.normal(0, 0.01, 200) for m in METRICS}
    make_run(tmp_path, loss="cce", per_user=better, users=users)
    runs = collect_runs(tmp_path)
    sig = significance_table(runs)
    assert (sig["p"] < 1e-3).all() and (sig["marker"] == "***").all()
    table = build_table2(runs, significance=sig)
    line = md_rows(to_markdown(table))[0]
    assert line[4].startswith("**") and line[4].endswith(r"\*\*\*")
    assert r"}$^{***}$ &" in to_latex(table)


# ------------------------------------------------------------------ RQ2 curves and CLI


def test_rq2_png_written(tmp_path):
    for model in ("gru4rec", "sasrec"):
        for loss in ("bce", "cce"):
            make_run(tmp_path / "runs", model=model, loss=loss, epochs=4, epoch_seconds=1.234)
    paths = write_rq2(rq2_figures(collect_runs(tmp_path / "runs")), tmp_path / "out")
    assert [p.name for p in paths] == ["rq2_lastfm.png"]
    data = paths[0].read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 5000
    fig = rq2_figures(collect_runs(tmp_path / "runs"))["lastfm"]
    labels = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert labels == ["BCE (1.23 s/epoch)", "CCE (1.23 s/epoch)"] and len(fig.axes) == 2


def test_cli_writes_everything(tmp_path, capsys):
    three_losses(tmp_path / "runs", bce=0.02, ce=0.03, cce=0.045)
    assert main(["--runs", str(tmp_path / "runs")]) == 0
    out_dir = tmp_path / "runs" / "report"
    names = sorted(p.name for p in out_dir.iterdir())
    assert names == sorted(
        [
            "table2.md",
            "table2.csv",
            "table2.tex",
            "table2_vs_paper.md",
            "table2_vs_paper.csv",
            "significance.csv",
            "significance.md",
            "rq2_lastfm.png",
        ]
    )  # and no temp files left behind
    wide = pd.read_csv(out_dir / "table2.csv")
    assert list(wide.columns) == ["dataset", "metric", "sasrec_bce", "sasrec_ce", "sasrec_cce", "sasrec_improve_pct"]
    assert wide.loc[wide.metric == "NDCG@10", "sasrec_improve_pct"].item() == pytest.approx(50.0)
    stdout = capsys.readouterr().out
    assert "Table 2" in stdout and "table2.md" in stdout
    assert main(["--runs", str(tmp_path / "runs")]) == 0  # the report folder itself is not a run


def test_cli_empty_folder_exits_1(tmp_path, capsys):
    assert main(["--runs", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: No finished run") and "Traceback" not in err
    assert not (tmp_path / "report").exists()
    assert main(["--runs", str(tmp_path / "missing")]) == 1
    assert "does not exist" in capsys.readouterr().err


def test_atomic_write_keeps_old_file_on_failure(tmp_path):
    target = atomic_write(tmp_path / "out" / "table2.md", "old\n")
    with pytest.raises(TypeError):
        atomic_write(target, 12345)  # not str/bytes/a function: fails after the temp file was opened
    assert target.read_text() == "old\n"
    assert [p.name for p in target.parent.iterdir()] == ["table2.md"]  # no temp file left


def test_any_proposed_loss_and_baselines(tmp_path):
    # a new loss "toy" against two baselines in the order given; CE runs exist but are not compared
    for loss, v in (("bce", 0.02), ("ce", 0.05), ("cce", 0.04), ("toy", 0.048)):
        make_run(tmp_path, loss=loss, metrics={"ndcg@10": v})
    runs = collect_runs(tmp_path)
    sig = significance_table(runs, proposed="toy", baselines=("cce", "bce"))
    assert set(sig["proposed"]) == {"toy"} and list(dict.fromkeys(sig["baseline"])) == ["cce", "bce"]
    table = build_table2(runs, significance=sig, proposed="toy", baselines=("cce", "bce"))
    r = row_of(table)
    assert r.improve == pytest.approx(20.0)  # (0.048 - 0.04) / 0.04: CE is no baseline here
    assert (r.bold_toy, r.bold_cce, r.ul_cce, r.ul_bce) == (True, False, True, False)
    md = to_markdown(table)
    assert "| SASRec CCE | SASRec BCE | SASRec TOY | SASRec Improve |" in md
    line = next(row for row in md_rows(md) if row[1] == "NDCG@10")
    # every user differs by the same amount: t = inf, p = 0, so the marker of toy vs CCE shows
    assert line[2:6] == ["<u>0.0400</u>", "0.0200", r"**0.0480**\*\*\*", "20.00%"]
    assert r"\multicolumn{4}{c}{SASRec}" in to_latex(table) and "$L_{toy}$" in to_latex(table)
    with pytest.raises(ValueError, match="baseline"):
        build_table2(runs, proposed="toy", baselines=("toy",))


def test_cli_names_a_loss_without_runs(tmp_path, capsys):
    three_losses(tmp_path / "runs", bce=0.02, ce=0.03, cce=0.045)
    assert main(["--runs", str(tmp_path / "runs"), "--proposed", "toy", "--no-plots"]) == 1
    err = capsys.readouterr().err
    assert "toy" in err and "bce, ce, cce" in err and not (tmp_path / "runs" / "report").exists()


def test_runs_folder_falls_back_to_the_smoke_runs(tmp_path, monkeypatch):
    from seqrec.report.runs import resolve_runs

    monkeypatch.chdir(tmp_path)
    with pytest.raises(SeqrecError, match="make table2-smoke"):
        resolve_runs(None)
    make_run(tmp_path / "outputs" / "table2-smoke")
    assert str(resolve_runs(None)) == "outputs/table2-smoke"
    make_run(tmp_path / "outputs" / "table2")
    assert str(resolve_runs(None)) == "outputs/table2"
    assert str(resolve_runs("elsewhere")) == "elsewhere"  # given: used as it is


def test_every_run_name_seqrec_writes_is_a_loss_column(tmp_path):
    # variant names (bce-last, bce-k256-popularity) are no Python identifiers: rows are read by name
    for loss, v in (("bce-last", 0.02), ("bce-k256-popularity", 0.03), ("cce", 0.045)):
        make_run(tmp_path / "runs", loss=loss, metrics={"ndcg@10": v})
    assert main(["--runs", str(tmp_path / "runs"), "--baselines", "bce-last,bce-k256-popularity", "--no-plots"]) == 0
    md = (tmp_path / "runs" / "report" / "table2.md").read_text()
    line = next(row for row in md_rows(md) if row[1] == "NDCG@10")
    assert line[2:6] == ["0.0200", "<u>0.0300</u>", r"**0.0450**\*\*\*", "50.00%"]


def test_a_comparison_with_the_paper_of_off_protocol_runs_says_so(tmp_path, caplog):
    # a smoke test on a user subset, 2 epochs: its "Δ −100%" rows are no reproduction
    three_losses(tmp_path / "runs", bce=0.02, ce=0.03, cce=0.045)
    smoke = tmp_path / "runs" / "lastfm-sasrec-cce-42" / "config.yaml"
    smoke.write_text("seed: 42\ndataset:\n  max_users: 200\ntrainer:\n  max_epochs: 2\n")
    caplog.set_level("WARNING")
    assert main(["--runs", str(tmp_path / "runs"), "--no-plots"]) == 0
    note = (tmp_path / "runs" / "report" / "table2_vs_paper.md").read_text().splitlines()[0]
    assert note.startswith("> **Warning:** 1 run(s) depart from the paper's protocol")
    assert "dataset.max_users=200 (paper: None)" in note and "trainer.max_epochs=2 (paper: 150)" in note
    assert "depart from the paper's protocol" in caplog.text
    # protocol runs: no note
    smoke.write_text("seed: 42\n")
    caplog.clear()
    assert main(["--runs", str(tmp_path / "runs"), "--no-plots"]) == 0
    assert "Warning" not in (tmp_path / "runs" / "report" / "table2_vs_paper.md").read_text()
    assert "protocol" not in caplog.text


def test_the_authors_validation_curves_are_the_table2_runs():
    # every curve ends exactly 10 epochs after its best validation NDCG@20: the code's patience-10
    # rule, so each is the run behind its Table 2 cell
    authors = load_authors_valid()
    paper_cells = set(map(tuple, load_paper()[["dataset", "model", "loss"]].drop_duplicates().to_numpy()))
    assert set(map(tuple, authors[["dataset", "model", "loss"]].to_numpy())) == paper_cells
    assert len(authors) == 45 and (authors["last_epoch"] - authors["best_epoch"] == 10).all()
    sports_ce = authors.set_index(["dataset", "model", "loss"]).loc[("sports", "gru4rec", "ce")]
    assert (sports_ce.best_epoch, sports_ce.valid_ndcg20) == (12, pytest.approx(0.014318, abs=1e-6))


def test_authors_valid_block_sets_seeds_beside_the_papers_run(tmp_path):
    make_run(tmp_path, dataset="lastfm", model="sasrec", loss="ce", seed=42, metrics={"ndcg@20": 0.0190})
    make_run(tmp_path, dataset="lastfm", model="sasrec", loss="ce", seed=43, metrics={"ndcg@20": 0.0210})
    authors = pd.DataFrame(
        [
            ["lastfm", "sasrec", "ce", 29, 39, 0.0200, 0.0126, 0.03],
            ["lastfm", "sasrec", "cce", 62, 72, 0.0529, 0.0448, 0.08],
        ],
        columns=["dataset", "model", "loss", "best_epoch", "last_epoch", "valid_ndcg20", "valid_ndcg10", "valid_hr10"],
    )
    lines = authors_valid_block(collect_runs(tmp_path), authors).splitlines()
    # mean 0.0200, std 0.0014 over the two seeds; ratio 0.0200 / 0.0200; the CCE cell has no run
    assert lines[2] == "| LastFM | SASRec | CE | 0.0200 | 29 / 39 | 0.0200 ± 0.0014 | 2 | 2, 2 | 1.00 |"
    assert lines[3] == "| LastFM | SASRec | CCE | 0.0529 | 62 / 72 | not run |  |  |  |"
