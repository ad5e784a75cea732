"""The loss contract: what every training loss is and declares.

A loss is a ``torch.nn.Module`` (its parameters, if any, are trained with the model's: the
pipeline builds the optimizer over both) called as

    loss(hidden [B, L, d], targets [B, L], table [N, d], negatives: NegativeBatch | None) -> scalar

with ``targets`` item ids (0 = padding, never a class), ``table = model.output_table()`` (item
``i`` is row ``i - 1``, :func:`seqrec.models.scoring.item_rows`) and ``negatives`` drawn by
``loss.sampler`` when ``loss.num_negatives > 0``. It declares:

* ``name``: the short name in run folders, ``metrics.json`` and reports (``loss=<name>``);
* ``positions``: ``"all"`` (every non-padding position is a term) or ``"last"`` (one term per
  sequence, the last position; :func:`position_mask`); the trainer weights length-bucketed
  batches by it. Every loss takes it as ``loss.positions``; a loss's ``name`` then names its
  family (``bpr`` / ``bpr-last``, :func:`family_name`; CCE at the last position is ``ce``);
* ``num_negatives``: K sampled negatives per position, 0 for none;
* ``sampler``: the :class:`seqrec.losses.samplers.Sampler` that draws them (None when K = 0).
"""

from __future__ import annotations

import inspect

import torch
from torch import Tensor, nn

from seqrec.losses.samplers import NegativeBatch, Sampler, UniformSampler

POSITIONS = ("all", "last")


def position_mask(targets: Tensor, positions: str) -> Tensor:
    """``[B, L]`` bool: the positions a loss uses.

    ``"all"``: every position with a target (``targets != 0``). ``"last"``: column L - 1 only,
    where its target is non-zero (rows are left-padded, so that is each row's last real position).

    Raises:
        ValueError: ``positions`` not in ``("all", "last")``.
    """
    if positions == "all":
        return targets != 0
    if positions == "last":
        mask = torch.zeros_like(targets, dtype=torch.bool)
        mask[:, -1] = targets[:, -1] != 0
        return mask
    raise ValueError(f"positions must be 'all' or 'last', got {positions!r}")


def check_positions(positions: str) -> str:
    """``positions`` if valid, else ``ValueError`` naming it (the config layer adds ``loss.``)."""
    if positions not in POSITIONS:
        raise ValueError(
            f"positions={positions!r} is not valid: use all (every non-padding position, "
            "like CCE/BCE) or last (the last position of each sequence, like CE)"
        )
    return positions


def family_name(name: str, positions: str) -> str:
    """The run's loss name: ``name`` for all positions, ``name-last`` for the last position only
    (``bpr`` / ``bpr-last``), so both families of one loss stay apart in reports."""
    return name if positions == "all" else f"{name}-{positions}"


def variant_name(loss: "Loss", positions: str, tags: tuple[str, ...] = ()) -> str:
    """The run's name of a sampled-negative loss: its ``name``, then every setting that changes
    its objective away from the loss's defaults, then the family — so that two variants never share
    a name in ``metrics.json`` and reports keep them apart:

    ``k<K>`` when K differs from the class's default, the sampler's name unless it is ``uniform``,
    then ``tags`` (e.g. ``logq``): ``bce``, ``bce-k256``, ``sampled_softmax-popularity-logq-last``.
    """
    parts = [type(loss).name]
    default = inspect.signature(type(loss).__init__).parameters.get("num_negatives")
    if default is not None and default.default is not inspect.Parameter.empty and loss.num_negatives != default.default:
        parts.append(f"k{loss.num_negatives}")
    if loss.sampler is not None and loss.sampler.name != UniformSampler.name:
        parts.append(loss.sampler.name)
    parts += list(tags)
    return family_name("-".join(parts), positions)


class Loss(nn.Module):
    """Base class of the training losses (see the module docstring for the contract).

    Args:
        num_negatives: K sampled negatives per position (0 = the loss needs none).
        sampler: draws the negatives when K > 0; default :class:`~seqrec.losses.samplers.UniformSampler`.

    Raises:
        ValueError: ``num_negatives`` < 0, ``sampler`` is not a :class:`~seqrec.losses.samplers.Sampler`, or
            a subclass declares an unknown ``positions``.
    """

    name: str = "loss"
    positions: str = "all"
    # a softmax over the whole table it is given: the model's never-target classes join it
    # (seqrec.models.scoring.training_table); a sampled loss reads only the rows of its items
    full_softmax: bool = False

    def __init__(self, num_negatives: int = 0, sampler: Sampler | None = None):
        super().__init__()
        if self.positions not in POSITIONS:
            raise ValueError(f"{type(self).__name__}.positions must be one of {POSITIONS}, got {self.positions!r}.")
        if isinstance(num_negatives, bool) or not isinstance(num_negatives, int) or num_negatives < 0:
            raise ValueError(f"num_negatives must be a whole number >= 0, got {num_negatives!r}.")
        if sampler is not None and not isinstance(sampler, Sampler):
            raise ValueError(
                f"sampler must be a seqrec.losses.samplers.Sampler, got {sampler!r}. A sampler is a config group: "
                f"choose it with loss/sampler=<name> (conf/loss/sampler/<name>.yaml), not loss.sampler=<name>"
            )
        self.num_negatives = num_negatives
        self.sampler = (sampler if sampler is not None else UniformSampler()) if num_negatives else None

    def bind_catalogue(self, n_items: int) -> None:
        """Called once the catalogue size N is known, before training (:func:`seqrec.runs.pipeline.build`),
        so a setting that cannot work with N fails before the run writes anything; a loss may also
        precompute what depends on N only. Nothing by default.

        Raises:
            ValueError: the loss's settings do not fit a catalogue of ``n_items`` items.
        """

    def forward(
        self, hidden: torch.Tensor, targets: torch.Tensor, table: torch.Tensor, negatives: NegativeBatch | None = None
    ) -> torch.Tensor:
        """``hidden [B, L, d]``, ``targets [B, L]`` (0 = padding), ``table [N, d]``,
        ``negatives`` (``items [B, L, K]``) -> scalar loss."""
        raise NotImplementedError
