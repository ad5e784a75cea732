"""What Table 2 still needs (seqrec.report.plan): the seed rule on hand-made runs, and the commands."""

from __future__ import annotations

import pandas as pd
from test_results import MISS, make_run

from seqrec.report.plan import commands, main, plan_block, pretrained_from, remaining
from seqrec.report.runs import collect_runs

# ranks [1, miss, miss, miss]: per-user NDCG@10 [1, 0, 0, 0], mean 0.25, standard error over users
# sd / sqrt(4) = 0.5 / 2 = 0.25, so with one seed z = (0.25 - paper) / 0.25
RANKS = [1, MISS, MISS, MISS]


def paper(cells: dict[tuple[str, str], float]) -> pd.DataFrame:
    """A paper table of LastFM cells: (model, loss) → NDCG@10."""
    rows = [("lastfm", m, loss, "ndcg@10", v) for (m, loss), v in cells.items()]
    return pd.DataFrame(rows, columns=["dataset", "model", "loss", "metric", "value"])


def test_the_seed_rule_cell_by_cell(tmp_path):
    make_run(tmp_path, "bce", RANKS)  # paper 0.25: z 0, within → nothing to run
    make_run(tmp_path, "ce", RANKS)  # paper 0.80: z (0.25 - 0.80) / 0.25 = -2.2, outside on 1 seed
    make_run(tmp_path, "cce", RANKS, seed=42)  # a CCE cell with 2 seeds lacks seed 44
    make_run(tmp_path, "cce", RANKS, seed=43)
    table = paper(
        {
            ("sasrec", "bce"): 0.25,
            ("sasrec", "ce"): 0.80,
            ("sasrec", "cce"): 0.25,
            ("gru4rec", "bce"): 0.1,  # not run: one seed first
            ("gru4rec", "cce"): 0.1,  # not run, CCE: three seeds
        }
    )
    plan = remaining(collect_runs(tmp_path), table)
    got = {(r.model, r.loss): (r.why, r.missing) for r in plan.itertuples()}
    assert got == {
        ("gru4rec", "bce"): ("not run", [42]),
        ("gru4rec", "cce"): ("not run", [42, 43, 44]),
        ("sasrec", "ce"): ("outside noise (z -2.2)", [43, 44]),
        ("sasrec", "cce"): ("CCE cell", [44]),
    }
    # Table 2's order: GRU4Rec before SASRec, BCE before CE before CCE
    assert list(zip(plan["model"], plan["loss"], strict=True)) == [
        ("gru4rec", "bce"),
        ("gru4rec", "cce"),
        ("sasrec", "ce"),
        ("sasrec", "cce"),
    ]


def test_a_cell_within_noise_on_two_seeds_needs_nothing_more(tmp_path):
    make_run(tmp_path, "bce", RANKS, seed=42)
    make_run(tmp_path, "bce", [MISS, 1, MISS, MISS], seed=43)
    assert remaining(collect_runs(tmp_path), paper({("sasrec", "bce"): 0.25})).empty
    assert remaining(None, paper({("sasrec", "bce"): 0.25}))["missing"].tolist() == [[42]]


def test_a_missing_lower_seed_is_filled_first(tmp_path):
    make_run(tmp_path, "cce", RANKS, seed=44)
    plan = remaining(collect_runs(tmp_path), paper({("sasrec", "cce"): 0.25}))
    assert plan["missing"].tolist() == [[42, 43]]


def test_commands_repeat_the_cells_pretrained_model(tmp_path):
    s3rec = "model:\n  pretrained_from: ../shared/reference/s3rec_pretrained/LastFM-epochs-150.pt\n"
    make_run(tmp_path, "bce", RANKS, model="s3rec", config=s3rec)
    runs = collect_runs(tmp_path)
    plan = remaining(runs, paper({("s3rec", "cce"): 0.25, ("sasrec", "cce"): 0.25}))
    pretrained = pretrained_from(runs)
    assert pretrained == {"lastfm": "../shared/reference/s3rec_pretrained/LastFM-epochs-150.pt"}
    per_cell = commands(plan, pretrained, extra="device=cuda")
    assert per_cell == [
        "python train.py -m experiment=table2 dataset=lastfm model=sasrec loss=cce seed=42,43,44 device=cuda",
        "python train.py -m experiment=table2 dataset=lastfm model=s3rec loss=cce seed=42,43,44 "
        "model.pretrained_from=../shared/reference/s3rec_pretrained/LastFM-epochs-150.pt device=cuda",
    ]
    per_run = commands(plan, pretrained, per_run=True, extra="")
    assert len(per_run) == 6 and per_run[3].endswith("loss=cce seed=42 model.pretrained_from=" + pretrained["lastfm"])
    assert "6 runs in all" in plan_block(plan, pretrained)


def test_cli_prints_one_command_per_run(tmp_path, capsys):
    make_run(tmp_path, "cce", RANKS, dataset="toys", model="gru4rec")
    assert main(["--runs", str(tmp_path), "--per-run", "--commands", "device=cuda", "num_threads=2"]) == 0
    lines = capsys.readouterr().out.splitlines()
    # the packaged paper table: 45 cells; its 14 other CCE cells need three seeds, its 30 BCE and CE
    # cells one each, and the CCE cell run once seeds 43 and 44
    assert (
        "python train.py -m experiment=table2 dataset=toys model=gru4rec loss=cce seed=43 device=cuda num_threads=2"
        in lines
    )
    assert sum("dataset=toys model=gru4rec loss=cce" in ln for ln in lines) == 2
    assert len(lines) == 14 * 3 + 30 + 2


def test_cli_refuses_a_missing_folder_and_runs_off_the_protocol(tmp_path, capsys):
    assert main(["--runs", str(tmp_path / "tabel2")]) == 1  # a typo once listed all 45 cells as "not run"
    assert "is not a folder" in capsys.readouterr().err
    # a 2-epoch smoke run would count as the cell's seed 42: refused as the pages refuse it
    make_run(tmp_path / "runs", "cce", RANKS, config="trainer:\n  max_epochs: 2\n")
    assert main(["--runs", str(tmp_path / "runs")]) == 1
    assert "trainer.max_epochs=2" in " ".join(capsys.readouterr().err.split())
