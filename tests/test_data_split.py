"""Leave-one-out split: windows, history and negatives on a hand-written example, and the
no-leakage property on the real LastFM file."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from omegaconf import OmegaConf

from seqrec.data import split as split_module
from seqrec.data.cache import load_dataset
from seqrec.data.fetch import CONF_DIR, find_shared
from seqrec.data.preprocess import SequenceData
from seqrec.data.split import LeaveOneOut
from seqrec.errors import DataError


def make_data(seqs: list[list[int]], n_items: int) -> SequenceData:
    lengths = [len(s) for s in seqs]
    return SequenceData(
        name="hand",
        items=np.array([i for s in seqs for i in s], dtype=np.int64),
        offsets=np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64),
        n_items=n_items,
        user_tokens=np.array([f"u{u}" for u in range(len(seqs))]),
        item_tokens=np.array(["[PAD]"] + [str(i) for i in range(1, n_items + 1)]),
        fingerprint="0" * 16,
    )


@pytest.fixture
def loo() -> LeaveOneOut:
    # user 0: 7 items (inputs truncated to the last 4), user 1: 3 items (no training row),
    # user 2: 4 items (one training position).
    return LeaveOneOut.build(make_data([[1, 2, 3, 4, 5, 6, 7], [8, 9, 10], [2, 8, 4, 9]], 10), max_len=4)


def test_windows_truncate_to_the_most_recent_items_and_left_pad(loo):
    assert loo.train_users.tolist() == [0, 2]
    assert loo.train_input.tolist() == [[1, 2, 3, 4], [0, 0, 0, 2]]
    assert loo.train_target.tolist() == [[2, 3, 4, 5], [0, 0, 0, 8]]
    assert loo.valid_input.tolist() == [[2, 3, 4, 5], [0, 0, 0, 8], [0, 0, 2, 8]]
    assert loo.valid_target.tolist() == [6, 9, 4]
    assert loo.test_input.tolist() == [[3, 4, 5, 6], [0, 0, 8, 9], [0, 2, 8, 4]]
    assert loo.test_target.tolist() == [7, 10, 9]
    for name in (
        "train_input",
        "train_target",
        "train_users",
        "valid_input",
        "valid_target",
        "test_input",
        "test_target",
        "items",
        "offsets",
    ):
        assert getattr(loo, name).dtype == torch.int64, name
    assert loo.n_items == 10 and loo.max_len == 4 and loo.n_users == 3


def test_long_window_pads_everything(loo):
    wide = LeaveOneOut.build(make_data([[1, 2, 3, 4, 5]], 5), max_len=6)
    assert wide.train_input.tolist() == [[0, 0, 0, 0, 1, 2]]
    assert wide.train_target.tolist() == [[0, 0, 0, 0, 2, 3]]
    assert wide.test_input.tolist() == [[0, 0, 1, 2, 3, 4]]


def test_history_is_the_full_past_of_each_split(loo):
    rows, items = loo.history(torch.tensor([2, 0]), "valid")
    assert rows.tolist() == [0, 0, 1, 1, 1, 1, 1]
    assert items.tolist() == [2, 8, 1, 2, 3, 4, 5]  # all of s[:-2], not only the last 4
    rows, items = loo.history(torch.tensor([1, 0]), "test")
    assert rows.tolist() == [0, 0] + [1] * 6
    assert items.tolist() == [8, 9, 1, 2, 3, 4, 5, 6]
    with pytest.raises(ValueError):
        loo.history(torch.tensor([0]), "train")


def test_negatives_avoid_the_training_part_and_repeat_with_a_seed(loo):
    users = torch.tensor([0, 1, 2, 0])

    def draw(seed):
        return loo.sample_negatives(users, (50, 3), torch.Generator().manual_seed(seed))

    neg = draw(0)
    assert neg.shape == (4, 50, 3) and neg.dtype == torch.int64
    assert neg.min() >= 1 and neg.max() <= 10
    train_parts = {0: {1, 2, 3, 4, 5}, 1: {8}, 2: {2, 8}}
    for row, user in enumerate(users.tolist()):
        assert not set(neg[row].unique().tolist()) & train_parts[user]
    assert set(neg[0].unique().tolist()) == {6, 7, 8, 9, 10}  # the valid/test items may be drawn
    assert torch.equal(neg, draw(0)) and not torch.equal(neg, draw(1))


def test_exact_fallback_is_uniform_over_free_items(monkeypatch):
    monkeypatch.setattr(split_module, "_REJECTION_ROUNDS", 0)  # every collision goes exact
    loo = LeaveOneOut.build(make_data([[2, 4, 2, 5, 1], [1, 2, 3, 4, 5, 6, 6]], 6), max_len=3)
    neg = loo.sample_negatives(torch.tensor([0, 1]), (6000,), torch.Generator().manual_seed(3))
    counts = torch.bincount(neg[0], minlength=7).tolist()
    assert counts[0] == counts[2] == counts[4] == 0  # training part s[:-2] = {2, 4}
    assert all(1350 < counts[i] < 1650 for i in (1, 3, 5, 6))  # 1500 each expected
    assert neg[1].unique().tolist() == [6]  # the only item outside {1, ..., 5}


def test_no_negative_left_is_an_error_naming_the_raw_user_and_the_options():
    loo = LeaveOneOut.build(make_data([[1, 2, 3], [1, 2, 3, 1, 2]], 3), max_len=3)
    with pytest.raises(DataError, match=r"user 'u1' has interacted with all 3 items.*loss=ce.*dataset\.kcore"):
        loo.sample_negatives(torch.tensor([0, 1]), (2,), torch.Generator().manual_seed(0))


def test_too_short_user_is_an_error():
    with pytest.raises(DataError, match="user u1 has 2 interactions.*min_user_interactions"):
        LeaveOneOut.build(make_data([[1, 2, 3], [1, 2]], 3))


def test_to_moves_every_tensor(loo):
    moved = loo.to("cpu")
    assert moved is not loo and torch.equal(moved.test_input, loo.test_input)
    assert moved.n_items == loo.n_items


# --- real data ------------------------------------------------------------------------------

LASTFM = "s3rec/LastFM.txt"


@pytest.mark.realdata
@pytest.mark.skipif(
    find_shared(LASTFM) is None,
    reason=f"{LASTFM} is in no shared data folder (set SEQREC_SHARED_DATA "
    "to a folder that holds it, e.g. data/ after `make data`)",
)
def test_real_lastfm_has_no_leakage(tmp_path):
    cfg = OmegaConf.load(CONF_DIR / "lastfm.yaml")
    data = load_dataset(cfg, tmp_path)  # copied from the shared folder into tmp_path
    assert (data.n_users, data.n_items, len(data.items)) == (1090, 3646, 52551)
    raw = [line.split() for line in (tmp_path / cfg.path).read_text().splitlines() if line.strip()]
    assert data.user_tokens.tolist() == [r[0] for r in raw]

    L = cfg.max_len
    loo = LeaveOneOut.build(data, L)
    train_row = {u: r for r, u in enumerate(loo.train_users.tolist())}

    def padded(seq: list[int]) -> list[int]:
        seq = seq[-L:]
        return [0] * (L - len(seq)) + seq

    for u, tokens in enumerate(raw):
        s = [int(t) for t in tokens[1:]]  # item ids are kept as indices
        n = len(s)
        assert loo.test_target[u] == s[n - 1] and loo.valid_target[u] == s[n - 2]
        assert loo.valid_input[u].tolist() == padded(s[: n - 2])
        assert loo.test_input[u].tolist() == padded(s[: n - 1])
        if n == 3:
            assert u not in train_row
            continue
        r = train_row[u]
        assert loo.train_input[r].tolist() == padded(s[: n - 3])
        assert loo.train_target[r].tolist() == padded(s[1 : n - 2])

    # Positions, not item values (items repeat): replace every interaction by its own id
    # (global position + 1) and check that no position >= n-2 of a user reaches training.
    positions = np.arange(1, len(data.items) + 1)
    tagged = LeaveOneOut.build(
        SequenceData(
            name="positions",
            items=positions,
            offsets=data.offsets,
            n_items=len(positions),
            user_tokens=data.user_tokens,
            item_tokens=np.arange(len(positions) + 1).astype(str),
            fingerprint="",
        ),
        L,
    )
    first_held_out = torch.from_numpy(data.offsets[1:] - 2 + 1)  # id of s[n-2] per user
    limit = first_held_out[tagged.train_users][:, None]  # [U_tr, 1]
    assert (tagged.train_input < limit).all() and (tagged.train_target < limit).all()
    assert (tagged.valid_input < first_held_out[:, None]).all()
    assert (tagged.valid_target == first_held_out).all()
    assert (tagged.test_target == first_held_out + 1).all()


def test_csr_windows_and_row_expansion_on_a_hand_example():
    from seqrec.data.csr import expand, row_item_pairs, windows

    items = torch.tensor([5, 6, 7, 8, 9, 3, 4])  # rows [5 6 7 8 9], [], [3 4]
    lo, hi = torch.tensor([0, 5, 5]), torch.tensor([5, 5, 7])
    assert windows(items, lo, hi, 3).tolist() == [[7, 8, 9], [0, 0, 0], [0, 3, 4]]
    assert windows(items, lo, hi - 1, 6).tolist() == [[0, 0, 5, 6, 7, 8], [0, 0, 0, 0, 0, 0], [0, 0, 0, 0, 0, 3]]
    rows, within = expand(torch.tensor([2, 0, 3]))
    assert rows.tolist() == [0, 0, 2, 2, 2] and within.tolist() == [0, 1, 0, 1, 2]
    rows, found = row_item_pairs(items, lo, hi)
    assert rows.tolist() == [0, 0, 0, 0, 0, 2, 2] and found.tolist() == [5, 6, 7, 8, 9, 3, 4]
    assert windows(torch.zeros(0, dtype=torch.long), lo[:1] * 0, lo[:1] * 0, 2).tolist() == [[0, 0]]
