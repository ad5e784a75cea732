"""From raw interactions to per-user chronological item sequences (:class:`SequenceData`).

The protocol of the CCE paper (Li et al., AAAI 2023, "Data Processing") and of the S3-Rec code
it builds on: (1) iterative k-core filter of users and items, (2) group by user and sort
chronologically, with equal timestamps kept in file order, (3) re-index items 1..N (0 = padding)
and users 0..U-1 by first appearance. Users too short for leave-one-out are dropped with one
counted warning.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd

from seqrec.data.readers import Interactions
from seqrec.errors import DataError

log = logging.getLogger(__name__)

PAD_TOKEN = "[PAD]"


@dataclass(frozen=True, eq=False)  # arrays: compare fields with np.array_equal
class SequenceData:
    """Per-user item sequences in CSR form, oldest item first.

    The sequence of user ``u`` is ``items[offsets[u]:offsets[u + 1]]``.

    Attributes:
        name: dataset name (``conf/dataset/<name>.yaml``).
        items: ``[n_interactions]`` int64 item indices in 1..n_items.
        offsets: ``[n_users + 1]`` int64, ``offsets[0] == 0``, ``offsets[-1] == len(items)``.
        n_items: size of the catalogue (item indices 1..n_items; 0 is padding).
        user_tokens: ``[n_users]`` str, raw user id of each user index.
        item_tokens: ``[n_items + 1]`` str, raw item id of each item index; ``[0]`` is "[PAD]".
        fingerprint: hex cache key of the source file + preprocessing settings.
    """

    name: str
    items: np.ndarray
    offsets: np.ndarray
    n_items: int
    user_tokens: np.ndarray
    item_tokens: np.ndarray
    fingerprint: str

    @property
    def n_users(self) -> int:
        return len(self.offsets) - 1

    @property
    def lengths(self) -> np.ndarray:
        """``[n_users]`` int64 number of interactions per user."""
        return np.diff(self.offsets)

    def sequence(self, user: int) -> np.ndarray:
        """The item indices of one user, oldest first (for inspection and tests)."""
        return self.items[self.offsets[user] : self.offsets[user + 1]]


def kcore_mask(users: np.ndarray, items: np.ndarray, k: int) -> np.ndarray:
    """Iterative k-core: rows kept once every user and item has >= k of the kept rows.

    Args:
        users, items: ``[M]`` int64 codes (0-based, dense).
        k: minimum interactions (repeats count); k <= 1 keeps everything.

    Returns:
        ``[M]`` bool mask of the rows that survive.
    """
    keep = np.ones(len(users), dtype=bool)
    if k <= 1:
        return keep
    while True:
        user_count = np.bincount(users[keep], minlength=users.max(initial=-1) + 1)
        item_count = np.bincount(items[keep], minlength=items.max(initial=-1) + 1)
        # Dropping an item can push a user below k and vice versa: repeat until nothing changes.
        survive = keep & (user_count[users] >= k) & (item_count[items] >= k)
        if survive.sum() == keep.sum():
            return survive
        keep = survive


def _warn_duplicates(inter: Interactions, name: str) -> None:
    """Log one warning when rows repeat an earlier row's user, item and timestamp.

    They stay interactions of their own (as in RecBole without ``rm_dup_inter``): a repeat at a
    later time is re-consumption, but one at the same time is usually a double log, which
    doubles the item in the user's sequence and in the k-core counts. Files without times (the
    S3-Rec format, ``time_col`` null) cannot tell the two apart and are not checked.
    """
    if inter.times is None or len(inter) == 0:
        return
    frame = pd.DataFrame({"user": inter.users, "item": inter.items, "time": inter.times})
    repeats = frame.duplicated(keep="first").to_numpy()
    if not repeats.any():
        return
    row = int(np.flatnonzero(repeats)[0])
    same = (inter.users == inter.users[row]) & (inter.items == inter.items[row]) & (inter.times == inter.times[row])
    log.warning(
        "dataset '%s' (%s): %d row(s) repeat an earlier row's user, item and time, e.g. line %d "
        "repeats line %d (user %s, item %s). Each is kept as an interaction of its own, so the "
        "item appears again in the user's sequence and counts again for the k-core "
        "filter; if they are double logs, remove them from the file first (e.g. pandas "
        "drop_duplicates on the user, item and time columns).",
        name,
        inter.path,
        int(repeats.sum()),
        inter.lines[row],
        inter.lines[int(np.flatnonzero(same)[0])],
        inter.users[row],
        inter.items[row],
    )


def _rated_at_least(inter: Interactions, min_rating: float, where: str) -> Interactions:
    """The rows of ``inter`` whose rating is ``>= min_rating`` (file order and line numbers kept).

    Raises:
        DataError: the file was read without a rating column, or no row is rated that high.
    """
    if inter.ratings is None:
        raise DataError(f"{where}: dataset.min_rating needs dataset.rating_col, the column to compare.")
    keep = inter.ratings >= min_rating
    log.info("%s: %d of %d rows have a rating >= %g (dataset.min_rating)", where, keep.sum(), len(keep), min_rating)
    if not keep.any():
        raise DataError(
            f"{where}: no row has a rating >= {min_rating:g} (dataset.min_rating); the ratings "
            f"run from {inter.ratings.min():g} to {inter.ratings.max():g}. Lower dataset.min_rating."
        )
    fields = ("users", "items", "times", "item_ids", "lines", "ratings")
    return replace(inter, **{f: None if getattr(inter, f) is None else getattr(inter, f)[keep] for f in fields})


def _kept_rows(inter: Interactions, name: str, kcore: int, min_user_interactions: int) -> np.ndarray:
    """``[n]`` bool: the interactions left after the k-core filter and the short-user drop (see
    :func:`preprocess`, which logs what they removed).

    Raises:
        DataError: a step leaves nothing.
    """
    where = f"dataset '{name}' ({inter.path})"
    user_codes, _ = pd.factorize(inter.users)
    # Dense codes also for the integer ids of S3-Rec files: kcore_mask counts with bincount, whose
    # size is the largest code, and a file id such as 9999999999 would need 80 GB.
    item_codes, _ = pd.factorize(inter.items if inter.item_ids is None else inter.item_ids)
    keep = kcore_mask(user_codes, item_codes, kcore)
    if not keep.any():
        raise DataError(
            f"{where}: the {kcore}-core filter removed every interaction (no set of users and "
            f"items has >= {kcore} interactions each). Lower dataset.kcore, or turn the filter off with "
            "dataset.kcore=0 for a file that is filtered already (an S3-Rec-format file under dataset=custom "
            "gets custom's 5-core filter unless told so)."
        )

    counts = np.bincount(user_codes[keep], minlength=user_codes.max() + 1)
    gone = np.flatnonzero(counts == 0)  # users the k-core filter removed entirely
    if len(gone):
        first = pd.unique(inter.users[np.isin(user_codes, gone)])[:5]
        log.warning(
            "dataset '%s': the %d-core filter removed %d users entirely, e.g. %s",
            name,
            kcore,
            len(gone),
            ", ".join(map(str, first)),
        )
    short = (counts > 0) & (counts < min_user_interactions)
    if short.any():
        log.warning(
            "dataset '%s': dropped %d users with fewer than %d interactions (leave-one-out "
            "needs a training, a validation and a test item)",
            name,
            int(short.sum()),
            min_user_interactions,
        )
        keep &= ~short[user_codes]
    if not keep.any():
        raise DataError(
            f"{where}: every user has fewer than {min_user_interactions} interactions after the "
            f"k-core filter (kcore={kcore}), and leave-one-out needs at least 3 per user (a "
            "training, a validation and a test item). Use a log with longer user histories, or "
            "lower dataset.kcore (0 or 1 = no filtering) if the filter removed them."
        )
    return keep


def _item_index(inter: Interactions, rows: np.ndarray) -> tuple[np.ndarray, int, np.ndarray]:
    """``(items [r] 1..N, N, item_tokens [N + 1])`` of the kept ``rows`` (the id rules of
    :func:`preprocess`; token 0 is padding)."""
    if inter.item_ids is not None:
        items = inter.item_ids[rows]
        present = np.unique(items)
        n_items = int(inter.item_ids.max())
        if len(present) == n_items:  # ids are 1..N: keep them (attributes, published checkpoints)
            return items, n_items, np.concatenate([[PAD_TOKEN], np.arange(1, n_items + 1).astype(str)])
        # gaps: rank only the items that occur, ids kept as tokens (ids.npz records them)
        items = np.searchsorted(present, items).astype(np.int64) + 1
        return items, len(present), np.concatenate([[PAD_TOKEN], present.astype(str)])
    codes, item_index = pd.factorize(inter.items[rows])
    items = codes.astype(np.int64) + 1
    return items, len(item_index), np.concatenate([[PAD_TOKEN], np.asarray(item_index, dtype=str)])


def preprocess(
    inter: Interactions,
    name: str,
    kcore: int = 5,
    min_user_interactions: int = 3,
    max_users: int | None = None,
    fingerprint: str = "",
    min_rating: float | None = None,
) -> SequenceData:
    """Keep rows rated ``min_rating`` or more, k-core filter, drop short users, sort each user's
    items by time, re-index.

    Items of the S3-Rec format (``inter.item_ids`` set) keep their ids when the items left after
    filtering are exactly 1..max id (the benchmark files: attributes and published checkpoints
    map by id); otherwise the items that occur are re-indexed 1..N in id order (never-seen ids
    are not ranked; ``item_tokens`` keeps each index's file id). Other items are re-indexed 1..N
    and users 0..U-1 by first appearance in file order after filtering. Equal timestamps keep
    file order. ``max_users`` keeps the first users only (applied last).

    Warns with counts of: users dropped for having fewer than ``min_user_interactions``
    interactions, users the k-core filter removed (the first five named), and rows repeating an
    earlier row's user, item and time (kept: :func:`_warn_duplicates`).

    Raises:
        DataError: nothing is left after a step (the message names the step and the option
            to lower).
    """
    where = f"dataset '{name}' ({inter.path})"
    if len(inter) == 0:
        raise DataError(f"{where} has no interactions; check that it is the right file.")
    if min_rating is not None:
        inter = _rated_at_least(inter, min_rating, where)
    _warn_duplicates(inter, name)
    keep = _kept_rows(inter, name, kcore, min_user_interactions)
    rows = np.flatnonzero(keep)  # increasing: file order of the filtered data
    users, user_index = pd.factorize(inter.users[rows])
    items, n_items, item_tokens = _item_index(inter, rows)

    # Stable chronological order per user: lexsort's last key is the primary one, the row
    # position breaks ties so that equal timestamps keep file order.
    position = np.arange(len(rows))
    keys = (position, users) if inter.times is None else (position, inter.times[rows], users)
    order = np.lexsort(keys)
    items = items[order].astype(np.int64)
    offsets = np.zeros(len(user_index) + 1, dtype=np.int64)
    np.cumsum(np.bincount(users, minlength=len(user_index)), out=offsets[1:])
    user_tokens = np.asarray(user_index, dtype=str)

    if max_users is not None and max_users < len(user_tokens):  # the first users, items not re-indexed
        offsets, user_tokens = offsets[: max_users + 1], user_tokens[:max_users]
        items = items[: offsets[-1]]
    return SequenceData(
        name=name,
        items=items,
        offsets=offsets,
        n_items=n_items,
        user_tokens=user_tokens,
        item_tokens=item_tokens,
        fingerprint=fingerprint,
    )
