"""S3-Rec pre-training samples (Zhou et al., CIKM 2020; the reference code's ``PretrainDataset``).

Every prefix of each user's training part ``s[:-2]`` (its last ``max_len`` items), stored as index
ranges into the leave-one-out CSR, and per-batch draws of masks, MIP negatives and SP segments with
vectorised tensor operations. See :mod:`seqrec.training.pretrain` for the recipe and the loop.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from seqrec.data.attributes import ItemAttributes
from seqrec.data.csr import windows
from seqrec.data.split import LeaveOneOut
from seqrec.errors import SeqrecError


def epoch_seed(seed: int, epoch: int) -> int:
    """The seed of one pre-training epoch's randomness (batches, masks, negatives, dropout)."""
    return seed * 1_000_003 + epoch


# -- samples -------------------------------------------------------------------------------------
@dataclass(frozen=True, eq=False)  # tensors: no field-wise ==
class PretrainData:
    """Pre-training prefixes as index ranges into the CSR items, plus what batches need.

    Attributes:
        items: ``[n_interactions]`` the CSR items of :class:`LeaveOneOut` (oldest first per user).
        lo, hi: ``[P]`` prefix ``p`` is ``items[lo[p]:hi[p]]`` (1 <= length <= max_len).
        corpus: ``[T]`` the training parts ``s[:-2]`` of all users, concatenated (SP negatives).
        held_out: ``[P, 2]`` the validation and test item of each prefix's user (never drawn).
        attributes: ``[N + 1, A + 1]`` bool multi-hot (row = item, column = attribute id).
        n_items: N; the mask token is ``N + 1``. max_len: L.
    """

    items: torch.Tensor
    lo: torch.Tensor
    hi: torch.Tensor
    corpus: torch.Tensor
    held_out: torch.Tensor
    attributes: torch.Tensor
    n_items: int
    max_len: int

    @classmethod
    def build(cls, split: LeaveOneOut, attributes: ItemAttributes | torch.Tensor) -> PretrainData:
        """Every prefix of every user's (last ``max_len`` items of the) training part.

        Args:
            split: the leave-one-out split (its ``items``/``offsets`` CSR and ``max_len``).
            attributes: the dataset's :class:`ItemAttributes` or a ``[N + 1, A + 1]`` multi-hot.
        """
        items, offsets, device = split.items, split.offsets, split.items.device
        n_users = len(offsets) - 1
        starts, train_ends = offsets[:-1], offsets[1:] - 2  # [U]; s[:-2] = items[start:train_end]
        window = torch.maximum(starts, train_ends - split.max_len)  # [U] the reference's seq[-(L+2):-2]
        counts = train_ends - window  # [U] prefixes per user (>= 1: every user has >= 3 items)
        user = torch.repeat_interleave(torch.arange(n_users, device=device), counts)  # [P]
        first_row = torch.cumsum(counts, 0) - counts  # [U]
        lo = window[user]  # [P]
        hi = lo + 1 + torch.arange(len(user), device=device) - first_row[user]  # [P]
        lengths = offsets[1:] - starts  # [U]
        user_of = torch.repeat_interleave(torch.arange(n_users, device=device), lengths)
        corpus = items[torch.arange(len(items), device=device) < train_ends[user_of]]  # [T]
        if isinstance(attributes, ItemAttributes):
            attributes = attributes.multi_hot(split.n_items + 1)
        if attributes.shape[0] != split.n_items + 1:
            raise ValueError(f"attributes has {attributes.shape[0]} rows, expected n_items + 1 = {split.n_items + 1}")
        held_out = torch.stack([items[train_ends], items[train_ends + 1]], 1)[user]  # [P, 2]
        return cls(
            items=items,
            lo=lo,
            hi=hi,
            corpus=corpus,
            held_out=held_out,
            attributes=attributes.to(device),
            n_items=split.n_items,
            max_len=split.max_len,
        )

    def __len__(self) -> int:
        return len(self.lo)

    @property
    def lengths(self) -> torch.Tensor:
        """``[P]`` prefix lengths."""
        return self.hi - self.lo

    def windows(self, rows: torch.Tensor, width: int) -> torch.Tensor:
        """Left-padded prefixes ``[B, width]`` of ``rows [B]`` (width >= their lengths)."""
        return windows(self.items, self.lo[rows], self.hi[rows], width)

    # long: the four S3-Rec objectives' samples of one batch, vectorised side by side as in the paper's order
    def batch(
        self, rows: torch.Tensor, generator: torch.Generator, mask_p: float, trim: bool = True
    ) -> dict[str, torch.Tensor]:
        """One batch of S3-Rec inputs for prefixes ``rows [B]``, with fresh random draws.

        Args:
            rows: prefix indices (on this data's device).
            generator: source of the masks, negatives and segments (on this data's device).
            mask_p: probability of masking each real item (the last one always is).
            trim: drop the batch's common left padding (width = its longest prefix).

        Returns:
            The inputs of :meth:`S3Rec.pretrain_losses` (``[B, W]`` int64 unless noted): ``items``,
            ``masked``, ``negatives``, ``attributes`` (``[B, W, A+1]`` bool), ``segment_masked``,
            ``pos_segment``, ``neg_segment``, ``segment_valid`` (``[B]`` bool).
        """
        device, mask_id = rows.device, self.n_items + 1
        n = self.lengths[rows]  # [B]
        B, W = len(rows), int(n.max()) if trim else self.max_len
        items = self.windows(rows, W)  # [B, W]
        real = items != 0

        # MIP/MAP/AAP: mask each real item with probability mask_p, and always the last one.
        masked_at = real & (torch.rand((B, W), generator=generator, device=device) < mask_p)
        masked_at[:, -1] = True  # the last column is every prefix's last item
        masked = items.masked_fill(masked_at, mask_id)

        # One negative per position, uniform over the items neither in the prefix nor held out
        # for the user: the r-th free item, r uniform.
        taken = torch.zeros(B, self.n_items + 1, dtype=torch.bool, device=device)
        taken.scatter_(1, items, True)
        taken.scatter_(1, self.held_out[rows], True)
        taken[:, 0] = True  # padding
        free = (~taken).cumsum(1)  # [B, N+1] number of free items <= each id
        n_free = free[:, -1:]  # [B, 1]
        if bool((n_free == 0).any()):
            raise SeqrecError(
                "a pre-training prefix holds every item of the catalogue, so no "
                "MIP negative exists; the dataset is too small for S3-Rec."
            )
        draw = torch.rand((B, W), generator=generator, device=device, dtype=torch.float64)
        r = torch.minimum((draw * n_free).long(), n_free - 1)  # [B, W] in 0..n_free-1
        negatives = torch.searchsorted(free, r + 1)  # [B, W] first id with r+1 free ids <= it

        # SP: a segment of length k ~ U{1..n//2} at a uniform start; the negative segment is the
        # same span of the corpus at a uniform start. Prefixes with n < 2 have none.
        u = torch.rand((3, B), generator=generator, device=device, dtype=torch.float64)
        half = (n // 2).clamp(min=1)
        k = 1 + torch.minimum((u[0] * half).long(), half - 1)  # [B]
        start = torch.minimum((u[1] * (n - k + 1)).long(), n - k)  # [B] index within the prefix
        T = len(self.corpus)
        neg_start = torch.minimum((u[2] * (T - k + 1)).long(), T - k)  # [B]
        index = torch.arange(W, device=device) - (W - n)[:, None]  # [B, W] position in the prefix
        valid = n >= 2
        in_seg = valid[:, None] & (index >= start[:, None]) & (index < (start + k)[:, None])
        outside = real & ~in_seg
        neg_items = self.corpus[(neg_start[:, None] + index - start[:, None]).clamp(0, T - 1)]
        return {
            "items": items,
            "masked": masked,
            "negatives": negatives,
            "attributes": self.attributes[items],  # [B, W, A+1]
            "segment_masked": items.masked_fill(in_seg, mask_id),
            "pos_segment": items.masked_fill(outside, mask_id),
            "neg_segment": torch.where(in_seg, neg_items, items.masked_fill(outside, mask_id)),
            "segment_valid": valid,
        }
