"""A finished run as a recommender: ``seqrec.load_run(path)`` → :class:`Recommender`.

Raw ids in, raw ids out. The model is rebuilt from the run folder alone: ``config.yaml`` (the
resolved config), ``best.pt`` (the selected state) and ``ids.npz`` (the raw item and user ids
that preprocessing re-indexed to 1..N and 0..U-1; written by every run since this module
exists). Only recommendations for *known users* need their sequences, which come from the
run's dataset (the processed cache in ``data_dir``), checked against the ``data_fingerprint`` of
``metrics.json``. A run folder without ``ids.npz`` (older code) takes its item ids from there too.

The lists follow the tie rule and memory bound of :mod:`seqrec.recommend.topk`.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Mapping
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from omegaconf import DictConfig

from seqrec.data.csr import row_item_pairs
from seqrec.devices import resolve_device
from seqrec.errors import DataError, SeqrecError
from seqrec.recommend.topk import recommend_csr, score_csr
from seqrec.runs.rundir import load_checked_dataset, read_run

log = logging.getLogger(__name__)

AS_OF = {"all": 0, "valid": 2, "test": 1}  # items cut from the end of a known user's sequence
Sequences = Mapping[object, Iterable] | Iterable[Iterable]


def _few(values, n: int = 5) -> str:
    """``'a', 'b', 'c'`` (and how many more)."""
    values = list(values)
    shown = ", ".join(repr(str(v)) for v in values[:n])
    return shown + (f" and {len(values) - n} more" if len(values) > n else "")


class Recommender:
    """Top-k lists and scores from a trained model, with raw ids.

    Args:
        model: the trained model (eval mode) on ``device``.
        item_tokens: ``[N + 1]`` raw item id of each item index (``[0]`` = padding, never used).
        max_len: the model's input window.
        cfg: the run's resolved config (for known users: dataset and ``data_dir``).
        run_dir: the run folder (messages; ``metrics.json``'s data fingerprint).
        data_dir: where the run's dataset is (default: the run's ``data_dir``).
        batch_size: sequences scored at once, or ``"auto"`` (default: the run's ``eval.batch_size``).
        fingerprint: the run's ``data_fingerprint``; known users' data must have it.
    """

    def __init__(
        self,
        model: torch.nn.Module,
        item_tokens: np.ndarray,
        max_len: int,
        cfg: DictConfig | None = None,
        run_dir: Path | None = None,
        data_dir: str | os.PathLike | None = None,
        batch_size: int | str | None = None,
        fingerprint: str | None = None,
    ):
        self.model = model
        self.item_tokens = np.asarray(item_tokens, dtype=str)
        self.max_len = int(max_len)
        self.cfg, self.run_dir, self.fingerprint = cfg, run_dir, fingerprint
        self.data_dir = Path(data_dir) if data_dir is not None else (Path(cfg.data_dir) if cfg is not None else None)
        self.batch_size = (
            batch_size
            if batch_size is not None
            else (cfg.get("eval", {}).get("batch_size", "auto") if cfg is not None else "auto")
        )
        self.device = next(model.parameters()).device
        # raw id -> index 1..N; "[PAD]" (index 0) is not an item
        self.index = pd.Index(self.item_tokens[1:])
        self._data = None

    @property
    def n_items(self) -> int:
        return len(self.item_tokens) - 1

    # -- inputs ----------------------------------------------------------------------------------
    def encode(self, sequences: Sequences) -> tuple[list, torch.Tensor, torch.Tensor, list]:
        """Map raw-id sequences to item indices, dropping unknown items (one counted warning).

        Args:
            sequences: ``{sequence_id: [raw item ids, oldest first]}``, or a list of such lists
                (ids 0, 1, …). Ids are compared as strings (``7`` = ``"7"``, ``"007"`` differs).

        Returns:
            ``(ids, items [M], offsets [S + 1], empty)`` of the sequences with at least one known
            item, and the ids of those without (reported in one warning, no crash).
        """
        pairs = list(sequences.items()) if isinstance(sequences, Mapping) else list(enumerate(sequences))
        ids, tokens, lengths = [], [], []
        for key, seq in pairs:
            seq = [seq] if isinstance(seq, (str, bytes)) else list(seq)
            ids.append(key)
            tokens.extend(str(t) for t in seq)
            lengths.append(len(seq))
        codes = self.index.get_indexer(pd.Index(tokens, dtype=object)) + 1 if tokens else np.zeros(0, np.int64)
        known = codes > 0
        lengths = np.asarray(lengths, dtype=np.int64)
        owner = np.repeat(np.arange(len(ids)), lengths)
        if not known.all():
            unknown = pd.unique(np.asarray(tokens, dtype=object)[~known])
            log.warning(
                "dropped %d unknown item id(s) (%d distinct, in %d of %d sequences; the run's "
                "catalogue has %d items): %s",
                int((~known).sum()),
                len(unknown),
                len(np.unique(owner[~known])),
                len(ids),
                self.n_items,
                _few(unknown),
            )
        kept = np.bincount(owner[known], minlength=len(ids))  # known items per sequence
        empty = [ids[i] for i in np.flatnonzero(kept == 0)]
        if empty:
            log.warning(
                "%d of %d sequence(s) have no known item, so they get no recommendations: %s",
                len(empty),
                len(ids),
                _few(empty),
            )
        offsets = np.concatenate([[0], np.cumsum(kept[kept > 0])]).astype(np.int64)
        return (
            [ids[i] for i in np.flatnonzero(kept > 0)],
            torch.as_tensor(codes[known], device=self.device),
            torch.as_tensor(offsets, device=self.device),
            empty,
        )

    def _scored(self, scorer, *args, **kwargs):
        """``scorer(*args, **kwargs)`` with a diverged model (NaN) reported as a :class:`SeqrecError`."""
        try:
            return scorer(*args, **kwargs)
        except ValueError as exc:
            raise SeqrecError(f"run '{self.run_dir}': {exc}.") from exc

    def _check_k(self, k: int) -> int:
        if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or not 1 <= k <= self.n_items:
            raise SeqrecError(
                f"k={k!r} must be a whole number from 1 to the run's catalogue size "
                f"({self.n_items} items); e.g. --k 10."
            )
        return int(k)

    def _frame(self, id_name: str, ids: list, scores: torch.Tensor, items: torch.Tensor) -> pd.DataFrame:
        """Long format: one row per (id, rank) with the raw item id and its score."""
        scores, items = scores.cpu().numpy(), items.cpu().numpy()
        listed = (items > 0).sum(axis=1)  # [U]: a list is short when its history left < k items
        if len(listed) and (listed < items.shape[1]).any():
            log.warning(
                "%d of %d lists are shorter than k=%d (%d empty): their history is excluded and "
                "leaves fewer than k items of the catalogue; --include-history lists those too.",
                int((listed < items.shape[1]).sum()),
                len(listed),
                items.shape[1],
                int((listed == 0).sum()),
            )
        row, col = np.nonzero(items > 0)  # row-major: ranks in order; -inf tails dropped
        return pd.DataFrame(
            {
                id_name: pd.Series(np.asarray(ids, dtype=object)[row] if len(ids) else [], dtype=object),
                "rank": col + 1,
                "item_id": self.item_tokens[items[row, col]],
                "score": scores[row, col],
            }
        )

    # -- outputs ---------------------------------------------------------------------------------
    def recommend(self, sequences: Sequences, k: int = 10, include_history: bool = False) -> pd.DataFrame:
        """Top-k next items after each sequence of raw item ids.

        Sequences longer than the run's ``max_len`` keep their most recent items as input; items
        of the whole sequence are excluded from its list unless ``include_history``.

        Returns:
            ``sequence_id, rank, item_id, score`` (rank 1..k; score = ``h_last · E[item]``,
            float32), sequences in input order; none for a sequence without a known item.

        Raises:
            SeqrecError: ``k`` outside 1..N.
        """
        k = self._check_k(k)
        ids, items, offsets, _ = self.encode(sequences)
        scores, top = self._scored(
            recommend_csr,
            self.model,
            items,
            offsets,
            k,
            self.max_len,
            mask_history=not include_history,
            batch_size=self.batch_size,
        )
        return self._frame("sequence_id", ids, scores, top)

    def score(self, sequences: Sequences, items: Iterable | None = None) -> pd.DataFrame:
        """Raw scores ``h_last · E[item]`` after each sequence (no history exclusion).

        Args:
            sequences: as :meth:`recommend`.
            items: raw item ids to score (default: the whole catalogue; the frame is then
                ``[S, N]``, e.g. 4 GB for 1,000 sequences × 1M items: pass the candidates).

        Returns:
            float32 frame, index = sequence ids (those with a known item), columns = raw item ids.

        Raises:
            SeqrecError: an unknown item in ``items``.
        """
        columns = None
        if items is not None:
            wanted = [str(t) for t in items]
            codes = self.index.get_indexer(pd.Index(wanted, dtype=object)) + 1
            if (codes == 0).any():
                raise SeqrecError(
                    f"items: {_few(np.asarray(wanted, dtype=object)[codes == 0])} are not in "
                    f"the run's catalogue ({self.n_items} items, ids.npz)."
                )
            columns = torch.as_tensor(codes, device=self.device)
        ids, seq_items, offsets, _ = self.encode(sequences)
        scores = self._scored(score_csr, self.model, seq_items, offsets, self.max_len, columns, self.batch_size)
        names = self.item_tokens[1:] if columns is None else self.item_tokens[columns.cpu().numpy()]
        return pd.DataFrame(
            scores.cpu().numpy(),
            index=pd.Index(ids, dtype=object, name="sequence_id"),
            columns=pd.Index(names, name="item_id"),
        )

    def recommend_users(
        self, users: Iterable | None = None, k: int = 10, as_of: str = "all", include_history: bool = False
    ) -> pd.DataFrame:
        """Top-k for users of the run's dataset, from their own sequences.

        Args:
            users: raw user ids (unknown ones are dropped with a warning, repeated ones listed
                once), or None for all.
            as_of: ``all`` = the whole sequence, valid and test items included ("what next after
                everything we know"); ``test`` = the evaluation input ``s[:-1]`` (the test
                item's position in the list is then its rank in ``per_user_test.csv``);
                ``valid`` = ``s[:-2]``.

        Returns:
            ``user_id, rank, item_id, score``, users in the given (or index) order.

        Raises:
            SeqrecError: ``k`` or ``as_of`` invalid, no given user known, or the dataset is not
                the one the run was trained on.
        """
        k = self._check_k(k)
        if isinstance(users, str):  # one raw id, not its characters
            users = [users]
        if as_of not in AS_OF:
            raise SeqrecError(f"as_of={as_of!r} is not one of {', '.join(AS_OF)} (--as-of).")
        data = self.dataset()
        index = np.arange(data.n_users) if users is None else _user_index(data, users)
        offsets = torch.as_tensor(data.offsets, device=self.device)
        users_t = torch.as_tensor(index, dtype=torch.long, device=self.device)
        starts, ends = offsets[users_t], offsets[users_t + 1] - AS_OF[as_of]  # [U'] each
        # the selected users' (cut) sequences as one CSR, in the given order
        _, flat = row_item_pairs(torch.as_tensor(data.items, device=self.device), starts, ends)
        sub_offsets = torch.cat([torch.zeros(1, dtype=torch.long, device=self.device), torch.cumsum(ends - starts, 0)])
        scores, top = self._scored(
            recommend_csr,
            self.model,
            flat,
            sub_offsets,
            k,
            self.max_len,
            mask_history=not include_history,
            batch_size=self.batch_size,
        )
        return self._frame("user_id", list(np.asarray(data.user_tokens, dtype=str)[index]), scores, top)

    def dataset(self):
        """The run's :class:`~seqrec.data.SequenceData` (loaded once; fingerprint and ids checked)."""
        if self._data is None:
            if self.cfg is None or self.data_dir is None:
                raise SeqrecError("known users need the run's dataset: load the run with seqrec.load_run(path).")
            data = load_checked_dataset(self.cfg, self.data_dir, self.fingerprint, self.run_dir)
            if not np.array_equal(np.asarray(data.item_tokens, dtype=str), self.item_tokens):
                raise DataError(
                    f"the item ids of the data in '{self.data_dir}' differ from the run's "
                    f"ids.npz in '{self.run_dir}'; pass --data-dir the data the run was trained on."
                )
            self._data = data
        return self._data


def _user_index(data, users: Iterable) -> np.ndarray:
    """Row of each given raw user id in ``data`` ``[U']``, in the given order: repeated ids once
    (a warning counts them), unknown ids dropped (a warning names a few).

    Raises:
        SeqrecError: none of the ids is a user of ``data``.
    """
    given = pd.Index([str(u) for u in users], dtype=object)
    wanted = given.drop_duplicates()  # one block per user, at its first occurrence
    if len(wanted) < len(given):
        log.warning(
            "%d repeated user id(s) given; each user gets one list: %s",
            len(given) - len(wanted),
            _few(given[given.duplicated()].unique()),
        )
    index = pd.Index(np.asarray(data.user_tokens, dtype=str)).get_indexer(wanted)
    if (index < 0).any():
        log.warning(
            "dropped %d unknown user id(s) (not among the run's %d users): %s",
            int((index < 0).sum()),
            data.n_users,
            _few(wanted[index < 0]),
        )
    if (index < 0).all():
        raise SeqrecError(
            f"none of the {len(wanted)} given user ids is a user of the run's dataset "
            f"{data.name} (e.g. {_few(data.user_tokens[:3])}); check the users file."
        )
    return index[index >= 0]


def load_run(
    path: str | os.PathLike,
    device: str | torch.device = "cpu",
    data_dir: str | os.PathLike | None = None,
    batch_size: int | str | None = None,
) -> Recommender:
    """Load a finished run (``config.yaml``, ``best.pt``, ``metrics.json``, ``ids.npz``) for recommendation.

    Example::

        run = seqrec.load_run("outputs/runs/lastfm/sasrec-cce/seed42-…")
        run.recommend({"me": ["2", "15", "7"]}, k=10)   # sequence_id, rank, item_id, score
        run.recommend_users(["1", "2"], k=10)           # known users, whole sequences
        run.score([["2", "15"]], items=["3", "4"])      # [sequences, items] frame

    Args:
        path: the run folder.
        device: ``cpu`` (default), ``cuda``, ``auto``…
        data_dir: the datasets' folder, for known users (default: the run's ``data_dir``).
        batch_size: sequences scored at once (default: the run's ``eval.batch_size``).

    Raises:
        SeqrecError: not a finished run, unreadable files, or ids that do not fit the model.
    """

    run = read_run(path)
    model = run.build_model(resolve_device(str(device)))
    item_tokens, data = run.item_tokens(), None
    if item_tokens is None:  # a run from before ids.npz: its dataset holds the same mapping
        log.info("'%s' has no ids.npz; reading the item ids from the run's dataset", run.path)
        data = run.dataset(data_dir)
        item_tokens = data.item_tokens
        if len(item_tokens) != run.n_items + 1:
            raise SeqrecError(
                f"the dataset of '{run.path}' has {len(item_tokens) - 1} items but best.pt has "
                f"{run.n_items}; the run was trained on other data. Rerun it."
            )
    cfg, metrics, run_dir = run.cfg, run.metrics, run.path
    recommender = Recommender(
        model, item_tokens, cfg.dataset.max_len, cfg, run_dir, data_dir, batch_size, metrics.get("data_fingerprint")
    )
    recommender._data = data
    return recommender
