"""S3-Rec's pre-training stage options: what ``conf/model/s3rec.yaml`` holds beside the network's
constructor options (``pretrained``, ``pretrain``, ``pretrained_from``). :class:`~seqrec.models.S3Rec`
declares them (``stage_options``), so the config layer checks them without knowing S3-Rec; the
stage itself is :mod:`seqrec.training.pretrain` (the loop) and
:mod:`seqrec.training.pretrain_stage` (the checkpoints); the samples are
:mod:`seqrec.data.pretrain_samples`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Annotated, ClassVar

from seqrec.options import NonNegativeInt, PositiveInt, Probability, Range


@dataclass(frozen=True)
class PretrainConfig:
    """The pre-training recipe (keys of ``model.pretrain`` in ``conf/model/s3rec.yaml``, its
    schema; a test checks that the defaults here equal that file's).

    Args:
        epochs: pre-training epochs (S3-Rec checkpoints used by the CCE paper: 150 for Beauty,
            Toys, LastFM; 100 for Sports, Yelp — ``dataset.pretrain_epochs``).
        batch_size: prefixes per batch (100, S3-Rec's ``pre_batch_size``).
        lr: Adam learning rate (1e-3; betas 0.9/0.999, no weight decay as in the reference).
        aap_weight, mip_weight, map_weight, sp_weight: loss weights (0.2, 1.0, 1.0, 0.5).
        mask_p: probability of masking each item of a prefix (0.2); the last one always is.
        save_every: write a checkpoint every this many epochs (and after the last one).
        dir: root folder of the content-addressed checkpoints.
        seed: seed of the pre-training (initial weights, masks, negatives, segments), separate
            from the fine-tuning ``seed`` so that a seed sweep of fine-tunings shares one
            pre-training.
        bucket_by_length: batch prefixes of similar length and trim their common padding
            (identical per-sequence math, much less work; see ``seqrec.training.batching.epoch_batches``).
    """

    epochs: PositiveInt = 150
    batch_size: PositiveInt = 100
    lr: Annotated[float, Range(gt=0)] = 1e-3
    aap_weight: Annotated[float, Range(ge=0)] = 0.2
    mip_weight: Annotated[float, Range(ge=0)] = 1.0
    map_weight: Annotated[float, Range(ge=0)] = 1.0
    sp_weight: Annotated[float, Range(ge=0)] = 0.5
    mask_p: Probability = 0.2
    save_every: PositiveInt = 10
    dir: str = "outputs/pretrained"
    seed: NonNegativeInt = 42
    bucket_by_length: bool = True

    @property
    def weights(self) -> dict[str, float]:
        """Loss weights by objective name."""
        return {"aap": self.aap_weight, "mip": self.mip_weight, "map": self.map_weight, "sp": self.sp_weight}

    def recipe(self) -> dict:
        """The settings that change what a pre-training epoch computes (checkpoint key): all
        but ``epochs`` (the file name holds the epoch), ``save_every`` and ``dir``."""
        return {k: v for k, v in asdict(self).items() if k not in ("epochs", "save_every", "dir")}


@dataclass(frozen=True)
class Pretraining:
    """The stage options of a pre-trainable model's config (``conf/model/s3rec.yaml``), read by
    the pipeline and never passed to the network.

    Args:
        pretrained: fine-tune from the pre-trained checkpoint (pre-training first when it is
            missing) or, False, from scratch without touching any pre-training data.
        pretrain: the recipe.
        pretrained_from: path of a published S3-Rec pre-trained ``state_dict`` (the S3-Rec
            authors' ``<Name>-epochs-150.pt``) to fine-tune from instead of seqrec's own
            pre-training, which then does not run (:mod:`seqrec.models.s3rec_checkpoint`).

    Attributes:
        supplies: the model's constructor arguments that the stage supplies from its data
            (``n_attributes``: the dataset's attribute count, 0 without pre-training data), not
            options (see :func:`seqrec.models.protocol.stage_supplies`).
    """

    supplies: ClassVar[tuple[str, ...]] = ("n_attributes",)

    pretrained: bool
    pretrain: PretrainConfig
    pretrained_from: str | None = None

    def __post_init__(self):
        if self.pretrained_from and not self.pretrained:
            raise ValueError(
                f"model.pretrained_from={self.pretrained_from} loads pre-trained weights, but "
                "model.pretrained=false asks for none; drop one of the two"
            )
