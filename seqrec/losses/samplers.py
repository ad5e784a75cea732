"""Negative samplers: where a sampled loss's negatives come from (the sampler contract).

A loss that needs sampled negatives says how many (``loss.num_negatives``, K) and holds the
:class:`Sampler` that draws them (``loss.sampler``, chosen in its config group:
``conf/loss/sampler/<name>.yaml``, e.g. ``loss/sampler=uniform`` on the command line). The
pipeline binds the sampler to the training data once (:meth:`Sampler.bind`); the trainer then
calls ``sampler.sample(users, targets, K, generator)`` per batch with its own seeded generator,
so the same seed gives the same negatives.

``uniform`` is BCE's sampler in the CCE paper: items drawn uniformly among those not in the
user's training part ``s[:-2]``. The paper's code (``neg_sample``) also excludes the user's
validation and test items, which tells training which items those are, and can draw the mask
token's id ``N + 1``; seqrec does neither (``docs/protocol.md``, differences from the paper's code).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from seqrec.data.split import LeaveOneOut


@dataclass
class NegativeBatch:
    """Sampled negatives of one batch.

    Attributes:
        items: ``[B, L, K]`` int64 item ids in 1..N (never 0 = padding).
        log_q: ``[B, L, K]`` float32 log-probability of each draw under the sampler (for a logQ
            correction of sampled softmax), or None when the sampler does not know it.
    """

    items: torch.Tensor
    log_q: torch.Tensor | None = None


class Sampler:
    """Base class of the negative samplers.

    Subclasses implement :meth:`sample` (vectorised, all randomness from ``generator``) and may
    extend :meth:`bind` to precompute from the training data (e.g. item popularity).
    """

    name = "sampler"
    split = None  # the bound training data (set by bind)

    def bind(self, split: LeaveOneOut) -> "Sampler":
        """Attach the training data (:class:`seqrec.data.LeaveOneOut`) before training; returns self."""
        self.split = split
        return self

    def _bound(self):
        if self.split is None:
            raise RuntimeError(f"{type(self).__name__}.sample() called before bind(split).")
        return self.split

    def sample(self, users: torch.Tensor, targets: torch.Tensor, k: int, generator: torch.Generator) -> NegativeBatch:
        """Draw ``k`` negatives for every position of a batch.

        Args:
            users: ``[B]`` int64 user indices into the bound split (``split.train_users[rows]``).
            targets: ``[B, L]`` int64 positive item ids (0 = padding); gives the shape ``L``.
            k: negatives per position (``loss.num_negatives``).
            generator: seeded generator owned by the trainer.

        Returns:
            :class:`NegativeBatch` with ``items [B, L, k]``.
        """
        raise NotImplementedError


class UniformSampler(Sampler):
    """Uniform over the items not in the user's training part ``s[:-2]`` (CCE paper, BCE's negatives;
    how the paper's code differs: the module docstring).

    Draws with :meth:`seqrec.data.LeaveOneOut.sample_negatives` (rejection sampling, exact), so a
    position's negative is never one of the user's training items; padding positions get
    negatives too (the losses ignore them). ``log_q = -log(N - |training items of the user|)``.

    Raises (from ``sample``):
        DataError: a user's training part holds every item (no negative exists).
    """

    name = "uniform"

    def bind(self, split: LeaveOneOut) -> "UniformSampler":
        super().bind(split)
        # [U] log(1 / number of items the user has not interacted with in training)
        n_seen = split.train_key_offsets[1:] - split.train_key_offsets[:-1]
        self._log_q = -torch.log((split.n_items - n_seen).clamp(min=1).float())
        return self

    def sample(self, users: torch.Tensor, targets: torch.Tensor, k: int, generator: torch.Generator) -> NegativeBatch:
        split = self._bound()
        items = split.sample_negatives(users, (targets.shape[1], k), generator)  # [B, L, k]
        log_q = self._log_q[users.to(self._log_q.device)].view(-1, 1, 1).expand(items.shape)  # [B, L, k]
        return NegativeBatch(items=items, log_q=log_q)
