"""Negative samplers beyond uniform: by popularity, and from the other positives of the batch.

Both follow the sampler contract of :mod:`seqrec.losses.samplers`: ``bind(split)`` once with the
training data, then ``sample(users [B], targets [B, L], k, generator) -> NegativeBatch`` per
batch, with ``items [B, L, K]`` in 1..N (never the padding id 0) and ``log_q [B, L, K]``, the
log-probability of each draw, for the logQ correction of sampled softmax
(:mod:`seqrec.losses.sampled_softmax`). All draws come from ``generator`` (on its device, then
moved to the targets' device), so a seed gives the same negatives on every run; no per-sample
Python.

Unlike the uniform sampler, neither excludes the user's training items: their probabilities
would then differ per user. A negative that equals the position's own positive (an
"accidental hit") is possible under popularity sampling and is masked by the losses
(:mod:`seqrec.losses.negatives`); the in-batch sampler never returns it.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from seqrec.data.split import LeaveOneOut
from seqrec.losses.samplers import NegativeBatch, Sampler


def training_item_counts(split) -> Tensor:
    """``[N + 1]`` int64: how often each item occurs in the users' training parts ``s[:-2]``
    (repeats counted; index 0, padding, is 0). The validation and test items are never counted.

    Args:
        split: a :class:`seqrec.data.LeaveOneOut` (uses ``items``, ``offsets``, ``n_items``).
    """
    offsets, items = split.offsets, split.items
    lengths = offsets[1:] - offsets[:-1]  # [U]
    user_of = torch.repeat_interleave(torch.arange(len(lengths), device=items.device), lengths)  # [n_interactions]
    in_train = torch.arange(len(items), device=items.device) < (offsets[1:] - 2)[user_of]
    counts = torch.bincount(items[in_train], minlength=split.n_items + 1)
    counts[0] = 0
    return counts


class PopularitySampler(Sampler):
    """Negatives drawn with probability proportional to their training frequency.

    ``q(i) = count(i) / Σ_j count(j)`` over the training parts ``s[:-2]`` of all users
    (:func:`training_item_counts`); items that never occur there are never drawn. The draw is
    exact: an integer ``r`` uniform in ``[0, total)`` is mapped to the item whose cumulative
    count first exceeds it (inverse CDF with ``torch.searchsorted``).

    Raises:
        ValueError: (``bind``) the training parts are empty.
        RuntimeError: (``sample``) called before ``bind``.
    """

    name = "popularity"

    def bind(self, split: LeaveOneOut) -> PopularitySampler:
        counts = training_item_counts(split).cpu()
        total = int(counts.sum())
        if total == 0:
            raise ValueError("the popularity sampler needs training interactions, but every training part is empty")
        super().bind(split)
        self.total = total
        self.cumulative = torch.cumsum(counts, 0)  # [N + 1] int64, exact
        self.log_probs = (counts.double() / total).log().float()  # [N + 1], -inf where never drawn
        self._on = {}  # device -> (cumulative, log_probs)
        return self

    def _tables(self, device: torch.device) -> tuple[Tensor, Tensor]:
        if device not in self._on:
            self._on[device] = (self.cumulative.to(device), self.log_probs.to(device))
        return self._on[device]

    def sample(self, users: Tensor, targets: Tensor, k: int, generator: torch.Generator) -> NegativeBatch:
        """``k`` negatives per position of ``targets [B, L]`` (padding positions get some too).

        Returns:
            :class:`NegativeBatch` with ``items [B, L, k]`` and ``log_q [B, L, k]``.
        """
        self._bound()
        cumulative, _ = self._tables(generator.device)
        r = torch.randint(0, self.total, (*targets.shape, k), generator=generator, device=generator.device)
        items = torch.searchsorted(cumulative, r, right=True).to(targets.device)  # [B, L, k]
        _, log_probs = self._tables(targets.device)
        return NegativeBatch(items=items, log_q=log_probs[items])


class InBatchSampler(Sampler):
    """Negatives drawn from the other positives of the batch, never the position's own item.

    The pool is every target of the batch (``targets != 0``, M of them, repeats kept, so an item
    is drawn in proportion to how often it is a positive in the batch). For a position whose
    positive is item x, occurring ``c_x`` times in the pool, each draw is uniform over the
    ``M - c_x`` pool entries that are not x: ``q(j) = c_j / (M - c_x)`` — the sorted pool puts
    the copies of x in one block, and a uniform index into the rest skips that block.
    A position whose batch holds no other item (``M = c_x``, e.g. a one-user batch) draws
    uniformly from the catalogue without x instead, ``q = 1 / (N - 1)``.

    Raises:
        RuntimeError: (``sample``) called before ``bind``.
    """

    name = "in_batch"

    def sample(self, users: Tensor, targets: Tensor, k: int, generator: torch.Generator) -> NegativeBatch:
        """``k`` negatives per position of ``targets [B, L]`` from the batch's positives.

        Returns:
            :class:`NegativeBatch` with ``items [B, L, k]`` (never equal to ``targets`` at a real
            position, never 0) and ``log_q [B, L, k]``.
        """
        n_items = self._bound().n_items
        device = targets.device
        pool = targets[targets != 0].sort().values  # [M]
        m = pool.numel()
        first = torch.searchsorted(pool, targets)  # [B, L] start of the own item's block
        own_count = torch.searchsorted(pool, targets, right=True) - first  # [B, L] c_x (0 at padding)
        free = (m - own_count).unsqueeze(-1)  # [B, L, 1]
        u = torch.rand((*targets.shape, k), generator=generator, dtype=torch.float64, device=generator.device).to(
            device
        )  # [B, L, k]
        r = torch.minimum((u * free).long(), (free - 1).clamp(min=0))  # uniform in [0, M - c_x)
        r = r + (r >= first.unsqueeze(-1)) * own_count.unsqueeze(-1)  # skip the own item's block
        items = pool[r.clamp(max=max(m - 1, 0))] if m else torch.zeros_like(r)  # [B, L, k]
        count = torch.searchsorted(pool, items, right=True) - torch.searchsorted(pool, items)  # c_j
        log_q = count.double().log() - free.double().log()
        # no other item in the batch: uniform over the catalogue without the own item
        alone = (free == 0).expand_as(items)
        if alone.any():
            v = torch.rand((int(alone.sum()),), generator=generator, dtype=torch.float64, device=generator.device).to(
                device
            )
            own = targets.unsqueeze(-1).expand_as(items)[alone]
            n_other = n_items - (own != 0).long()
            pick = torch.minimum((v * n_other).long(), n_other - 1) + 1  # 1..n_other
            items[alone] = pick + (pick >= own).long() * (own != 0).long()
            log_q[alone] = -math.log(max(n_items - 1, 1))
        return NegativeBatch(items=items, log_q=log_q.float())
