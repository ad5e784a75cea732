"""TEMPORARY stand-in for helper "contracts"' seqrec/samplers.py (issue #10's sampler contract).

Only the two names the loss family codes against; replaced by the real module when the
``contracts`` branch lands in main.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass
class NegativeBatch:
    """``items [B, L, K]`` int64 ids in 1..N; ``log_q [B, L, K] | None`` log-probability of each draw."""

    items: torch.Tensor
    log_q: torch.Tensor | None = None


class Sampler:
    """Base class: ``bind(split)`` then ``sample(users [B], targets [B, L], k, generator)``."""

    def bind(self, split) -> "Sampler":
        self.split = split
        return self

    def sample(self, users: torch.Tensor, targets: torch.Tensor, k: int,
               generator: torch.Generator) -> NegativeBatch:
        raise NotImplementedError
