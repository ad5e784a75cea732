"""Leave-one-out split of per-user sequences, as in S3-Rec's ``datasets.py`` (used by the CCE
paper): for a user with items ``s[0..n-1]`` the test target is ``s[n-1]``, the validation target
``s[n-2]``, and the one training sample has input ``s[:-3]`` and targets ``s[1:-2]`` (the next
item at every position). Every input keeps its most recent ``max_len`` items, left-padded with 0.

Everything is built with index arithmetic on the CSR arrays: no Python loop over users.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace

import numpy as np
import torch

from seqrec.data.csr import row_item_pairs, windows
from seqrec.data.preprocess import SequenceData
from seqrec.errors import DataError

# Rejection rounds before the exact (slower) sampler takes the few entries still colliding.
_REJECTION_ROUNDS = 8


@dataclass(frozen=True, eq=False)  # tensors: no field-wise ==
class LeaveOneOut:
    """Train/valid/test tensors of one dataset (all int64; U users, L = ``max_len``).

    Attributes:
        train_input: ``[U_tr, L]`` items ``s[:-3]`` (most recent L, left-padded with 0).
        train_target: ``[U_tr, L]`` items ``s[1:-2]``, aligned with ``train_input`` (0 where
            the input is padding).
        train_users: ``[U_tr]`` user index of each training row (users with n > 3).
        valid_input: ``[U, L]`` items ``s[:-2]``; valid_target: ``[U]`` item ``s[-2]``.
        test_input: ``[U, L]`` items ``s[:-1]``; test_target: ``[U]`` item ``s[-1]``.
        items, offsets: the CSR sequences (``[n_interactions]``, ``[U + 1]``).
        train_keys: sorted unique ``user * (n_items + 1) + item`` over the training parts
            ``s[:-2]``; train_key_offsets: ``[U + 1]`` start of each user's keys.
        free_before: ``[len(train_keys)]`` ``user * (n_items + 1)`` + number of items not in the
            user's training part below each key's item (for exact negative sampling).
        n_items: catalogue size (items 1..n_items, 0 = padding); max_len: L.
        user_tokens: ``[U]`` raw user id of each user index (``SequenceData.user_tokens``), so
            that errors name users as the data file does; None: errors give the index.
    """

    train_input: torch.Tensor
    train_target: torch.Tensor
    train_users: torch.Tensor
    valid_input: torch.Tensor
    valid_target: torch.Tensor
    test_input: torch.Tensor
    test_target: torch.Tensor
    items: torch.Tensor
    offsets: torch.Tensor
    train_keys: torch.Tensor
    train_key_offsets: torch.Tensor
    free_before: torch.Tensor
    n_items: int
    max_len: int
    user_tokens: np.ndarray | None = None

    @classmethod
    def build(cls, data: SequenceData, max_len: int = 50) -> LeaveOneOut:
        """Split ``data`` (every user needs >= 3 items; users with exactly 3 get no training row).

        Raises:
            DataError: ``max_len`` < 1, or a user has fewer than 3 interactions.
        """
        if max_len < 1:
            raise DataError(f"dataset.max_len must be >= 1, got {max_len}; the paper uses 50.")
        lengths = data.lengths
        if (lengths < 3).any():
            user = int(np.flatnonzero(lengths < 3)[0])
            raise DataError(
                f"dataset '{data.name}': user {data.user_tokens[user]} has {lengths[user]} "
                "interactions, but leave-one-out needs 3 (train, valid, test). Set "
                "dataset.min_user_interactions to 3 or more."
            )
        items, offsets = data.items.astype(np.int64), data.offsets.astype(np.int64)
        n_items = data.n_items
        starts, ends = offsets[:-1], offsets[1:]
        train_users = np.flatnonzero(lengths > 3)
        tr_start, tr_end = starts[train_users], ends[train_users]

        # Training parts s[:-2]: the items negatives must avoid and valid history masks.
        user_of = np.repeat(np.arange(data.n_users), lengths)  # [n_interactions]
        in_train = np.arange(len(items)) < (ends - 2)[user_of]
        keys = np.unique(user_of[in_train] * (n_items + 1) + items[in_train])
        key_offsets = np.searchsorted(keys, np.arange(data.n_users + 1) * (n_items + 1))
        rank = np.arange(len(keys)) - key_offsets[:-1][keys // (n_items + 1)]
        free_before = keys - 1 - rank  # user*(n_items+1) + free items below the key's item

        t = torch.from_numpy

        def window(lo: np.ndarray, hi: np.ndarray) -> torch.Tensor:  # [R, max_len], left-padded
            return windows(t(items), t(lo), t(hi), max_len)

        return cls(
            train_input=window(tr_start, tr_end - 3),
            train_target=window(tr_start + 1, tr_end - 2),
            train_users=t(train_users.astype(np.int64)),
            valid_input=window(starts, ends - 2),
            valid_target=t(items[ends - 2]),
            test_input=window(starts, ends - 1),
            test_target=t(items[ends - 1]),
            items=t(items),
            offsets=t(offsets),
            train_keys=t(keys),
            train_key_offsets=t(key_offsets.astype(np.int64)),
            free_before=t(free_before),
            n_items=int(n_items),
            max_len=int(max_len),
            user_tokens=np.asarray(data.user_tokens, dtype=str),
        )

    @property
    def n_users(self) -> int:
        return len(self.offsets) - 1

    def to(self, device: torch.device | str) -> LeaveOneOut:
        """A copy with every tensor on ``device``."""
        moved = {
            f.name: getattr(self, f.name).to(device)
            for f in fields(self)
            if isinstance(getattr(self, f.name), torch.Tensor)
        }
        return replace(self, **moved)

    def history(self, users: torch.Tensor, split: str) -> tuple[torch.Tensor, torch.Tensor]:
        """Every item seen before the split's target: ``s[:-2]`` (valid) or ``s[:-1]`` (test).

        The full history, not only the last ``max_len`` items (S3-Rec masks all of it in full
        ranking). Repeated items appear repeatedly.

        Args:
            users: ``[B]`` int64 user indices (on this split's device).
            split: "valid" or "test".

        Returns:
            ``(rows [M], items [M])``: ``rows`` is the position in the batch, so
            ``scores[rows, item_rows(items)] = -inf`` masks the history of a ``[B, N]`` score
            matrix (column c = item c + 1; :func:`seqrec.evaluation.mask_keeping_targets`).
        """
        if split not in ("valid", "test"):
            raise ValueError(f"split must be 'valid' or 'test', got {split!r}")
        starts = self.offsets[users]
        return row_item_pairs(self.items, starts, self.offsets[users + 1] - (2 if split == "valid" else 1))

    def _no_negative_message(self, user: int) -> str:
        """The paragraph for a user whose training part holds the whole catalogue."""
        who = f"user index {user}" if self.user_tokens is None else f"user {str(self.user_tokens[user])!r}"
        return (
            f"{who} has interacted with all {self.n_items} items of the catalogue in the training part "
            "of their sequence, so the loss cannot sample a negative item for them. Use a loss without "
            "sampled negatives (loss=ce or loss=cce), or train on a larger catalogue: a log with more "
            "items, or a lower dataset.kcore (it removes rare items; 0 keeps all), or remove this user "
            "from the data file."
        )

    def repeated_targets(self, split: str) -> torch.Tensor:
        """``[U]`` bool: the ``split`` ('valid'|'test') target repeats an item of the user's
        history (:meth:`history`), i.e. re-consumption. Such targets are ranked, not masked."""
        users = torch.arange(len(self.test_target), device=self.test_target.device)
        rows, items = self.history(users, split)
        targets = getattr(self, f"{split}_target")
        repeated = torch.zeros(len(users), dtype=torch.bool, device=users.device)
        repeated[rows[items == targets[rows]]] = True
        return repeated

    def sample_negatives(
        self, users: torch.Tensor, shape_tail: tuple[int, ...], generator: torch.Generator
    ) -> torch.Tensor:
        """Items drawn uniformly from 1..n_items among those NOT in the user's ``s[:-2]``.

        Rejection sampling: draw everything, look the ``user * (n_items + 1) + item`` keys up
        in :attr:`train_keys` with ``torch.searchsorted``, redraw only the collisions; after a
        few rounds the remaining entries are drawn exactly from the user's free items. Draws
        happen on ``generator.device`` and are moved to this split's device, so a seed gives the
        same negatives on every device.

        Args:
            users: ``[B]`` int64 user indices.
            shape_tail: trailing shape, e.g. ``(L, K)`` for K negatives per position.
            generator: source of randomness.

        Returns:
            ``[B, *shape_tail]`` int64 items.

        Raises:
            DataError: a user's training part holds every item (no negative exists).
        """
        device, n = self.items.device, self.n_items
        users = users.to(device)
        key_start, key_end = self.train_key_offsets[users], self.train_key_offsets[users + 1]
        full = (key_end - key_start) >= n
        if full.any():
            raise DataError(self._no_negative_message(int(users[full][0])))
        shape = (len(users), *shape_tail)
        base = (users * (n + 1)).view(-1, *([1] * len(shape_tail))).expand(shape)  # [B, *tail]

        def draw(size: tuple[int, ...]) -> torch.Tensor:
            return torch.randint(1, n + 1, size, generator=generator, device=generator.device).to(device)

        items = draw(shape)
        for _ in range(_REJECTION_ROUNDS):
            hit = self._in_train(base + items)
            if not hit.any():
                return items
            items[hit] = draw((int(hit.sum()),))
        hit = self._in_train(base + items)
        if hit.any():
            items[hit] = self._draw_free(
                base[hit], key_start.view(-1, *([1] * len(shape_tail))).expand(shape)[hit], generator
            )
        return items

    def _in_train(self, keys: torch.Tensor) -> torch.Tensor:
        """bool mask: is ``user * (n_items + 1) + item`` in a training part?"""
        if len(self.train_keys) == 0:
            return torch.zeros_like(keys, dtype=torch.bool)
        idx = torch.searchsorted(self.train_keys, keys).clamp(max=len(self.train_keys) - 1)
        return self.train_keys[idx] == keys

    def _draw_free(self, base: torch.Tensor, key_start: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """Exact uniform draw of the r-th free item of each user: item = r + 1 + #{keys whose
        free-before count <= r}. ``base``/``key_start``: ``[E]`` user*(n+1) and key offset."""
        user_keys = self.train_key_offsets[base // (self.n_items + 1) + 1] - key_start
        n_free = self.n_items - user_keys  # [E]
        uniform = torch.rand(base.shape, generator=generator, dtype=torch.float64, device=generator.device).to(
            base.device
        )
        r = torch.minimum((uniform * n_free).long(), n_free - 1)
        below = torch.searchsorted(self.free_before, base + r, right=True) - key_start
        return r + 1 + below
