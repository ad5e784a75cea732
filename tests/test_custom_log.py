"""A user's own log through ``train.py dataset=custom``: real-world quirks give the right
sequences, and a bad input gives one paragraph, exit status 1 and no run folder."""

from __future__ import annotations

import gzip
import json
import re
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from conftest import ROOT

from seqrec.runs.cli import remove_unused_run_dir

pytestmark = pytest.mark.slow


def train(tmp_path: Path, *overrides: str) -> subprocess.CompletedProcess:
    """``train.py dataset=custom`` on CPU for one epoch, run from ``tmp_path`` (its outputs go
    to ``tmp_path/outputs``, the cache to ``tmp_path/data``)."""
    command = [
        sys.executable,
        str(ROOT / "train.py"),
        "dataset=custom",
        "dataset.kcore=0",
        f"data_dir={tmp_path / 'data'}",
        "trainer.max_epochs=1",
        "trainer.progress=false",
        "device=cpu",
        *overrides,
    ]
    return subprocess.run(
        command,
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=300,
        env={"SEQREC_SHARED_DATA": str(tmp_path / "none"), "PATH": ""},
    )


def test_gzipped_tsv_with_string_ids_trains_and_keeps_the_ids(tmp_path):
    # a gzipped TSV, CRLF, a BOM, ids with leading zeros, float timestamps and one tie
    rows = [
        ("007", "a", "978300760.0"),
        ("007", "b", "978300761.0"),
        ("7", "a", "5.0"),
        ("007", "c", "978300759.5"),
        ("7", "c", "5.0"),
        ("7", "b", "4.0"),
        ("007", "d", "978300762"),
    ]
    text = "\ufeffuser\titem\tts\r\n" + "".join("\t".join(r) + "\r\n" for r in rows)
    log = tmp_path / "log.tsv.gz"
    log.write_bytes(gzip.compress(text.encode()))
    result = train(
        tmp_path,
        f"dataset.path={log}",
        "dataset.user_col=user",
        "dataset.item_col=item",
        "dataset.time_col=ts",
        "dataset.sep='\\t'",
        f"hydra.run.dir={tmp_path / 'run'}",
    )
    assert result.returncode == 0, result.stderr
    per_user = pd.read_csv(tmp_path / "run" / "per_user_test.csv", dtype={"user_id": str})
    assert per_user["user_id"].tolist() == ["007", "7"]  # not merged into one user 7
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert (metrics["n_users"], metrics["n_items"]) == (2, 4)
    # the processed sequences: chronological, ties in file order
    from seqrec.data.cache import load_cache

    (cache,) = (tmp_path / "data" / "processed").glob("custom-*.npz")
    data = load_cache(cache, metrics["data_fingerprint"])
    sequences = {data.user_tokens[u]: data.item_tokens[data.sequence(u)].tolist() for u in range(data.n_users)}
    assert sequences == {"007": ["c", "a", "b", "d"], "7": ["b", "a", "c"]}
    # the log moved away: recommending for the run's users reads the processed data it was trained on
    log.rename(tmp_path / "elsewhere.tsv.gz")
    import seqrec

    run = seqrec.load_run(tmp_path / "run", data_dir=tmp_path / "data")
    assert sorted(run.recommend_users(k=1, include_history=True)["user_id"]) == ["007", "7"]


@pytest.mark.parametrize(
    "name, content, overrides, message",
    [
        ("ratings.dat", "1::1193::5::978300760\n", ["dataset.sep=::"], "the file has no header row"),
        ("ratings_Beauty.csv", "user_id,item_id,timestamp\n", [], "has a header .line 1. but no data"),
        ("ml-1m", None, [], "is a directory"),
        ("short.csv", "user_id,item_id,timestamp\nu,a,1\nu,b,2\nu,c,3\n", [], "no training pair"),
        (
            "x.inter",
            "user_id:token\titem_id:token\ttimestamp:float\nu\ta\t1\n",
            ["dataset.format=atomic", "dataset.kcore=5"],
            "the 5-core filter removed every interaction",
        ),
    ],
)
def test_bad_input_is_one_paragraph_exit_1_and_no_run_folder(tmp_path, name, content, overrides, message):
    path = tmp_path / name
    if content is None:
        path.mkdir()
    else:
        path.write_text(content)
    result = train(tmp_path, f"dataset.path={path}", *overrides)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    stderr = result.stderr.replace("\n", "")
    assert str(path) in stderr and re.search(message, stderr), stderr
    assert not (tmp_path / "outputs").exists()  # Hydra's run folder was removed
    assert not list((tmp_path / "data").glob("processed/*"))


def test_a_run_folder_with_other_files_is_kept(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    untouched = tmp_path / "outputs" / "runs" / "a"
    (untouched / ".hydra").mkdir(parents=True)
    (untouched / ".hydra" / "config.yaml").write_text("x: 1\n")
    (untouched / "train.log").write_text("")
    (tmp_path / "outputs" / "keep.txt").write_text("mine")
    used = tmp_path / "outputs" / "runs" / "b"
    used.mkdir()
    (used / "train.log").write_text("")
    (used / "notes.txt").write_text("mine")

    remove_unused_run_dir(untouched)
    remove_unused_run_dir(used)
    assert not untouched.exists() and used.exists()  # parents stop at a non-empty folder
    assert (tmp_path / "outputs" / "keep.txt").exists()
    remove_unused_run_dir(tmp_path)  # the working directory itself is never removed
    assert tmp_path.exists()


def test_unknown_dataset_key_is_named_with_the_closest_option():
    # `dataset.user_column=u` makes Hydra suggest `+dataset.user_column=u`, which would add a key
    # nothing reads: the run would silently use the default column
    from seqrec.data.spec import DatasetSpec
    from seqrec.errors import ConfigError

    cfg = {"name": "custom", "format": "csv", "path": "log.csv", "user_column": "u", "pretrain_epochs": 5}
    with pytest.raises(ConfigError, match=r"unknown option dataset\.user_column: .*Did you mean dataset\.user_col\?"):
        DatasetSpec.from_mapping(cfg)
    del cfg["user_column"]
    assert DatasetSpec.from_mapping(cfg).user_col == "user_id"  # pretrain_epochs is a known key


@pytest.mark.parametrize("name", ["../../escape", "my/data", "", ".hidden"])
def test_dataset_name_must_be_a_plain_name(name):
    # the name is a folder of outputs/runs/ and a file name in data/processed/
    from seqrec.data.spec import DatasetSpec
    from seqrec.errors import ConfigError

    cfg = {"name": name, "format": "csv", "path": "log.csv"}
    with pytest.raises(ConfigError, match=r"dataset\.name=.* is not valid: it must be a name of letters"):
        DatasetSpec.from_mapping(cfg)
    assert DatasetSpec.from_mapping({**cfg, "name": "my_log-2.v1"}).name == "my_log-2.v1"


def test_dataset_name_climbing_out_is_refused_before_any_folder_is_made(tmp_path):
    log = tmp_path / "log.csv"
    log.write_text("user_id,item_id,timestamp\n" + "".join(f"u,i{t},{t}\n" for t in range(5)))
    (tmp_path / "work").mkdir()  # outputs/runs/../../../escape from here is tmp_path/escape
    result = train(tmp_path / "work", f"dataset.path={log}", "dataset.name=../../../escape")
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert "dataset.name='../../../escape' is not valid" in result.stderr.replace("\n", "")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["log.csv", "work"]
    assert list((tmp_path / "work").iterdir()) == []
