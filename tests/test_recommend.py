"""Recommendations from a trained run (seqrec.recommend): the top-k rule on hand-made scores and
models, and a tiny LastFM run whose lists must agree with its own evaluation."""

from __future__ import annotations

import json
import logging
import re
import shutil
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
import torch
from conftest import ROOT, compose_config
from torch import nn

import seqrec
from seqrec.data.csr import windows as csr_windows
from seqrec.errors import DataError, SeqrecError
from seqrec.evaluation import MASKED_RANK
from seqrec.models import S3Rec, SASRec
from seqrec.recommend import Recommender, recommend_csr, top_k
from seqrec.recommend.__main__ import main
from seqrec.recommend.files import read_sequences

TOKENS = np.array(["[PAD]", "a", "b", "c", "d", "e", "f"])  # items 1..6


class Constant(nn.Module):
    """Every item scores 0 after every sequence: all ties, so only the tie rule orders the list."""

    def __init__(self, n_items: int = 6, d: int = 3):
        super().__init__()
        self.item_emb = nn.Embedding(n_items + 1, d)
        nn.init.zeros_(self.item_emb.weight)

    def forward(self, item_seq: torch.Tensor) -> torch.Tensor:
        return torch.zeros(*item_seq.shape, self.item_emb.embedding_dim)

    def output_table(self) -> torch.Tensor:
        return self.item_emb.weight[1:]


def reference_top_k(row: list[float], k: int) -> list[int]:
    """Columns by score descending, then column ascending, -inf dropped: the stated rule."""
    order = sorted(range(len(row)), key=lambda c: (-row[c], c))
    return [c for c in order[:k] if row[c] != float("-inf")]


@pytest.mark.parametrize("chunk_floats", [2**22, 40, 100])
@pytest.mark.parametrize("k", [1, 3, 7, 39, 40])
def test_top_k_breaks_ties_by_column_like_a_sort(k, chunk_floats):
    gen = torch.Generator().manual_seed(0)
    scores = torch.randint(0, 4, (30, 40), generator=gen).float()  # many ties at every cut-off
    scores[scores == 0] = float("-inf")
    values, cols = top_k(scores.clone(), k, chunk_floats)
    for r in range(len(scores)):
        expected = reference_top_k(scores[r].tolist(), k)
        assert cols[r, : len(expected)].tolist() == expected
        assert values[r, : len(expected)].tolist() == scores[r, expected].tolist()
        assert torch.isneginf(values[r, len(expected) :]).all()


def test_top_k_hand_example():
    scores = torch.tensor([[0.5, 2.0, 0.5, 0.5, 1.0], [3.0, 3.0, 3.0, 3.0, 3.0]])
    values, cols = top_k(scores, 3)
    assert cols.tolist() == [[1, 4, 0], [0, 1, 2]]
    assert values.tolist() == [[2.0, 1.0, 0.5], [3.0, 3.0, 3.0]]


def test_windows_keep_the_most_recent_items_left_padded():
    items = torch.arange(1, 10)
    windows = csr_windows(items, torch.tensor([0, 7]), torch.tensor([7, 9]), 5)
    assert windows.tolist() == [[3, 4, 5, 6, 7], [0, 0, 0, 8, 9]]


def test_tied_scores_give_smallest_ids_first_and_history_excluded():
    run = Recommender(Constant(), TOKENS, max_len=5)
    recs = run.recommend({"s": ["b", "d"]}, k=3)
    assert recs["item_id"].tolist() == ["a", "c", "e"]  # b, d: history
    assert recs["rank"].tolist() == [1, 2, 3] and (recs["score"] == 0).all()
    recs = run.recommend({"s": ["b", "d"]}, k=3, include_history=True)
    assert recs["item_id"].tolist() == ["a", "b", "c"]
    again = run.recommend({"s": ["b", "d"]}, k=3, include_history=True)
    pd.testing.assert_frame_equal(recs, again)


def test_a_history_covering_the_catalogue_shortens_the_list(caplog):
    run = Recommender(Constant(), TOKENS, max_len=5)
    with caplog.at_level(logging.WARNING, logger="seqrec.recommend"):
        recs = run.recommend({"s": ["a", "b", "c", "d", "e"], "t": ["a"]}, k=6)
    # said, not silent: a user whose history covers the catalogue gets an empty list
    assert "2 of 2 lists are shorter than k=6 (0 empty)" in caplog.text and "--include-history" in caplog.text
    assert recs[recs.sequence_id == "s"]["item_id"].tolist() == ["f"]
    assert recs[recs.sequence_id == "t"]["item_id"].tolist() == ["b", "c", "d", "e", "f"]
    assert np.isfinite(recs["score"]).all()


def test_padding_and_mask_token_are_never_recommended():
    torch.manual_seed(0)
    model = S3Rec(n_items=6, max_len=5, n_attributes=2, hidden_size=8, num_heads=2).eval()
    with torch.no_grad():  # make padding and mask token the most attractive vectors there are
        model.mask_emb.fill_(5.0)
        model.item_emb.weight[0].fill_(5.0)
    items = torch.tensor([1, 2, 3, 7, 4, 5])  # 7 = the mask token in an input (pre-training only)
    _, top = recommend_csr(model, items, torch.tensor([0, 3, 6]), k=6, max_len=5, mask_history=False)
    assert sorted(top[0].tolist()) == [1, 2, 3, 4, 5, 6] == sorted(top[1].tolist())
    recs = Recommender(model, TOKENS, max_len=5).recommend([["a", "[PAD]", "b"]], k=6, include_history=True)
    assert sorted(recs["item_id"]) == list("abcdef")


def test_long_sequences_use_their_most_recent_max_len_items():
    torch.manual_seed(0)
    run = Recommender(SASRec(n_items=6, max_len=3, hidden_size=8).eval(), TOKENS, max_len=3)
    full = run.recommend({"s": ["a", "b", "c", "d", "e"]}, k=6, include_history=True)
    recent = run.recommend({"s": ["c", "d", "e"]}, k=6, include_history=True)
    other = run.recommend({"s": ["b", "d", "e"]}, k=6, include_history=True)
    pd.testing.assert_frame_equal(full, recent)
    assert not np.allclose(full["score"], other["score"].to_numpy())  # the window matters
    # history exclusion still covers the whole sequence, not only the window
    assert set(run.recommend({"s": ["a", "b", "c", "d", "e"]}, k=1)["item_id"]) == {"f"}


def test_unknown_items_are_dropped_with_a_counted_warning_and_empty_sequences_reported(caplog):
    run = Recommender(Constant(), TOKENS, max_len=5)
    with caplog.at_level(logging.WARNING, logger="seqrec.recommend"):
        recs = run.recommend({"s": ["a", "zz", "b", "zz"], "t": ["x1", "[PAD]"], "u": [], 7: ["c"]}, k=2)
    assert "dropped 4 unknown item id(s) (3 distinct, in 2 of 4 sequences" in caplog.text
    assert "'zz', 'x1', '[PAD]'" in caplog.text
    assert "2 of 4 sequence(s) have no known item" in caplog.text and "'t', 'u'" in caplog.text
    assert recs.groupby("sequence_id", sort=False)["item_id"].apply(list).to_dict() == {"s": ["c", "d"], 7: ["a", "b"]}


def test_no_sequence_with_a_known_item_gives_empty_results_not_a_crash(caplog):
    run = Recommender(Constant(), TOKENS, max_len=5)
    recs = run.recommend({"s": ["zz"], "t": []}, k=2)
    assert recs.empty and list(recs.columns) == ["sequence_id", "rank", "item_id", "score"]
    assert run.score({"s": ["zz"]}).shape == (0, 6)
    assert "2 of 2 sequence(s) have no known item" in caplog.text


def test_raw_ids_are_strings_and_numbers_match_them():
    tokens = np.array(["[PAD]", "7", "007", "x"])
    run = Recommender(Constant(n_items=3), tokens, max_len=5)
    assert run.recommend([[7]], k=2)["item_id"].tolist() == ["007", "x"]
    assert run.recommend([["007"]], k=2)["item_id"].tolist() == ["7", "x"]
    scores = run.score({"s": [7]}, items=["x", "7"])
    assert list(scores.columns) == ["x", "7"] and list(scores.index) == ["s"]
    with pytest.raises(SeqrecError, match="'nope' are not in the run's catalogue"):
        run.score([[7]], items=["nope"])


def test_a_diverged_model_is_a_clear_error():
    model = Constant()
    model.forward = lambda item_seq: torch.full((*item_seq.shape, 3), float("nan"))
    with pytest.raises(SeqrecError, match="NaN hidden states: the checkpoint diverged"):
        Recommender(model, TOKENS, max_len=5).recommend([["a"]], k=2)


def test_a_sequences_csv_with_spaces_around_fields_reads_like_the_training_reader(tmp_path):
    path = tmp_path / "seqs.csv"
    path.write_text("sequence_id, item_id\ns1, a\ns1 , b\nt,c \n")
    assert read_sequences(path) == {"s1": ["a", "b"], "t": ["c"]}


def test_a_sequences_csv_with_timestamps_is_put_in_time_order_per_sequence(tmp_path):
    path = tmp_path / "seqs.csv"
    # s1 and t interleaved and out of time order; s1 has a tie at 300 (file order: c, then d)
    path.write_text(
        "sequence_id,item_id,timestamp\ns1,c,300\nt,x,50\ns1,a,100\ns1,d,300\nt,y,2\ns1,b,2000-01-01T00:00:00Z\n"
    )
    with pytest.raises(DataError, match="line"):  # Unix seconds mixed with dates: the training reader's error
        read_sequences(path)
    path.write_text("sequence_id,item_id,timestamp\ns1,c,300\nt,x,50\ns1,a,100\ns1,d,300\nt,y,2\ns1,b,250\n")
    assert read_sequences(path) == {"s1": ["a", "b", "c", "d"], "t": ["y", "x"]}


def test_sequences_csv_errors_name_the_file_line_across_blank_lines(tmp_path):
    path = tmp_path / "seqs.csv"
    path.write_text("sequence_id,item_id,timestamp\n\n\ns1,i1,3\ns1,i2,1\n\ns1,i3,x\n")
    with pytest.raises(DataError, match=r"line 7: timestamp 'x'"):
        read_sequences(path)
    path.write_text("sequence_id,item_id\n\ns1,i1\n\ns1,\n")
    with pytest.raises(DataError, match=r"line 5: sequence_id or item_id is empty"):
        read_sequences(path)


def test_users_files_decode_like_training_files_and_follow_csv_quoting(tmp_path):
    from seqrec.recommend.files import read_users

    path = tmp_path / "users.txt"
    path.write_bytes("user_id\n007\ncaf\xe9\n".encode("latin-1"))
    with pytest.raises(DataError, match=r"line 3: the file is not valid UTF-8"):
        read_users(path)
    path.write_bytes("user_id\r\n007\r\ncafé\r\n".encode("utf-16"))  # PowerShell's default
    assert read_users(path) == ["007", "café"]
    path.write_text('u0\n"u,1"\n\n u2 \n')
    assert read_users(path) == ["u0", "u,1", "u2"]
    path.write_text("u0\nu1,u2\n")
    with pytest.raises(DataError, match=r"line 2: several comma-separated fields, but line 1 has one"):
        read_users(path)


def test_k_out_of_range_is_an_error():
    run = Recommender(Constant(), TOKENS, max_len=5)
    for k in (0, 7, 2.5, True):
        with pytest.raises(SeqrecError, match="must be a whole number from 1 to the run's catalogue size"):
            run.recommend([["a"]], k=k)


# --------------------------------------------------------------------------- a tiny trained run


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory, lastfm_data_dir):
    """A 2-epoch SASRec + CCE run on 150 LastFM users (a few seconds)."""
    from seqrec.runs.pipeline import run

    out = tmp_path_factory.mktemp("run")
    cfg = compose_config(
        [
            f"data_dir={lastfm_data_dir}",
            f"output_dir={out}",
            "dataset.max_users=150",
            "trainer.max_epochs=2",
            "trainer.progress=false",
            "device=cpu",
        ]
    )
    run(cfg)
    return out


def cli(tmp_path, *args):
    out = tmp_path / "recs.csv"
    assert main(["--run", str(args[0]), *args[1:], "--out", str(out)]) == 0
    return pd.read_csv(out, dtype={"user_id": str, "sequence_id": str, "item_id": str})


@pytest.mark.realdata
def test_as_of_test_lists_reproduce_the_evaluated_ranks(trained_run, tmp_path):
    run = seqrec.load_run(trained_run)
    data = run.dataset()
    recs = cli(tmp_path, trained_run, "--as-of", "test", "--k", str(run.n_items))  # whole ranking
    per_user = pd.read_csv(trained_run / "per_user_test.csv", dtype={"user_id": str}).set_index("user_id")
    test_item = pd.Series([data.item_tokens[data.sequence(u)[-1]] for u in range(data.n_users)], index=data.user_tokens)
    found = recs[recs["item_id"].to_numpy() == test_item[recs["user_id"]].to_numpy()].set_index("user_id")["rank"]
    ranks = per_user["rank"]
    assert (ranks[ranks != MASKED_RANK].sort_index() == found.sort_index()).all()
    assert set(found.index) == set(ranks[ranks != MASKED_RANK].index)  # a masked (repeated) test item is never listed
    assert len(found) > 100


@pytest.mark.realdata
def test_known_users_exclude_their_whole_history_unless_asked(trained_run, tmp_path):
    run = seqrec.load_run(trained_run)
    data = run.dataset()
    recs = cli(tmp_path, trained_run, "--k", "20")
    assert len(recs) == 20 * data.n_users and list(recs["rank"][:20]) == list(range(1, 21))
    seen = {(data.user_tokens[u], data.item_tokens[i]) for u in range(data.n_users) for i in data.sequence(u)}
    assert not any(pair in seen for pair in zip(recs["user_id"], recs["item_id"]))
    with_history = cli(tmp_path, trained_run, "--k", "20", "--include-history")
    assert any(pair in seen for pair in zip(with_history["user_id"], with_history["item_id"]))
    # --as-of all uses the test item too; raw ids round-trip through a new sequence
    user = 3
    tokens = [str(data.item_tokens[i]) for i in data.sequence(user)]
    as_sequence = run.recommend({"me": tokens}, k=20)
    assert as_sequence["item_id"].tolist() == recs[recs.user_id == data.user_tokens[user]]["item_id"].tolist()
    np.testing.assert_allclose(as_sequence["score"], recs[recs.user_id == data.user_tokens[user]]["score"], rtol=1e-5)
    again = cli(tmp_path, trained_run, "--k", "20")
    pd.testing.assert_frame_equal(recs, again)  # the same run gives the same lists


@pytest.mark.realdata
def test_users_file_sequences_file_and_runs_without_ids_npz(trained_run, tmp_path):
    run = seqrec.load_run(trained_run)
    data = run.dataset()
    users = tmp_path / "users.txt"
    users.write_text(f"user_id\n{data.user_tokens[5]}\nnobody\n{data.user_tokens[2]}\n")
    recs = cli(tmp_path, trained_run, "--users", str(users), "--k", "5")
    assert recs["user_id"].unique().tolist() == [data.user_tokens[5], data.user_tokens[2]]
    repeated = run.recommend_users([data.user_tokens[2], data.user_tokens[5], data.user_tokens[2]], k=5)
    assert repeated["user_id"].tolist() == [data.user_tokens[2]] * 5 + [data.user_tokens[5]] * 5  # one list each
    one = next(str(u) for u in data.user_tokens if len(str(u)) > 1)  # one user, not one per character
    pd.testing.assert_frame_equal(run.recommend_users(one, k=3), run.recommend_users([one], k=3))
    seqs = tmp_path / "seqs.jsonl"
    tokens = [str(t) for t in data.item_tokens[data.sequence(5)]]
    seqs.write_text(json.dumps({"sequence_id": "u5", "items": tokens}) + "\n\n" + json.dumps(["unknown!"]) + "\n")
    from_file = cli(tmp_path, trained_run, "--sequences", str(seqs), "--k", "5")
    assert from_file["item_id"].tolist() == recs[recs.user_id == data.user_tokens[5]]["item_id"].tolist()
    assert set(from_file["sequence_id"]) == {"u5"}  # line 3 had no known item
    csv = tmp_path / "seqs.csv"
    pd.DataFrame({"sequence_id": "u5", "item_id": tokens}).to_csv(csv, index=False)
    pd.testing.assert_frame_equal(cli(tmp_path, trained_run, "--sequences", str(csv), "--k", "5"), from_file)
    old = tmp_path / "old"
    shutil.copytree(trained_run, old)
    (old / "ids.npz").unlink()  # a run from before ids.npz: item ids from its dataset
    pd.testing.assert_frame_equal(cli(tmp_path, old, "--users", str(users), "--k", "5"), recs)


@pytest.mark.realdata
@pytest.mark.parametrize(
    "case,args,message",
    [
        ("no_best", ["--k", "5"], "has no best.pt.*not a finished run"),
        ("exported", ["--k", "5"], "is an exported result folder .seqrec.report.export.*not its model weights"),
        ("unfinished", ["--k", "5"], "has no metrics.json.*not a finished run"),
        ("ok", ["--k", "0"], "--k 0: a list needs at least one item"),
        ("ok", ["--k", "ten"], "--k 'ten' is not a whole number"),
        (
            "ok",
            ["--k", "100000"],
            "k=100000 must be a whole number from 1 to the run's catalogue size \\(3646 items\\)",
        ),
        ("ok", ["--sequences", "{bad}"], "bad.jsonl', line 2: not valid JSON"),
        ("ok", ["--sequences", "{badcsv}"], "bad.csv', line 3: sequence_id or item_id is empty"),
        ("ok", ["--sequences", "{bad}", "--users", "all"], "give --users or --sequences, not both"),
        ("ok", ["--users", "{nobody}"], "none of the 1 given user ids is a user"),
        ("ok", ["--out-suffix"], "must be a file ending in .csv or .jsonl"),
        ("ok", ["--device", "gpu"], "--device 'gpu' is not a device: use auto"),
        ("ok", ["--device", "cuda:x"], "--device 'cuda:x' is not a device"),
        ("ok", ["--sequences", "{bad}", "--data-dir", "data"], "--data-dir applies to known users"),
        ("ok", ["--num-threads", "-3"], "'-3' is not a thread count"),
        ("ok", ["--num-threads", "0"], "'0' is not a thread count"),
    ],
)
def test_bad_input_is_one_paragraph_exit_1_and_no_output(trained_run, tmp_path, capsys, case, args, message):
    run_dir = tmp_path / "run"
    shutil.copytree(trained_run, run_dir)
    if case == "no_best":
        (run_dir / "best.pt").unlink()
    if case == "unfinished":
        (run_dir / "metrics.json").unlink()
    if case == "exported":  # what results/ holds: no weights
        from seqrec.report.archive import RESULT_FILE, export_run

        shutil.rmtree(run_dir)
        run_dir, _ = export_run(trained_run, tmp_path / "results")
        assert (run_dir / RESULT_FILE).is_file()
    (tmp_path / "bad.jsonl").write_text('["a"]\n{"items": [1, 2}\n')
    (tmp_path / "bad.csv").write_text("sequence_id,item_id\ns,1\ns,\n")
    (tmp_path / "nobody.txt").write_text("nobody\n")
    out = tmp_path / ("recs.txt" if args == ["--out-suffix"] else "recs.csv")
    args = (
        []
        if args == ["--out-suffix"]
        else [
            a.format(bad=tmp_path / "bad.jsonl", badcsv=tmp_path / "bad.csv", nobody=tmp_path / "nobody.txt")
            for a in args
        ]
    )
    with pytest.raises(SystemExit) as exit_info:
        main(["--run", str(run_dir), *args, "--out", str(out)])
    assert exit_info.value.code == 1
    err = " ".join(capsys.readouterr().err.split())
    assert "error:" in err and "Traceback" not in err
    assert re.search(message, err), err
    assert not out.exists() and not any(p.name.startswith(".recs") for p in tmp_path.iterdir())


@pytest.mark.slow
@pytest.mark.realdata
def test_module_entry_point(trained_run, tmp_path):
    out = tmp_path / "recs.jsonl"
    ok = subprocess.run(
        [sys.executable, "-m", "seqrec.recommend", "--run", str(trained_run), "--k", "3", "--out", str(out)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=300,
    )
    assert ok.returncode == 0, ok.stderr
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(rows) == 3 * 150 and set(rows[0]) == {"user_id", "rank", "item_id", "score"}
    bad = subprocess.run(
        [sys.executable, "-m", "seqrec.recommend", "--run", str(tmp_path / "none")],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=300,
    )
    assert bad.returncode == 1 and "is not a folder" in bad.stderr and "Traceback" not in bad.stderr


def read_first_line(command: list[str]) -> tuple[str, int, str]:
    """``command | head -1``: the first line, then the pipe closed; (line, exit status, stderr)."""
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT)
    line = proc.stdout.readline()
    proc.stdout.close()
    stderr = proc.stderr.read()
    return line, proc.wait(timeout=300), stderr


def test_a_closed_stdout_pipe_ends_quietly_with_141():
    code = (
        "import sys\nfrom seqrec.runs.cli import stdout_pipe\nwith stdout_pipe():\n"
        "    for i in range(10**6):\n        sys.stdout.write(f'{i},x\\n')\n"
    )
    line, status, stderr = read_first_line([sys.executable, "-c", code])
    assert (line, status, stderr) == ("0,x\n", 141, "")


@pytest.mark.slow
@pytest.mark.realdata
def test_recommend_into_head_ends_quietly(trained_run):
    command = [sys.executable, "-m", "seqrec.recommend", "--run", str(trained_run), "--k", "100"]
    line, status, stderr = read_first_line(command)  # 15,000 rows: more than a pipe buffer holds
    assert line == "user_id,rank,item_id,score\n" and status == 141
    assert "error" not in stderr and "BrokenPipe" not in stderr, stderr


@pytest.mark.realdata
def test_s3rec_run_recommends_from_the_run_folder_alone(tmp_path, lastfm_data_dir):
    """S3-Rec (fine-tuned from scratch here) is rebuilt from config.yaml and best.pt: new sequences
    need no dataset and no attributes file, and its lists agree with its evaluation."""
    from seqrec.runs.pipeline import run

    cfg = compose_config(
        [
            f"data_dir={lastfm_data_dir}",
            f"output_dir={tmp_path / 'run'}",
            "model=s3rec",
            "model.pretrained=false",
            "dataset.max_users=60",
            "trainer.max_epochs=1",
            "trainer.progress=false",
            "device=cpu",
        ]
    )
    run(cfg)
    moved = tmp_path / "moved"
    shutil.copytree(tmp_path / "run", moved)
    recommender = seqrec.load_run(moved, data_dir=tmp_path / "no-data-here")
    # from scratch, no attributes are read at all (the pipeline's stage control), so none are in best.pt
    assert recommender.model.n_attributes == 0 and recommender.n_items == 3646
    recs = recommender.recommend({"s": ["2", "15", "7"]}, k=recommender.n_items, include_history=True)
    assert sorted(recs["item_id"]) == sorted(recommender.item_tokens[1:])  # every item once, nothing else
    assert not (tmp_path / "no-data-here").exists()  # no data was read or fetched
    with_data = seqrec.load_run(moved, data_dir=lastfm_data_dir)
    recs = with_data.recommend_users(k=with_data.n_items, as_of="test")
    data = with_data.dataset()
    test_item = pd.Series([data.item_tokens[data.sequence(u)[-1]] for u in range(data.n_users)], index=data.user_tokens)
    found = recs[recs["item_id"].to_numpy() == test_item[recs["user_id"]].to_numpy()].set_index("user_id")["rank"]
    ranks = pd.read_csv(moved / "per_user_test.csv", dtype={"user_id": str}).set_index("user_id")["rank"]
    assert (ranks[ranks != MASKED_RANK].sort_index() == found.sort_index()).all()


def test_users_come_from_a_pipe_or_standard_input(tmp_path):
    # `--users <(cut -d, -f1 users.csv)` and `... | python -m seqrec.recommend --users -`
    import os
    import threading

    from seqrec.recommend.files import read_users

    fifo = tmp_path / "users.fifo"
    os.mkfifo(fifo)
    writer = threading.Thread(target=lambda: fifo.write_text("u7\nu8\n"))
    writer.start()
    assert read_users(fifo) == ["u7", "u8"]
    writer.join()
    code = "from seqrec.recommend.files import read_users; print(read_users('-'))"
    piped = subprocess.run([sys.executable, "-c", code], input="u9\n", capture_output=True, text=True, timeout=120)
    assert piped.stdout.strip() == "['u9']", piped.stderr
    with pytest.raises(DataError, match="is a folder"):
        read_users(tmp_path)
