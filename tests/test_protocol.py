"""Which runs the report may average and compare (seqrec.report.protocol): the seeds of one cell
differ only in the seed, and the result pages take runs of the paper's protocol only."""

from __future__ import annotations

import pytest
from test_results import make_run

from seqrec.errors import SeqrecError
from seqrec.report.leaderboard import collect_beyond, comparable_runs
from seqrec.report.runs import collect_runs

PROTOCOL = "dataset:\n  max_len: 50\n  max_users: null\ntrainer:\n  max_epochs: 150\n  patience: 10\n"


def test_seeds_of_one_cell_may_differ_only_in_the_seed_and_the_setup(tmp_path):
    runs = tmp_path / "runs"
    make_run(runs, "cce", [1, 2], seed=42, config=PROTOCOL + "num_threads: 1\n")
    # other threads, device, a key only one config has (an option added later): the same configuration
    make_run(
        runs, "cce", [2, 1], seed=43, config=PROTOCOL + "num_threads: 8\ndevice: cuda\neval:\n  rank_repeats: false\n"
    )
    assert collect_runs(runs)["seed"].tolist() == [42, 43]
    # a 1-epoch smoke run exported as seed 44 is not a seed of this cell
    smoke = PROTOCOL.replace("max_epochs: 150", "max_epochs: 1")
    make_run(runs, "cce", [1, 1], seed=44, config=smoke)
    with pytest.raises(SeqrecError, match=r"differ in more than the seed \(trainer.max_epochs: 150 vs 1\)"):
        collect_runs(runs)


def test_an_option_only_one_seed_has_is_compared_with_what_the_other_computed_with(tmp_path):
    runs = tmp_path / "runs"
    with_samples = PROTOCOL.replace("patience: 10\n", "patience: 10\n  samples: {}\n")
    make_run(runs, "cce", [1, 2], seed=42, config=PROTOCOL)  # made before trainer.samples existed: sequences
    make_run(runs, "cce", [2, 1], seed=43, config=with_samples.format("sequences"))
    assert len(collect_runs(runs)) == 2
    (runs / "lastfm-cce-43" / "config.yaml").write_text(with_samples.format("prefixes"))
    with pytest.raises(
        SeqrecError, match=r"differ in more than the seed \(trainer.samples: 'sequences' vs 'prefixes'\)"
    ):
        collect_runs(runs)
    # an option without a known old value: set in one config it is a difference; null (off) matches
    (runs / "lastfm-cce-43" / "config.yaml").write_text(PROTOCOL + "loss:\n  newopt: 3\n  other: null\n")
    with pytest.raises(SeqrecError, match=r"\(loss.newopt: '\(not set\)' vs 3\)"):
        collect_runs(runs)


def test_a_moved_class_path_is_the_same_setting(tmp_path):
    runs = tmp_path / "runs"
    make_run(runs, "cce", [1, 2], seed=42, config=PROTOCOL + "loss:\n  _target_: seqrec.samplers.UniformSampler\n")
    make_run(
        runs, "cce", [2, 1], seed=43, config=PROTOCOL + "loss:\n  _target_: seqrec.losses.samplers.UniformSampler\n"
    )
    assert len(collect_runs(runs)) == 2


def test_the_pages_take_runs_of_the_papers_protocol_only(tmp_path):
    table2 = tmp_path / "table2"
    make_run(table2, "cce", [1, 2], config=PROTOCOL)
    assert len(comparable_runs(collect_runs(table2))) == 1
    # a 300-user subset exported into the Table 2 results
    subset = tmp_path / "subset"
    make_run(subset, "cce", [1, 2], config=PROTOCOL.replace("max_users: null", "max_users: 300"))
    with pytest.raises(SeqrecError, match=r"dataset.max_users=300, but Table 2 compares .*max_users=None"):
        comparable_runs(collect_runs(subset))
    # beyond Table 2 any max_len is fine, a shortened schedule is not
    beyond = tmp_path / "beyond"
    make_run(beyond, "cce", [1, 2], name="lastfm/sasrec-cce-sequences-len200/seed42",
             config=PROTOCOL.replace("max_len: 50", "max_len: 200"))  # fmt: skip
    assert len(comparable_runs(collect_runs(table2), collect_beyond(beyond))) == 2
    make_run(beyond, "cce", [1, 2], name="lastfm/smoke/seed42", config=PROTOCOL.replace("patience: 10", "patience: 1"))
    with pytest.raises(SeqrecError, match=r"smoke/seed42' was trained with trainer.patience=1, but the leaderboard"):
        comparable_runs(collect_runs(table2), collect_beyond(beyond))


def test_rank_repeats_is_compared_only_where_a_target_repeats_a_history_item(tmp_path):
    import json

    runs = tmp_path / "runs"
    for seed, repeats in ((42, "true"), (43, "false")):
        run = make_run(runs, "cce", [1, 2], seed=seed, config=PROTOCOL + f"eval:\n  rank_repeats: {repeats}\n")
        metrics = json.loads((run / "metrics.json").read_text())
        (run / "metrics.json").write_text(json.dumps({**metrics, "valid/repeat_share": 0.0, "test/repeat_share": 0.0}))
    assert len(collect_runs(runs)) == 2  # no repeated target: the two rules give the same numbers
    metrics = json.loads((runs / "lastfm-cce-43" / "metrics.json").read_text())
    (runs / "lastfm-cce-43" / "metrics.json").write_text(json.dumps({**metrics, "test/repeat_share": 0.067}))
    with pytest.raises(SeqrecError, match=r"eval.rank_repeats: True vs False"):
        collect_runs(runs)
