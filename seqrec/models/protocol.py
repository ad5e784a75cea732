"""What a model must offer to be trained, evaluated, analysed and asked for recommendations.

seqrec reads a model only through this protocol (and :mod:`seqrec.models.scoring`): the pipeline
builds it from its config with the data-derived arguments, losses and evaluation score its
hidden states against :meth:`~SequentialRecommender.output_table`, and a finished run is rebuilt
from the constructor arguments saved in ``best.pt`` (``model_kwargs``), never from the shapes of
particular weights, so a model with any parameter names can be recommended from.

A model is one file with an ``nn.Module`` that satisfies :class:`SequentialRecommender` and one
YAML in ``conf/model/`` naming it in ``_target_`` (``docs/extending.md``). A model with a
pre-training stage (S3-Rec) satisfies :class:`Pretrainable` too; the config selects the stage.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import ClassVar, Protocol, runtime_checkable

import torch
from torch import nn

from seqrec.errors import ConfigError


@runtime_checkable
class SequentialRecommender(Protocol):
    """The model contract.

    Construction: ``Model(n_items=N, max_len=L, **options)`` — ``n_items`` and ``max_len`` come
    from the data at build time, the options from ``conf/model/<name>.yaml``.

    Attributes:
        name: the model's name in run folders, ``metrics.json`` and reports (``"sasrec"``).
        causal: optional; False when the output at t depends on items after t
            (:mod:`seqrec.models.causality` checks it before all-position training).
    """

    name: str

    def forward(self, item_seq: torch.Tensor) -> torch.Tensor:
        """``item_seq [B, L]`` (left-padded, 0 = padding) → hidden states ``[B, L, d]``, every position."""

    def output_table(self) -> torch.Tensor:
        """``[N, d]``: the output vector of items 1..N (row i - 1 = item i), the prediction layer."""


@runtime_checkable
class Pretrainable(SequentialRecommender, Protocol):
    """A model with a self-supervised pre-training stage (``stage=pretrain``; S3-Rec).

    Attributes:
        stage_options: the dataclass of the stage's config keys, which sit in the model's YAML
            beside its constructor options but are never passed to it (S3-Rec:
            :class:`seqrec.models.s3rec_stage.Pretraining`); its class attribute ``supplies``
            names the constructor arguments the stage derives from its data.
    """

    stage_options: ClassVar[type]

    def pretrain_losses(self, batch: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """The pre-training objectives of one batch of pre-training samples, by name."""


def can_pretrain(model_class: type) -> bool:
    """Whether a model class has a pre-training stage (:class:`Pretrainable`): the config layer
    accepts ``stage=pretrain`` and the stage's options only for such a model."""
    return callable(getattr(model_class, "pretrain_losses", None)) and dataclasses.is_dataclass(
        getattr(model_class, "stage_options", None)
    )


def stage_keys(model_class: type) -> tuple[str, ...]:
    """The config keys of a model's pre-training stage (the fields of its ``stage_options``); none
    for a model without one."""
    return tuple(f.name for f in dataclasses.fields(model_class.stage_options)) if can_pretrain(model_class) else ()


def stage_supplies(model_class: type) -> tuple[str, ...]:
    """The constructor arguments a model's pre-training stage supplies from its data (its
    ``stage_options.supplies``, S3-Rec: ``n_attributes``); none for a model without a stage."""
    return tuple(getattr(model_class.stage_options, "supplies", ())) if can_pretrain(model_class) else ()


def missing_members(model: object) -> list[str]:
    """The members of :class:`SequentialRecommender` that ``model`` lacks (an ``nn.Module`` whose
    ``forward`` is not overridden counts as lacking it)."""
    missing = []
    if not isinstance(getattr(model, "name", None), str):
        missing.append("name (a str)")
    if getattr(type(model), "forward", nn.Module.forward) is nn.Module.forward:
        missing.append("forward(item_seq [B, L]) -> [B, L, d]")
    if not callable(getattr(model, "output_table", None)):
        missing.append("output_table() -> [N, d]")
    return missing


def check_protocol(model: object, target: str) -> None:
    """Refuse a model that does not satisfy :class:`SequentialRecommender`.

    Args:
        model: the built model.
        target: its ``_target_`` (for the message).

    Raises:
        ConfigError: naming the class, what it lacks and where the contract is written.
    """
    missing = missing_members(model)
    if missing:
        raise ConfigError(
            f"model {target} does not implement seqrec's model protocol (seqrec.models.protocol."
            f"SequentialRecommender): it lacks {', '.join(missing)}. Training, evaluation and recommendation "
            "read a model only through these; add them (docs/extending.md shows a model in one file)."
        )
