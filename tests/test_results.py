"""Result folders (seqrec.report.archive) and the generated blocks of the pages (seqrec.report.page).

The committed ``results/table2`` is checked here too: every result folder's ranks give its
``metrics.json`` exactly, and every generated block of ``docs/results.md`` and ``README.md`` equals
what the report computes from ``results/`` (so no number on those pages is typed by hand).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from omegaconf import OmegaConf

from seqrec.errors import SeqrecError
from seqrec.evaluation import METRICS
from seqrec.report.__main__ import main as report_main
from seqrec.report.archive import RANKS_FILE, RESULT_FILE, check_result_dir, export_run
from seqrec.report.export import main as export_main
from seqrec.report.leaderboard import collect_beyond
from seqrec.report.page import page_blocks, render_blocks, stale_blocks, update_page
from seqrec.report.paper import load_paper
from seqrec.report.runs import collect_runs, read_per_user

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "results" / "table2"
BEYOND = ROOT / "results" / "leaderboard"
MISS = 2147483647  # seqrec.evaluation.MASKED_RANK: a masked target, a miss at every k


def hand_metrics(ranks) -> dict[str, list[float]]:
    """HR@k and NDCG@k written out: a hit when rank <= k, gain 1 / log2(rank + 1)."""
    return {
        **{f"hr@{k}": [float(r <= k) for r in ranks] for k in (5, 10, 20)},
        **{f"ndcg@{k}": [1 / math.log2(r + 1) if r <= k else 0.0 for r in ranks] for k in (5, 10, 20)},
    }


def make_run(
    root: Path,
    loss: str,
    ranks: list[int],
    seed: int = 42,
    dataset: str = "lastfm",
    name: str | None = None,
    valid: list[int] | None = None,
    config: str = "dataset:\n  max_len: 50\n",
    model: str = "sasrec",
) -> Path:
    """A finished run folder (in ``root / name``) whose per-user and mean test metrics follow from
    ``ranks``, its validation metrics from ``valid`` (default: the same ranks)."""
    run = root / (name or f"{dataset}-{loss}-{seed}")
    run.mkdir(parents=True)
    users = [str(10 + i) for i in range(len(ranks))]
    per_user = {"user_id": users, "rank": ranks, **hand_metrics(ranks)}
    pd.DataFrame(per_user).to_csv(run / "per_user_test.csv", index=False)
    test = {f"test/{m}": float(np.mean(per_user[m])) for m in METRICS}
    valid_metrics = hand_metrics(ranks if valid is None else valid)
    (run / "metrics.json").write_text(
        json.dumps(
            {
                "dataset": dataset,
                "model": model,
                "loss": loss,
                "seed": seed,
                "data_fingerprint": "fp",
                **test,
                **{f"valid/{m}": float(np.mean(valid_metrics[m])) for m in METRICS},
            }
        )
    )
    pd.DataFrame(
        {
            "epoch": [1, 2],
            "train_loss": [2.0, 1.0],
            "test/ndcg@10": [0.1, 0.2],
            "epoch_seconds": [1.0, 1.0],
            "train_seconds_cum": [1.0, 2.0],
        }
    ).to_csv(run / "epochs.csv", index=False)
    (run / "config.yaml").write_text(f"{config}seed: {seed}\noutput_dir: {run}\n")
    return run


def test_result_folder_gives_the_runs_numbers(tmp_path):
    ranks = [1, 3, 12, MISS]
    run = make_run(tmp_path / "runs", "cce", ranks)
    dest, changed = export_run(run, tmp_path / "results")
    assert changed and dest == tmp_path / "results" / "lastfm" / "sasrec-cce" / "seed42"
    assert sorted(p.name for p in dest.iterdir()) == sorted(
        ["config.yaml", "metrics.json", "epochs.csv", RANKS_FILE, RESULT_FILE]
    )
    per_user = read_per_user(dest)
    # by hand: NDCG@10 = (1 + 1/log2(4) + 0 + 0) / 4, HR@20 = 3/4
    assert per_user["ndcg@10"].mean() == pytest.approx((1 + 0.5) / 4, abs=1e-15)
    assert per_user["hr@20"].mean() == 0.75
    assert per_user.index.tolist() == ["10", "11", "12", "13"]
    original = read_per_user(run)
    pd.testing.assert_frame_equal(per_user, original[per_user.columns])
    # the folder is found by the report, and its config names no path outside the working directory
    assert collect_runs(tmp_path / "results")["test/ndcg@10"].tolist() == [0.375]
    assert str(tmp_path) not in (dest / "config.yaml").read_text()


def test_user_ids_that_look_missing_survive_export_and_report(tmp_path):
    # raw ids are strings: "NaN", "null", "NA" and "None" are users (pandas reads them as missing,
    # and an export once wrote them as empty ids, after which the report saw one user twice)
    ids = ["NaN", "null", "NA", "None"]
    for loss, ranks in (("bce", [2, 30, 7, MISS]), ("ce", [4, 4, 11, 1]), ("cce", [1, 2, 3, 25])):
        run = make_run(tmp_path / "runs", loss, ranks)
        per_user = pd.read_csv(run / "per_user_test.csv")
        per_user["user_id"] = ids
        per_user.to_csv(run / "per_user_test.csv", index=False)
    assert export_main([str(tmp_path / "runs"), "--into", str(tmp_path / "results")]) == 0
    for src in ("runs", "results"):
        runs = collect_runs(tmp_path / src)
        assert [read_per_user(d).index.tolist() for d in runs["run_dir"]] == [ids, ids, ids]
    assert report_main(["--runs", str(tmp_path / "results"), "--out", str(tmp_path / "rep"), "--no-plots"]) == 0


def test_report_from_results_equals_report_from_runs(tmp_path):
    for loss, ranks in (("bce", [2, 30, 7, 1, MISS]), ("ce", [4, 4, 11, 1, 60]), ("cce", [1, 2, 3, 25, 9])):
        make_run(tmp_path / "runs", loss, ranks)
    assert export_main([str(tmp_path / "runs"), "--into", str(tmp_path / "results")]) == 0
    for src in ("runs", "results"):
        assert report_main(["--runs", str(tmp_path / src), "--out", str(tmp_path / f"rep-{src}"), "--no-plots"]) == 0
    for name in ("table2.md", "table2.csv", "table2_vs_paper.csv", "significance.csv"):
        assert (tmp_path / "rep-runs" / name).read_text() == (tmp_path / "rep-results" / name).read_text(), name


def test_export_is_byte_stable_and_refuses_a_different_result(tmp_path):
    run = make_run(tmp_path / "runs", "cce", [1, 5, 9])
    dest, _ = export_run(run, tmp_path / "results")
    before = {p.name: p.read_bytes() for p in dest.iterdir()}
    assert export_run(run, tmp_path / "results") == (dest, False)
    assert {p.name: p.read_bytes() for p in dest.iterdir()} == before
    other = make_run(tmp_path / "retrained", "cce", [2, 5, 9])
    with pytest.raises(SeqrecError, match="already holds a different result"):
        export_run(other, tmp_path / "results")
    assert export_run(other, tmp_path / "results", overwrite=True) == (dest, True)
    assert pd.read_csv(dest / RANKS_FILE)["rank"].tolist() == [2, 5, 9]


def test_older_or_other_format_is_refused_by_name(tmp_path):
    dest, _ = export_run(make_run(tmp_path / "runs", "cce", [1, 2]), tmp_path / "results")
    meta = json.loads((dest / RESULT_FILE).read_text())
    (dest / RESULT_FILE).write_text(json.dumps({**meta, "format": 0}))
    with pytest.raises(SeqrecError, match=r"format 0; this seqrec reads format 1") as err:
        collect_runs(tmp_path / "results")
    assert str(dest) in str(err.value)
    (dest / RESULT_FILE).unlink()  # the unversioned layout of before result.json
    with pytest.raises(SeqrecError, match="older format") as err:
        collect_runs(tmp_path / "results")
    assert str(dest) in str(err.value)


def test_an_edited_result_file_is_refused(tmp_path):
    dest, _ = export_run(make_run(tmp_path / "runs", "cce", [1, 2]), tmp_path / "results")
    metrics = json.loads((dest / "metrics.json").read_text())
    (dest / "metrics.json").write_text(json.dumps({**metrics, "test/ndcg@10": 0.9}))
    with pytest.raises(SeqrecError, match="edited or cut short"):
        check_result_dir(dest)


def test_export_of_nothing_is_one_paragraph(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    assert export_main([str(tmp_path / "empty"), "--into", str(tmp_path / "results")]) == 1
    assert "No finished run" in capsys.readouterr().err
    assert not (tmp_path / "results").exists()


def test_export_with_one_broken_run_writes_nothing(tmp_path, capsys):
    # all or nothing: it once wrote two of three result folders and then stopped on the third
    for loss, ranks in (("bce", [2, 30]), ("ce", [4, 4]), ("cce", [1, 2])):
        make_run(tmp_path / "runs", loss, ranks)
    (tmp_path / "runs" / "lastfm-cce-42" / "per_user_test.csv").unlink()
    assert export_main([str(tmp_path / "runs"), "--into", str(tmp_path / "results")]) == 1
    assert "lastfm-cce-42" in capsys.readouterr().err
    assert not (tmp_path / "results").exists()


@pytest.mark.parametrize("overwrite", [False, True])
def test_two_runs_of_one_result_folder_are_refused_before_anything_is_written(tmp_path, capsys, overwrite):
    # two runs of lastfm/sasrec-cce/seed42 in one sweep folder: one would silently replace the other
    make_run(tmp_path / "runs", "cce", [1, 2], name="first")
    make_run(tmp_path / "runs", "cce", [3, 4], name="second")
    make_run(tmp_path / "runs", "bce", [5, 6])
    args = [str(tmp_path / "runs"), "--into", str(tmp_path / "results")] + (["--overwrite"] if overwrite else [])
    assert export_main(args) == 1
    err = capsys.readouterr().err
    assert "would both be exported to" in err and "first" in err and "second" in err
    assert not (tmp_path / "results").exists()
    # with their paths kept they are two results
    assert export_main(args + ["--keep-layout"]) == 0
    exported = sorted(p.parent.name for p in (tmp_path / "results").rglob(RESULT_FILE))
    assert exported == ["first", "lastfm-bce-42", "second"]


def test_update_page_rewrites_only_the_marked_blocks(tmp_path):
    page = tmp_path / "page.md"
    page.write_text("intro\n<!-- generated:summary begin (rebuilt) -->\nold\n<!-- generated:summary end -->\noutro\n")
    blocks = {"summary": "new 1\nnew 2\n", "table2": "t\n"}
    assert stale_blocks(page, blocks) == ["summary"]
    update_page(page, blocks)
    assert page.read_text() == (
        "intro\n<!-- generated:summary begin (rebuilt) -->\nnew 1\nnew 2\n<!-- generated:summary end -->\noutro\n"
    )
    assert stale_blocks(page, blocks) == []
    page.write_text("<!-- generated:nosuch begin -->\nx\n<!-- generated:nosuch end -->\n")
    with pytest.raises(SeqrecError, match="unknown block"):
        update_page(page, blocks)
    # an end marker lost in an edit: the other block must not be rewritten as if nothing were wrong
    text = (
        "<!-- generated:summary begin -->\nold\n<!-- generated:summary end -->\n\n<!-- generated:table2 begin -->\nt\n"
    )
    page.write_text(text)
    with pytest.raises(SeqrecError, match=r"line 5: the marker '<!-- generated:table2 begin' has no partner"):
        update_page(page, blocks)
    assert page.read_text() == text


def test_table2_block_marks_cells_outside_noise(tmp_path):
    # 4 users with NDCG@10 (1, 0.5, 0, 0): mean 0.375, per-user sd 0.4787, SE = sd / 2 = 0.2394
    make_run(tmp_path / "runs", "cce", [1, 3, 12, MISS])
    blocks = render_blocks(collect_runs(tmp_path / "runs"), load_paper())
    row = next(r for r in blocks["table2"].splitlines() if r.startswith("| LastFM | SASRec | CCE"))
    cells = [c.strip() for c in row.strip("|").split("|")]
    sd = float(np.std([1, 0.5, 0, 0], ddof=1))
    assert cells[6:] == ["0.3750", "0.0354", f"{0.375 - 0.0354:+.4f}", f"{(0.375 - 0.0354) / (sd / 2):+.1f}", "within"]


@pytest.mark.skipif(not RESULTS.is_dir(), reason="no results/table2 in this checkout")
def test_committed_results_rebuild_every_number():
    runs = collect_runs(RESULTS)  # also checks every folder's format and checksums
    for _, run in runs.iterrows():
        per_user = read_per_user(run["run_dir"])
        for m in METRICS:
            assert per_user[m].mean() == pytest.approx(run[f"test/{m}"], abs=1e-12), (run["run_dir"], m)
    blocks = render_blocks(runs, load_paper(), collect_beyond(BEYOND))
    for page in (ROOT / "docs" / "results.md", ROOT / "README.md"):
        assert page_blocks(page.read_text()), f"{page} marks no generated block"
        stale = stale_blocks(page, blocks)
        assert not stale, f"{page}: the block(s) {stale} differ from results/; rebuild them with `make pages`"


def test_an_outside_verdict_on_one_seed_says_so(tmp_path):
    # 20 users, half at rank 1: NDCG@10 0.5, SE = 0.513 / sqrt(20) = 0.115: z ≈ +4 against the
    # paper's 0.0354 (CCE) and 0.0223 (BCE). One seed's noise has no seed spread in it; two
    # identical seeds have spread 0, so their verdict is a plain "outside".
    ranks = [1] * 10 + [MISS] * 10
    make_run(tmp_path / "runs", "cce", ranks)
    for seed in (42, 43):
        make_run(tmp_path / "runs", "bce", ranks, seed=seed)
    rows = {
        r.split("|")[3].strip(): r
        for r in render_blocks(collect_runs(tmp_path / "runs"), load_paper())["table2"].splitlines()
        if r.startswith("| LastFM | SASRec")
    }
    assert rows["CCE"].rstrip(" |").endswith("| +4.1 | outside, 1 seed")
    assert rows["BCE"].rstrip(" |").endswith("| +4.2 | outside")


STUDY = ROOT / "results" / "studies" / "history_zero.csv"


@pytest.mark.skipif(not STUDY.is_file(), reason="no results/studies/history_zero.csv in this checkout")
def test_the_history_scored_zero_study_says_what_its_csv_holds():
    # docs/protocol.md and docs/results.md quote this study; its numbers must be the file's
    study = pd.read_csv(STUDY)
    assert set(study.loss) == {"bce", "ce", "cce"} and set(study.model) == {"gru4rec", "sasrec", "s3rec"}
    for m in ("ndcg@10", "hr@10"):
        assert (study[f"{m}_removed"] == study[f"{m}_zero"]).all(), m
    runs, share, best = len(study), study.changed.sum() / study.users.sum(), int(study.best_changed_rank.min())
    assert best > 20  # no change reaches a reported cut-off
    protocol = " ".join((ROOT / "docs" / "protocol.md").read_text().split())
    assert f"the {runs} Table 2 runs finished by 2026-12-06 both ways changes {share:.0%} of users' ranks" in protocol
    assert f"never one better than rank {best}" in protocol
    results = " ".join((ROOT / "docs" / "results.md").read_text().split())
    assert f"none of the {runs} Table 2 runs finished by 2026-12-06 changes a rank better than {best}" in results


PATIENCE = ROOT / "results" / "studies" / "toys-gru4rec-bce-patience40" / "seed42"


@pytest.mark.skipif(not PATIENCE.is_dir(), reason="no patience study in this checkout")
def test_the_early_stopping_study_says_what_its_runs_hold():
    # results.md quotes the Toys GRU4Rec + BCE seeds and their patience-40 rerun: the files' numbers
    text = " ".join((ROOT / "docs" / "results.md").read_text().split())
    seeds = [
        json.loads((RESULTS / "toys" / "gru4rec-bce" / f"seed{s}" / "metrics.json").read_text()) for s in (42, 43, 44)
    ]
    runs = ", ".join(str(m["epochs_run"]) for m in seeds[:2]) + f" and {seeds[2]['epochs_run']} epochs"
    scores = ", ".join(f"{m['test/ndcg@10']:.4f}" for m in seeds[:2]) + f" and {seeds[2]['test/ndcg@10']:.4f}"
    assert f"seeds stopped after {runs} with test NDCG@10 {scores}" in text
    study = json.loads((PATIENCE / "metrics.json").read_text())
    config = (PATIENCE / "config.yaml").read_text()
    assert "patience: 40" in config and "seed: 42" in config
    assert study["test/ndcg@10"] > seeds[0]["test/ndcg@10"]
    assert (
        f"best epoch {study['best_epoch']}, and reaches test NDCG@10 {study['test/ndcg@10']:.4f} "
        f"(HR@10 {study['test/hr@10']:.4f})" in text
    )


@pytest.mark.skipif(not (ROOT / "results" / "studies" / "sports-gru4rec-ce-patience40").is_dir(), reason="no study")
def test_the_sports_ce_patience_study_says_what_its_run_holds():
    run = ROOT / "results" / "studies" / "sports-gru4rec-ce-patience40" / "seed42"
    study, epochs = json.loads((run / "metrics.json").read_text()), pd.read_csv(run / "epochs.csv")
    table2 = json.loads((RESULTS / "sports" / "gru4rec-ce" / "seed42" / "metrics.json").read_text())
    assert study["best_epoch"] == table2["best_epoch"] and study["test/ndcg@10"] == table2["test/ndcg@10"]
    text = " ".join((ROOT / "docs" / "results.md").read_text().split())
    valid = epochs["valid/ndcg@20"]
    assert (
        f"keeps its best epoch {study['best_epoch']} and its test NDCG@10 {study['test/ndcg@10']:.4f} through "
        f"{study['epochs_run']} epochs, validation down from {valid.max():.4f} to {valid.iloc[-1]:.4f}" in text
    )


@pytest.mark.skipif(not (ROOT / "results" / "studies" / "beauty-sasrec-bce-patience40").is_dir(), reason="no study")
def test_the_beauty_bce_patience_study_says_what_its_runs_hold():
    study = json.loads((ROOT / "results/studies/beauty-sasrec-bce-patience40/seed42/metrics.json").read_text())
    table2 = json.loads((RESULTS / "beauty" / "sasrec-bce" / "seed42" / "metrics.json").read_text())
    text = " ".join((ROOT / "docs" / "results.md").read_text().split())
    assert (
        f"Seed 42 stopped after {table2['epochs_run']} epochs (best {table2['best_epoch']}) at test NDCG@10 "
        f"{table2['test/ndcg@10']:.4f}; again with `trainer.patience=40` its best epoch is {study['best_epoch']} "
        f"and it reaches {study['test/ndcg@10']:.4f} (HR@10 {study['test/hr@10']:.4f})" in text
    )


@pytest.mark.skipif(not (ROOT / "results" / "table2").is_dir(), reason="no results/ in this checkout")
def test_every_option_a_committed_result_lacks_has_a_known_old_value():
    # a re-run into an old folder, and the seeds of a cell, compare an option the old config lacks
    # with its ADDED_OPTIONS value: an option added without one would refuse those runs
    from conftest import compose_config

    from seqrec.runs.configs import ADDED_OPTIONS, flatten

    legacy = {"eval.rank_repeats", "trainer.rank_repeats"}  # read from metrics.json (with_legacy_options)
    composed: dict[tuple, dict] = {}
    unknown = set()
    for path in sorted((ROOT / "results").rglob("config.yaml")):
        if path.parent.name == "pretrained" or not (path.parent / "metrics.json").is_file():
            continue
        saved = flatten(yaml.safe_load(path.read_text()))
        metrics = json.loads((path.parent / "metrics.json").read_text())
        model = str(saved.get("model._target_", "")).rsplit(".", 1)[-1].lower()
        key = (model, str(metrics["loss"]).split("-")[0], str(metrics["dataset"]))
        if key not in composed:
            composed[key] = flatten(
                OmegaConf.to_container(compose_config([f"model={key[0]}", f"loss={key[1]}", f"dataset={key[2]}"]))
            )
        for name, value in composed[key].items():
            if name not in saved and value is not None and name not in ADDED_OPTIONS and name not in legacy:
                unknown.add(f"{name} (missing in {path.parent.relative_to(ROOT)})")
    assert not unknown, "give these options their old value in ADDED_OPTIONS: " + "; ".join(sorted(unknown)[:5])


@pytest.mark.skipif(not (ROOT / "results/studies/lastfm-bsarec-padding-random").is_dir(), reason="no study")
def test_the_bsarec_padding_row_statement_matches_its_study():
    study = json.loads((ROOT / "results/studies/lastfm-bsarec-padding-random/seed42/metrics.json").read_text())
    zero = json.loads((ROOT / "results/leaderboard/lastfm/bsarec-ce-prefixes-len50/seed42/metrics.json").read_text())
    page = " ".join((ROOT / "docs" / "results.md").read_text().split())
    random_row = f"NDCG@10 {study['test/ndcg@10']:.4f} and HR@10 {study['test/hr@10']:.4f}"
    zero_row = f"against {zero['test/ndcg@10']:.4f} and {zero['test/hr@10']:.4f} with the zero row"
    assert random_row in page and zero_row in page
    assert (
        yaml.safe_load((ROOT / "results/studies/lastfm-bsarec-padding-random/seed42/config.yaml").read_text())["model"][
            "random_padding_row"
        ]
        is True
    )


# The GRU4Rec padding-row studies (docs/results.md, "GRU4Rec's padding row"): each line of the page's
# table is rebuilt here from the result folders it names, so no number in it is typed by hand.
PADDING_VARIANTS = [  # (label, folder under results/: {d} dataset, {l} loss, (random row, class, buckets))
    ("seqrec's GRU4Rec (zero row, length buckets): Table 2", "table2/{d}/gru4rec-{l}", (False, False, True)),
    ("the paper's padding row, fixed", "studies/{d}-gru4rec-{l}-padding-random", (True, False, True)),
    (
        "the paper's padding row, trained as a softmax class",
        "studies/{d}-gru4rec-{l}-padding-class",
        (True, True, True),
    ),
    ("the paper's padding row and its random batches", "studies/{d}-gru4rec-{l}-reference", (True, True, False)),
]
DATASET_TITLES = {"sports": "Sports", "toys": "Toys", "lastfm": "LastFM", "beauty": "Beauty", "yelp": "Yelp"}


def padding_study_lines(root=ROOT / "results") -> list[str]:
    """The table's rows: per (dataset, loss) with a study, each variant that has result folders."""
    from seqrec.report.paper import load_authors_valid, load_paper, table2_order

    paper = load_paper().set_index(["dataset", "model", "loss", "metric"])["value"]
    authors = load_authors_valid().set_index(["dataset", "model", "loss"])

    def cell(values):
        return f"{values.mean():.4f}" + (f" ± {values.std(ddof=1):.4f}" if len(values) > 1 else "")

    lines = []
    suffixes = ("-padding-random", "-padding-class", "-reference")
    studies = [p.name for p in (root / "studies").glob("*-gru4rec-*") if p.name.endswith(suffixes)]
    cells = sorted(
        {(name.split("-")[0], name.split("-")[2]) for name in studies},
        key=lambda c: table2_order((c[0], "gru4rec", c[1])),
    )
    for d, loss in cells:
        for label, pattern, options in PADDING_VARIANTS:
            folder = root / pattern.format(d=d, l=loss)
            runs = [json.loads(p.read_text()) for p in sorted(folder.glob("seed*/metrics.json"))]
            if not runs:
                continue
            for config in folder.glob("seed*/config.yaml"):  # the label is what the runs ran with
                saved = yaml.safe_load(config.read_text())
                model, trainer = saved["model"], saved["trainer"]
                ran = (model.get("random_padding_row", False), model.get("padding_class", False))
                assert (*ran, trainer["bucket_by_length"]) == options, config
            frame = pd.DataFrame(runs)
            metrics = [cell(frame[m]) for m in ("valid/ndcg@20", "test/ndcg@10", "test/hr@10")]
            lines.append(
                f"| {DATASET_TITLES[d]} | {loss.upper()} | {label} | {len(runs)} | " + " | ".join(metrics) + " |"
            )
        ref = authors.loc[(d, "gru4rec", loss)]
        test = [paper[(d, "gru4rec", loss, m)] for m in ("ndcg@10", "hr@10")]
        lines.append(
            f"| {DATASET_TITLES[d]} | {loss.upper()} | the paper's run | 1 | {ref.valid_ndcg20:.4f} | "
            f"{test[0]:.4f} | {test[1]:.4f} |"
        )
    return lines


@pytest.mark.skipif(not (ROOT / "results" / "studies").is_dir(), reason="no studies in this checkout")
def test_the_padding_row_table_is_what_its_result_folders_hold():
    page = (ROOT / "docs" / "results.md").read_text().splitlines()
    lines = padding_study_lines()
    assert len(lines) >= 4
    missing = [line for line in lines if line not in page]
    assert not missing, "rebuild the table in docs/results.md from padding_study_lines(): " + missing[0]


@pytest.mark.skipif(not (ROOT / "results/leaderboard/lastfm/bsarec-ce-prefixes-len50").is_dir(), reason="no runs")
def test_the_bsarec_lastfm_reproduction_statement_uses_table2s_noise_rule():
    from seqrec.report.noise import cell_noise
    from seqrec.report.runs import collect_runs

    cell = cell_noise(collect_runs(ROOT / "results/leaderboard/lastfm/bsarec-ce-prefixes-len50")).iloc[0]
    page = " ".join((ROOT / "docs" / "results.md").read_text().split())
    for metric, published in (("ndcg@10", 0.0435), ("hr@10", 0.0807)):
        z = (cell[metric] - published) / cell[f"{metric}_noise"]
        assert abs(z) <= 2  # within noise, as the page says
        stated = f"{cell[metric]:.4f} ± {cell[f'{metric}_std']:.4f} against {published} (z {z:+.1f}".replace("+", "")
        assert stated.replace("-", "−") in page, stated


@pytest.mark.skipif(not (ROOT / "results/studies/sports-gru4rec-cce-reference").is_dir(), reason="no study")
def test_the_batching_row_of_protocol_md_is_its_studies():
    def ndcg(name):
        path = ROOT / "results/studies" / name / "seed42" / "metrics.json"
        return f"{json.loads(path.read_text())['test/ndcg@10']:.4f}"

    page = " ".join((ROOT / "docs" / "protocol.md").read_text().split())
    buckets, random_batches = ndcg("sports-gru4rec-cce-padding-class"), ndcg("sports-gru4rec-cce-reference")
    assert f"test NDCG@10 {buckets} with length buckets, {random_batches} with random batches" in page


@pytest.mark.skipif(not (ROOT / "results/studies/sports-gru4rec-ce-padding-class").is_dir(), reason="no study")
def test_the_sports_ce_padding_z_values_are_the_studies():
    from seqrec.report.noise import cell_noise
    from seqrec.report.runs import collect_runs

    def z(name):
        cell = cell_noise(collect_runs(ROOT / "results/studies" / name)).iloc[0]
        return f"{(cell['ndcg@10'] - 0.0085) / cell['ndcg@10_noise']:+.1f}"  # the paper's Sports GRU4Rec + CE

    page = " ".join((ROOT / "docs" / "results.md").read_text().split())
    fixed, trained = z("sports-gru4rec-ce-padding-random"), z("sports-gru4rec-ce-padding-class")
    assert f"(z {fixed} with the fixed row, one seed; {trained} with the trained one, two seeds" in page
