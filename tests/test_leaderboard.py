"""The leaderboard (seqrec.report.leaderboard): seqrec's configuration chosen on validation only, at
max_len 50 and over every max_len, beside the best published number; and the result folders of
configurations beyond Table 2 that it reads (export --keep-layout)."""

from __future__ import annotations

import json
import math

import pytest
from test_results import MISS, hand_metrics, make_run

from seqrec.errors import SeqrecError
from seqrec.report.__main__ import main as report_main
from seqrec.report.archive import export_runs
from seqrec.report.leaderboard import (
    backbones_block,
    collect_beyond,
    comparable_runs,
    configurations,
    leaderboard_block,
    load_published,
)
from seqrec.report.paper import load_paper
from seqrec.report.runs import collect_runs


def ndcg10(ranks) -> float:
    return sum(hand_metrics(ranks)["ndcg@10"]) / len(ranks)


def row(block: str, dataset: str) -> list[str]:
    (line,) = [x for x in block.splitlines() if x.startswith(f"| {dataset} ")]
    return [c.strip() for c in line.strip("|").split("|")]


def config(max_len: int, rank_repeats: bool = False, samples: str = "sequences") -> str:
    return f"dataset:\n  max_len: {max_len}\ntrainer:\n  samples: {samples}\neval:\n  rank_repeats: {rank_repeats}\n"


def beyond_run(root, name, seed, ranks, valid, max_len, dataset="beauty", **kw):
    return make_run(root, "cce", ranks, seed, dataset, f"{dataset}/{name}/seed{seed}", valid, config(max_len), **kw)


def test_the_choice_is_made_on_validation_at_max_len_50_and_over_every_max_len(tmp_path):
    t2, beyond = tmp_path / "table2", tmp_path / "beyond"
    # Table 2: SASRec has the better test NDCG@10, GRU4Rec the better validation: GRU4Rec is chosen
    make_run(t2, "cce", [1, MISS, MISS, MISS], dataset="beauty", valid=[5, MISS, MISS, MISS], config=config(50))
    make_run(t2, "cce", [2, MISS, MISS, MISS], dataset="beauty", valid=[1, MISS, MISS, MISS], config=config(50),
             model="gru4rec", name="gru")  # fmt: skip
    # beyond: SASRec + CCE at max_len 200, three seeds, the best validation of all
    tests = ([1, 1, MISS, MISS], [1, 3, MISS, MISS], [1, MISS, MISS, MISS])
    for seed, ranks in zip((42, 43, 44), tests):
        beyond_run(beyond, "sasrec-cce-sequences-len200", seed, ranks, [1, 1, MISS, MISS], 200)
    # a worse configuration at max_len 50 beyond Table 2 competes in the max_len 50 column too
    beyond_run(beyond, "sasrec-cce-sequences-len50", 42, [1, 1, 1, 1], [MISS, MISS, MISS, 30], 50)
    make_run(t2, "cce", [MISS, MISS, 20, 30], dataset="toys", config=config(50))  # below the published .0657

    configs = configurations(comparable_runs(collect_runs(t2), collect_beyond(beyond)))
    block = leaderboard_block(configs, load_published(), load_paper())

    beauty = row(block, "Beauty")
    assert beauty[1] == "0.0614 (0.1041), WEARec (AAAI 2026)"
    assert beauty[2] == "0.0619 (S3-Rec + CCE)"  # the paper's best CCE cell on Beauty
    gru = ndcg10([2, MISS, MISS, MISS])  # its test number, not SASRec's higher one
    assert beauty[3] == f"{gru:.4f} (0.2500), GRU4Rec + CCE, 1 seed"
    values = [ndcg10(r) for r in tests]
    mean, std = sum(values) / 3, math.sqrt(sum((v - sum(values) / 3) ** 2 for v in values) / 2)
    assert beauty[4] == f"{mean:.4f} ± {std:.4f} (0.4167), SASRec + CCE, max_len 200, 3 seeds"
    assert beauty[5] == f"max_len 50: above on 1 seed ({gru - 0.0614:+.4f}); chosen: above ({mean - 0.0614:+.4f})"
    toys = row(block, "Toys")
    assert toys[3] == f"{ndcg10([MISS, MISS, 20, 30]):.4f} (0.0000), SASRec + CCE, 1 seed"
    assert toys[5] == "max_len 50: below (-0.0657); chosen: below (-0.0657)"
    assert row(block, "Yelp")[3:] == ["not run", "not run", "max_len 50: not run; chosen: not run"]


def test_configurations_that_cannot_be_compared_are_refused(tmp_path):
    t2 = tmp_path / "table2"
    make_run(t2, "cce", [1, 2], config=config(50))
    ranked = tmp_path / "ranked"
    beyond_run(ranked, "sasrec-cce-len200", 42, [1, 2], [1, 2], 200, dataset="lastfm")
    (ranked / "lastfm/sasrec-cce-len200/seed42/config.yaml").write_text(config(200, rank_repeats=True))
    with pytest.raises(SeqrecError, match="rank lastfm's test users differently.*eval.rank_repeats=false"):
        comparable_runs(collect_runs(t2), collect_beyond(ranked))
    # where no test target repeats a history item both rules give the same numbers: accepted
    for metrics in [*t2.rglob("metrics.json"), *ranked.rglob("metrics.json")]:
        metrics.write_text(json.dumps({**json.loads(metrics.read_text()), "test/repeat_share": 0.0}))
    assert len(comparable_runs(collect_runs(t2), collect_beyond(ranked))) == 2

    mixed = tmp_path / "mixed"
    beyond_run(mixed, "sasrec-cce-long", 42, [1, 2], [1, 2], 200, dataset="lastfm")
    beyond_run(mixed, "sasrec-cce-long", 43, [1, 2], [1, 2], 400, dataset="lastfm")
    with pytest.raises(SeqrecError, match=r"differ in more than the seed \(dataset.max_len: 200 vs 400\)"):
        collect_beyond(mixed)

    flat = tmp_path / "flat"
    make_run(flat, "cce", [1, 2], name="lastfm-run")  # not <dataset>/<configuration>/seed<seed>
    with pytest.raises(SeqrecError, match="not laid out as <dataset>/<configuration>/seed<seed>"):
        collect_beyond(flat)


def test_export_keeps_the_layout_of_configurations_beyond_table2(tmp_path):
    runs = tmp_path / "outputs" / "leaderboard"
    for max_len in (50, 200):
        beyond_run(runs, f"sasrec-cce-sequences-len{max_len}", 42, [1, 2], [1, 2], max_len, dataset="lastfm")
    written = export_runs(runs, tmp_path / "results", keep_layout=True)
    assert [d.relative_to(tmp_path / "results").as_posix() for d, _ in written] == [
        "lastfm/sasrec-cce-sequences-len200/seed42",
        "lastfm/sasrec-cce-sequences-len50/seed42",
    ]  # without keep_layout both would be lastfm/sasrec-cce/seed42
    found = collect_beyond(tmp_path / "results")
    assert sorted(found["config"]) == ["sasrec-cce-sequences-len200", "sasrec-cce-sequences-len50"]
    with pytest.raises(SeqrecError, match="is a run folder itself"):
        export_runs(runs / "lastfm/sasrec-cce-sequences-len50/seed42", tmp_path / "other", keep_layout=True)


def test_a_missing_beyond_folder_is_one_paragraph(tmp_path, capsys):
    make_run(tmp_path / "runs", "cce", [1, 2], config=config(50))
    page = tmp_path / "page.md"
    page.write_text("<!-- generated:leaderboard begin -->\n<!-- generated:leaderboard end -->\n")
    args = ["--runs", str(tmp_path / "runs"), "--page", str(page), "--pages-only"]
    assert report_main([*args, "--beyond", str(tmp_path / "nosuch")]) == 1
    assert "--beyond" in capsys.readouterr().err and "not run" not in page.read_text()
    assert report_main(args) == 0
    assert "| LastFM | 0.0484 (0.0853), TV-Rec (NeurIPS 2025) |" in page.read_text()


def test_the_backbone_comparison_pairs_users_against_sasrec_with_cce(tmp_path):
    from seqrec.report.stats import paired_ttest

    t2, beyond = tmp_path / "table2", tmp_path / "beyond"
    sasrec = ([1, 4, MISS, 2, MISS, 9], [2, 4, MISS, 1, 30, 9])  # seeds 42, 43
    for seed, ranks in zip((42, 43), sasrec):
        make_run(t2, "cce", ranks, seed, "lastfm", config=config(50))
    causal = [1, 1, 3, MISS, 2, 5]
    make_run(beyond, "cce", causal, 42, "lastfm", "lastfm/bsarec_causal-cce-sequences-len50/seed42", None,
             config(50), model="bsarec")  # fmt: skip
    published = [MISS, 2, 2, 3, MISS, 1]
    make_run(beyond, "ce", published, 42, "lastfm", "lastfm/bsarec-ce-prefixes-len50/seed42", None,
             config(50, samples="prefixes"), model="bsarec")  # fmt: skip
    block = backbones_block(comparable_runs(collect_runs(t2), collect_beyond(beyond)))

    per_user = [(a + b) / 2 for a, b in zip(*(hand_metrics(r)["ndcg@10"] for r in sasrec))]  # seeds averaged per user
    rows = [[c.strip() for c in line.strip("|").split("|")] for line in block.splitlines()[2:]]
    assert [r[1] for r in rows] == [
        "SASRec + CCE (Table 2)",
        "BSARec + CE, prefix samples (as published)",
        "BSARec (causal) + CCE",
    ]
    values = [ndcg10(r) for r in sasrec]
    assert rows[0][2:4] == ["2", f"{sum(values) / 2:.4f} ± {abs(values[0] - values[1]) / math.sqrt(2):.4f}"]
    assert rows[1][5] == "0.0435 (0.0807)"  # BSARec's own LastFM run
    for row_, ranks in ((rows[1], published), (rows[2], causal)):
        ours = hand_metrics(ranks)["ndcg@10"]
        res = paired_ttest(ours, per_user)
        assert row_[6:] == [f"{ndcg10(ranks) - sum(per_user) / 6:+.4f}", f"{res.t:+.1f}", f"{res.p:.2g}"]
    assert "no BSARec run yet" in backbones_block(comparable_runs(collect_runs(t2)))
