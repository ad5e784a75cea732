"""Preprocessing (k-core, stable chronological order, re-indexing, short users), the config
spec, the cache and the fetcher — on tiny hand-written logs, plus the real ml-100k log."""

from __future__ import annotations

import re
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from omegaconf import OmegaConf

from seqrec.data import cache as cache_module
from seqrec.data.cache import load_dataset
from seqrec.data.fetch import CONF_DIR, ensure_file, find_shared, main
from seqrec.data.preprocess import kcore_mask, preprocess
from seqrec.data.readers import read_atomic, read_csv, read_s3rec
from seqrec.data.spec import DatasetSpec
from seqrec.errors import ConfigError, DataError


def log(tmp_path: Path, rows: list[tuple], name: str = "log.csv") -> Path:
    """A CSV log with columns user_id,item_id,timestamp from ``rows``."""
    path = tmp_path / name
    path.write_text("user_id,item_id,timestamp\n" + "".join(f"{u},{i},{t}\n" for u, i, t in rows))
    return path


def same(a, b) -> bool:
    """Two SequenceData hold the same values."""
    return (
        a.name == b.name
        and a.n_items == b.n_items
        and a.fingerprint == b.fingerprint
        and all(
            np.array_equal(getattr(a, f), getattr(b, f)) for f in ("items", "offsets", "user_tokens", "item_tokens")
        )
    )


def sequences(data) -> dict[str, list[str]]:
    """user token -> item tokens, oldest first."""
    return {data.user_tokens[u]: data.item_tokens[data.sequence(u)].tolist() for u in range(data.n_users)}


# --- k-core, order, re-indexing --------------------------------------------------------------


def test_kcore_needs_several_passes():
    # k=2. Pass 1 drops u4 (1 row) -> item c falls to 1 -> pass 2 drops (u3, c) -> u3 falls to 1
    # -> pass 3 drops (u3, b). Only u1 and u2 with items a, b survive.
    users = np.array([0, 0, 1, 1, 2, 2, 3])  # u1 u1 u2 u2 u3 u3 u4
    items = np.array([0, 1, 0, 1, 1, 2, 2])  # a  b  a  b  b  c  c
    assert kcore_mask(users, items, 2).tolist() == [True] * 4 + [False] * 3
    assert kcore_mask(users, items, 1).all() and kcore_mask(users, items, 0).all()


def test_kcore_counts_repeats():
    users, items = np.array([0, 0, 1]), np.array([0, 0, 0])
    # u0 bought item a twice: 2 interactions, kept; u1 has 1 and goes; a still has 2.
    assert kcore_mask(users, items, 2).tolist() == [True, True, False]


def test_preprocess_sorts_stably_and_reindexes_by_first_appearance(tmp_path):
    rows = [
        ("u2", "z", 9),
        ("u1", "x", 5),
        ("u1", "y", 3),
        ("u2", "gone", 1),
        ("u1", "z", 5),
        ("u1", "w", 3),
        ("u2", "x", 1),
        ("u2", "y", 2),
    ]
    data = preprocess(read_csv(log(tmp_path, rows)), "t", kcore=0)
    assert data.user_tokens.tolist() == ["u2", "u1"]  # first appearance in file order
    assert data.item_tokens.tolist() == ["[PAD]", "z", "x", "y", "gone", "w"]
    # Equal timestamps keep file order: y before w (t=3), x before z (t=5).
    assert sequences(data) == {"u2": ["gone", "x", "y", "z"], "u1": ["y", "w", "x", "z"]}
    assert data.offsets.tolist() == [0, 4, 8] and data.lengths.tolist() == [4, 4]
    assert data.items.dtype == np.int64 and data.items.min() == 1


def test_rows_repeating_user_item_and_time_are_kept_and_counted(tmp_path, caplog):
    # A double-logged row (same user, item, time) doubles the item in the sequence; it used to
    # pass without a word. Re-consumption at another time (u, a at 9) is not reported.
    rows = [("u", "a", 1), ("u", "b", 2), ("v", "a", 1), ("u", "b", 2), ("u", "c", 3), ("u", "b", 2), ("u", "a", 9)]
    data = preprocess(read_csv(log(tmp_path, rows)), "t", kcore=0, min_user_interactions=1)
    assert sequences(data)["u"] == ["a", "b", "b", "b", "c", "a"]
    assert "2 row(s) repeat an earlier row's user, item and time, e.g. line 5 repeats line 3 (user u, item b)" in (
        caplog.text
    )


def test_no_repeat_warning_without_times(tmp_path, caplog):
    path = tmp_path / "log.csv"
    path.write_text("user_id,item_id\nu,a\nu,a\nu,b\n")
    preprocess(read_csv(path, time_col=None), "t", kcore=0)
    assert "repeat" not in caplog.text


def test_reindexing_ignores_filtered_items(tmp_path):
    # With k=2, user c and its item "rare" (first in the file) are removed; indices start at
    # the first surviving item.
    rows = [("c", "rare", 1), ("a", "p", 1), ("a", "q", 2), ("b", "q", 3), ("b", "p", 4), ("a", "p", 5), ("b", "q", 6)]
    data = preprocess(read_csv(log(tmp_path, rows)), "t", kcore=2)
    assert data.item_tokens.tolist() == ["[PAD]", "p", "q"]
    assert sequences(data) == {"a": ["p", "q", "p"], "b": ["q", "p", "q"]}
    assert data.n_items == 2


def test_short_users_dropped_with_one_counted_warning(tmp_path, caplog):
    rows = [("a", "x", 1), ("a", "y", 2), ("a", "z", 3), ("b", "x", 1), ("b", "y", 2), ("c", "z", 1)]
    data = preprocess(read_csv(log(tmp_path, rows)), "t", kcore=0)
    warned = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert len(warned) == 1 and warned[0].startswith("dataset 't': dropped 2 users with fewer than 3 interactions")
    assert data.user_tokens.tolist() == ["a"]


def test_empty_after_kcore_names_the_option(tmp_path):
    rows = [("a", "x", 1), ("b", "y", 2)]
    with pytest.raises(DataError, match=r"5-core filter removed every interaction.*dataset\.kcore=0"):
        preprocess(read_csv(log(tmp_path, rows)), "t", kcore=5)


def test_empty_after_short_user_drop_says_why(tmp_path, caplog):
    rows = [("a", "x", 1), ("b", "y", 2)]
    with pytest.raises(DataError, match="fewer than 3 interactions.*leave-one-out needs at least 3"):
        preprocess(read_csv(log(tmp_path, rows)), "t", kcore=0)
    assert "dropped 2 users with fewer than 3 interactions" in caplog.text


def test_max_users_keeps_the_first_users(tmp_path):
    rows = [
        (u, i, t)
        for t, (u, i) in enumerate(
            [("a", "x"), ("b", "y"), ("a", "y"), ("b", "x"), ("a", "z"), ("b", "z"), ("c", "w"), ("c", "x"), ("c", "y")]
        )
    ]
    data = preprocess(read_csv(log(tmp_path, rows)), "t", kcore=0, max_users=2)
    assert data.user_tokens.tolist() == ["a", "b"] and data.offsets.tolist() == [0, 3, 6]
    assert data.n_items == 4 and len(data.item_tokens) == 5  # catalogue not re-indexed


def test_s3rec_keeps_item_ids_when_they_are_1_to_n(tmp_path, caplog):
    path = tmp_path / "T.txt"
    path.write_text("10 5 2 4\n11 2 5\n12 1 2 3\n")
    data = preprocess(read_s3rec(path), "t", kcore=0)
    assert "dropped 1 users" in caplog.text
    assert data.user_tokens.tolist() == ["10", "12"]
    assert data.items.tolist() == [5, 2, 4, 1, 2, 3]  # item i stays index i
    assert data.n_items == 5 and data.item_tokens.tolist() == ["[PAD]", "1", "2", "3", "4", "5"]


def test_s3rec_ids_with_gaps_rank_only_the_items_that_occur(tmp_path):
    # ids 1, 2, 3, 5, 9 occur (4, 6, 7, 8 never do): 5 items, ids kept as tokens in id order
    path = tmp_path / "T.txt"
    path.write_text("10 5 2 9\n12 1 2 3\n")
    data = preprocess(read_s3rec(path), "t", kcore=0)
    assert data.n_items == 5 and data.item_tokens.tolist() == ["[PAD]", "1", "2", "3", "5", "9"]
    assert data.items.tolist() == [4, 2, 5, 1, 2, 3]


def test_kcore_on_s3rec_ids_far_beyond_the_item_count(tmp_path):
    # The k-core filter counted S3-Rec items by their file id: id 9999999999 asked for an
    # 80 GB bincount (MemoryError). Counting is by dense code now; ids stay tokens.
    path = tmp_path / "T.txt"
    path.write_text("1 9999999999 2 3\n2 2 3 9999999999\n3 2 7 3\n")
    data = preprocess(read_s3rec(path), "t", kcore=2)
    assert sequences(data) == {"1": ["9999999999", "2", "3"], "2": ["2", "3", "9999999999"]}
    assert data.item_tokens.tolist() == ["[PAD]", "2", "3", "9999999999"]


def test_kcore_names_the_users_it_removes(tmp_path, caplog):
    rows = [
        (u, i, t) for t, (u, i) in enumerate([("a", "x"), ("a", "y"), ("b", "x"), ("b", "y"), ("c", "z"), ("c", "x")])
    ]
    preprocess(read_csv(log(tmp_path, rows)), "t", kcore=2, min_user_interactions=2)
    # z has one interaction: c loses it, then x and y keep 2 each, c keeps 1 < 2 and goes
    assert "the 2-core filter removed 1 users entirely, e.g. c" in caplog.text


def test_min_rating_keeps_the_rows_rated_that_high_before_the_kcore_filter(tmp_path, caplog):
    caplog.set_level("INFO")
    path = tmp_path / "r.csv"
    rows = [
        ("u", "a", 5, 1),
        ("u", "b", 2, 2),
        ("u", "c", 4, 3),
        ("u", "d", 4.5, 4),
        ("v", "a", 1, 1),
        ("v", "c", 4, 2),
    ]
    rows += [("v", "d", 5, 3), ("v", "e", 4, 4)]
    path.write_text("user_id,item_id,rating,timestamp\n" + "".join(f"{u},{i},{r},{t}\n" for u, i, r, t in rows))
    inter = read_csv(path, rating_col="rating")
    assert inter.ratings.tolist() == [5, 2, 4, 4.5, 1, 4, 5, 4]
    data = preprocess(inter, "r", kcore=0, min_user_interactions=3, min_rating=4)
    assert sequences(data) == {"u": ["a", "c", "d"], "v": ["c", "d", "e"]}  # b (2) and v's a (1) gone
    assert "6 of 8 rows have a rating >= 4 (dataset.min_rating)" in caplog.text
    with pytest.raises(DataError, match=r"no row has a rating >= 6 .dataset.min_rating.; the ratings run from 1 to 5"):
        preprocess(inter, "r", kcore=0, min_rating=6)
    path.write_text("user_id,item_id,rating\nu,a,5\nu,b,\nu,c,NA\n")
    with pytest.raises(DataError, match=r"line 3: the 'rating' field .dataset.rating_col. is '', not a number .2 row"):
        read_csv(path, time_col=None, rating_col="rating")


def test_min_rating_enters_the_cache_key_only_when_set():
    base = {"name": "c", "format": "csv", "path": "x.csv"}
    plain_settings = DatasetSpec.from_mapping(base).preprocessing_settings()
    assert "rating_col" not in plain_settings and "min_rating" not in plain_settings  # old keys unchanged
    four = DatasetSpec.from_mapping({**base, "rating_col": "rating", "min_rating": 4})
    assert (
        four.preprocessing_settings()
        == DatasetSpec.from_mapping({**base, "rating_col": "rating", "min_rating": 4.0}).preprocessing_settings()
    )
    for bad, message in [
        ({"min_rating": 4}, "min_rating is set but rating_col is not"),
        ({"rating_col": "rating"}, "rating_col is set but min_rating is not"),
        ({"rating_col": "item_id", "min_rating": 1}, "item_col and rating_col are both column 'item_id'"),
        ({"format": "s3rec", "rating_col": "r", "min_rating": 1}, "an S3-Rec file has no columns"),
    ]:
        with pytest.raises(ConfigError, match=message):
            DatasetSpec.from_mapping({**base, **bad})


@pytest.mark.realdata
def test_ml100k_with_ratings_of_4_and_5_only(tmp_path, shared_data):
    cfg = OmegaConf.to_container(OmegaConf.load(CONF_DIR / "ml100k.yaml"))
    if not (shared_data / cfg["path"]).is_file():
        pytest.skip(f"ml-100k not in {shared_data} (make data)")
    raw = pd.read_csv(shared_data / cfg["path"], sep="\t")
    liked = raw[raw["rating:float"] >= 4]
    data = load_dataset(
        {**cfg, "rating_col": "rating", "min_rating": 4, "kcore": 0, "min_user_interactions": 3}, tmp_path / "d"
    )
    assert len(data.items) == len(liked[liked.groupby("user_id:token")["item_id:token"].transform("size") >= 3])


# --- config spec ----------------------------------------------------------------------------


def test_every_dataset_config_is_valid():
    # custom.yaml is the template for the user's own log: its path is a required override
    configs = {p.stem: OmegaConf.load(p) for p in CONF_DIR.glob("*.yaml") if p.stem != "custom"}
    assert set(configs) >= {"beauty", "sports", "toys", "yelp", "lastfm", "ml100k"}
    for name, cfg in configs.items():
        spec = DatasetSpec.from_mapping(cfg)
        assert spec.name == name and spec.min_user_interactions == 3 and spec.max_len == 50
        assert spec.kcore == (5 if spec.format == "atomic" else 0)
    assert DatasetSpec.from_mapping(configs["ml100k"]).sep == "\t"


@pytest.mark.parametrize(
    "fmt, given, sep",
    [
        ("atomic", None, "\t"),
        ("csv", None, ","),  # custom.yaml leaves sep to the format
        ("csv", "\\t", "\t"),
        ("atomic", "tab", "\t"),  # `dataset.sep='\t'` reaches us as backslash-t
        ("csv", "::", "::"),
        ("csv", "|", "|"),
    ],
)
def test_separator_defaults_by_format_and_tab_escape(fmt, given, sep):
    from conftest import compose_config

    overrides = ["dataset=custom", "dataset.path=/x/log", f"dataset.format={fmt}"]
    cfg = compose_config(overrides + ([f"dataset.sep='{given}'"] if given else []))
    assert DatasetSpec.from_mapping(cfg.dataset).sep == sep


def test_separator_with_a_line_break_is_refused():
    with pytest.raises(
        ConfigError, match=re.escape("invalid dataset.sep='\\n': sep is '\\n'; a field separator cannot")
    ):
        DatasetSpec.from_mapping({"name": "x", "format": "csv", "path": "x", "sep": "\n"})


def test_user_and_item_column_must_differ():
    cfg = {"name": "x", "format": "csv", "path": "x", "item_col": "user_id"}
    with pytest.raises(
        ConfigError,
        match="invalid dataset.user_col='user_id', dataset.item_col='user_id': "
        "user_col and item_col are both column 'user_id'",
    ):
        DatasetSpec.from_mapping(cfg)


def test_unknown_format_lists_the_valid_ones():
    with pytest.raises(
        ConfigError, match="dataset.format='parquet' is not valid: it must be one of s3rec, atomic, csv"
    ):
        DatasetSpec.from_mapping({"name": "x", "format": "parquet", "path": "x.pq"})


def test_bad_option_type_is_named():
    with pytest.raises(ConfigError, match="dataset.kcore='five' is not valid: it must be a whole number >= 0"):
        DatasetSpec.from_mapping({"name": "x", "format": "csv", "path": "x", "kcore": "five"})


# --- cache and fetch ------------------------------------------------------------------------


@pytest.fixture
def shared(tmp_path, monkeypatch) -> Path:
    """A private shared folder (SEQREC_SHARED_DATA) with a tiny CSV log."""
    folder = tmp_path / "shared"
    folder.mkdir()
    rows = [
        (u, i, t)
        for t, (u, i) in enumerate([("a", "x"), ("a", "y"), ("b", "y"), ("a", "z"), ("b", "x"), ("b", "z"), ("a", "x")])
    ]
    log(folder, rows, "tiny.csv")
    monkeypatch.setenv("SEQREC_SHARED_DATA", str(folder))
    return folder


TINY = {"name": "tiny", "format": "csv", "path": "tiny.csv", "kcore": 0}


def test_cache_round_trip_and_truncated_cache_rebuilt(shared, tmp_path, monkeypatch):
    data_dir = tmp_path / "data"
    first = load_dataset(TINY, data_dir)
    copied = data_dir / "tiny.csv"
    assert copied.is_file() and not copied.is_symlink()
    (cached,) = (data_dir / "processed").glob("tiny-*.npz")
    assert cached.name == f"tiny-{first.fingerprint}.npz" and len(first.fingerprint) == 16

    def no_rebuild(*args, **kwargs):
        raise AssertionError("the cache should have been used")

    with monkeypatch.context() as m:
        m.setattr(cache_module, "preprocess", no_rebuild)
        again = load_dataset(TINY, data_dir)
    assert same(again, first)

    cached.write_bytes(cached.read_bytes()[:100])  # a partial write
    rebuilt = load_dataset(TINY, data_dir)
    assert same(rebuilt, first)
    assert len(cached.read_bytes()) > 100
    assert not list((data_dir / "processed").glob("*.tmp"))


def test_cache_key_changes_with_settings_and_file(shared, tmp_path, caplog):
    data_dir = tmp_path / "data"
    keys = {load_dataset(TINY, data_dir).fingerprint, load_dataset({**TINY, "max_users": 1}, data_dir).fingerprint}
    (data_dir / "tiny.csv").write_text((data_dir / "tiny.csv").read_text() + "c,x,99\n")
    keys.add(load_dataset(TINY, data_dir).fingerprint)
    assert "dropped 1 users" in caplog.text  # the new user c has 1 item
    assert len(keys) == 3


def test_what_preprocessing_reported_is_logged_again_when_the_cache_is_used(shared, tmp_path, caplog, monkeypatch):
    data_dir = tmp_path / "data"
    (shared / "tiny.csv").write_text((shared / "tiny.csv").read_text() + "c,x,99\n")  # c: 1 interaction
    load_dataset(TINY, data_dir)
    built = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert any("dropped 1 users" in m for m in built)
    caplog.clear()
    with monkeypatch.context() as m:
        m.setattr(cache_module, "preprocess", lambda *a, **k: pytest.fail("the cache should have been used"))
        load_dataset(TINY, data_dir)
    again = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert [m.split(" [reported when ")[0] for m in again] == built
    assert all(
        m.endswith(f"[reported when tiny-{load_dataset(TINY, data_dir).fingerprint}.npz was built]") for m in again
    )


def test_fetch_from_zip_url(tmp_path, monkeypatch):
    monkeypatch.setenv("SEQREC_SHARED_DATA", str(tmp_path / "nowhere"))
    archive = tmp_path / "pack.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("pack/a.inter", "user_id:token\titem_id:token\nu\ti\n")
        zf.writestr("pack/a.item", "item_id:token\ni\n")
    url = archive.as_uri()
    data_dir = tmp_path / "data"
    inter = ensure_file(data_dir, "raw/a/a.inter", url, "pack/a.inter")
    item = ensure_file(data_dir, "raw/a/a.item", url, "a.item")  # a base name is enough
    assert inter.read_text().startswith("user_id:token")
    assert item.read_text() == "item_id:token\ni\n"
    with pytest.raises(DataError, match="has no member 'b.inter'"):
        ensure_file(data_dir, "raw/a/b.inter", url, "b.inter")


def test_offline_error_names_file_url_and_remedies(tmp_path, monkeypatch):
    monkeypatch.setenv("SEQREC_SHARED_DATA", str(tmp_path / "nowhere"))
    url = (tmp_path / "missing" / "X.txt").as_uri()
    with pytest.raises(DataError) as err:
        ensure_file(tmp_path / "data", "s3rec/X.txt", url)
    message = str(err.value)
    assert "X.txt" in message and url in message and "SEQREC_SHARED_DATA" in message
    assert str(tmp_path / "data" / "s3rec" / "X.txt") in message


def test_no_user_with_a_training_pair_is_an_error_and_not_cached(shared, tmp_path):
    log(shared, [("a", "x", 1), ("a", "y", 2), ("a", "z", 3), ("b", "x", 1), ("b", "y", 2), ("b", "z", 3)], "three.csv")
    with pytest.raises(
        DataError,
        match=r"three.csv.: all 2 users left have at most 3 "
        "interactions.*no training pair",
    ):
        load_dataset({**TINY, "path": "three.csv"}, tmp_path / "data")
    assert not list((tmp_path / "data").glob("processed/*"))


def test_directory_as_dataset_path_is_a_clear_error(tmp_path):
    folder = tmp_path / "ml-1m"
    folder.mkdir()
    (folder / "ratings.dat").write_text("1::2::5::3\n")
    cfg = {**TINY, "path": str(folder)}
    with pytest.raises(
        DataError,
        match=f"{folder} is a directory .it holds ratings.dat.; "
        f"dataset.path must name the interaction file itself, "
        f"e.g. dataset.path={folder / 'ratings.dat'}",
    ):
        load_dataset(cfg, tmp_path / "data")


def test_missing_absolute_path_creates_no_folders(tmp_path, monkeypatch):
    monkeypatch.setenv("SEQREC_SHARED_DATA", str(tmp_path / "none"))
    missing = tmp_path / "typo" / "deeper" / "log.csv"
    with pytest.raises(DataError, match=f"{missing} does not exist. Check dataset.path"):
        load_dataset({**TINY, "path": str(missing)}, tmp_path / "data")
    assert not (tmp_path / "typo").exists() and not (tmp_path / "data").exists()


def test_path_relative_to_the_working_directory_gets_the_absolute_path(tmp_path, monkeypatch):
    monkeypatch.setenv("SEQREC_SHARED_DATA", str(tmp_path / "none"))
    monkeypatch.chdir(tmp_path)
    log(tmp_path, [("a", "x", 1)], "mine.csv")
    with pytest.raises(
        DataError,
        match=f"but {tmp_path / 'mine.csv'} does: dataset.path is "
        f"relative to the data directory .*dataset.path="
        f"{tmp_path / 'mine.csv'}",
    ):
        load_dataset({**TINY, "path": "mine.csv"}, Path("data"))


def test_refuses_to_write_into_the_shared_folder(shared):
    with pytest.raises(DataError, match="never writes to"):
        load_dataset(TINY, shared)


# --- real data ------------------------------------------------------------------------------

ML100K = "raw/ml-100k/ml-100k.inter"
needs_ml100k = pytest.mark.skipif(
    find_shared(ML100K) is None,
    reason=f"{ML100K} is in no shared data folder (set SEQREC_SHARED_DATA to a folder that "
    "holds it, e.g. data/ after `make data`)",
)


@pytest.mark.realdata
@needs_ml100k
def test_real_ml100k_read_and_5core_is_stable(tmp_path):
    cfg = OmegaConf.load(CONF_DIR / "ml100k.yaml")
    path = ensure_file(tmp_path, cfg.path)
    inter = read_atomic(path, cfg.user_col, cfg.item_col, cfg.time_col, cfg.sep)
    assert len(inter) == 100_000
    assert len(set(inter.users)) == 943 and len(set(inter.items)) == 1682
    data = load_dataset(cfg, tmp_path)
    users = np.repeat(np.arange(data.n_users), data.lengths)
    assert kcore_mask(users, data.items - 1, 5).all()  # a second pass removes nothing
    assert data.lengths.min() >= 5 and np.bincount(data.items)[1:].min() >= 5
    assert data.item_tokens[0] == "[PAD]" and len(data.item_tokens) == data.n_items + 1
    # Each user's sequence is chronological, and ties keep file order.
    frame = pd.DataFrame({"u": inter.users, "i": inter.items, "t": inter.times})
    frame = frame[frame.u == data.user_tokens[0]].sort_values("t", kind="stable")
    kept = set(data.item_tokens[1:])
    assert data.item_tokens[data.sequence(0)].tolist() == [i for i in frame.i if i in kept]


@pytest.mark.realdata
@pytest.mark.skipif(
    find_shared("s3rec/LastFM.txt") is None,
    reason="s3rec/LastFM.txt is in no shared data folder (set SEQREC_SHARED_DATA "
    "to a folder that holds it, e.g. data/ after `make data`)",
)
def test_fetch_cli_copies_lastfm(tmp_path, capsys):
    assert main(["lastfm", "--data-dir", str(tmp_path)]) == 0
    for rel in ("s3rec/LastFM.txt", "s3rec/LastFM_item2attributes.json"):
        assert (tmp_path / rel).is_file() and not (tmp_path / rel).is_symlink()
        assert (tmp_path / rel).read_bytes() == find_shared(rel).read_bytes()
    assert main(["nosuch", "--data-dir", str(tmp_path)]) == 1
    assert "unknown dataset 'nosuch'" in capsys.readouterr().err


def test_a_delimited_reader_change_renews_only_the_keys_of_delimited_files(tmp_path, monkeypatch):
    # the CSV reader's fixes (repeated header lines, 'UTC') change what such files give, so their
    # cached data must not be reused; the S3-Rec benchmark files' keys, which runs, results/ and
    # pre-trained models carry, must stay
    from seqrec.data import cache

    (tmp_path / "log.csv").write_text("user_id,item_id,timestamp\n1,2,3\n")
    (tmp_path / "s3.txt").write_text("1 1 2 3\n")
    csv_spec = DatasetSpec.from_mapping({"name": "x", "format": "csv", "path": "log.csv"})
    s3_spec = DatasetSpec.from_mapping({"name": "y", "format": "s3rec", "path": "s3.txt"})
    before = cache.fingerprint(tmp_path / "log.csv", csv_spec), cache.fingerprint(tmp_path / "s3.txt", s3_spec)
    monkeypatch.setattr(cache, "DELIMITED_VERSION", "next")
    after = cache.fingerprint(tmp_path / "log.csv", csv_spec), cache.fingerprint(tmp_path / "s3.txt", s3_spec)
    assert before[0] != after[0] and before[1] == after[1]
