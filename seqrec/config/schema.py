"""The schemas of a run's config and :func:`validate_config`, which checks a composed config once.

* top level (``conf/config.yaml``): :class:`RunOptions`; ``eval``: :class:`EvalOptions`;
* ``dataset``: :class:`seqrec.data.spec.DatasetSpec`;
* ``model``, ``loss``, ``optimizer``, ``trainer``: the signature of their ``_target_`` (minus
  what seqrec passes itself, :data:`SUPPLIED`); a model config with ``pretrained``/``pretrain``
  (S3-Rec) adds :class:`seqrec.models.s3rec_stage.Pretraining`.

Every wrong type or value, and every key nothing reads, in any group, is one
:class:`~seqrec.errors.ConfigError` paragraph naming the option, the value and what it accepts;
:func:`seqrec.runs.pipeline.build` calls :func:`validate_config` before it loads data or writes a file.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal

from hydra.utils import get_object, instantiate
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import InterpolationResolutionError, MissingMandatoryValue

from seqrec.data.spec import DatasetSpec
from seqrec.errors import ConfigError
from seqrec.models.protocol import stage_keys, stage_supplies
from seqrec.options import Pattern, PositiveInt, Range, check_options, construct, plain, rejected
from seqrec.runs.tracking import check_loggers


@dataclass(frozen=True)
class RunOptions:
    """The top-level options (``conf/config.yaml``, which holds their values and comments).

    Args:
        seed: seeds Python, NumPy and torch, batch order and negative sampling.
        stage: ``finetune`` (train and evaluate; S3-Rec pre-trains first when needed) or
            ``pretrain`` (only S3-Rec's pre-training).
        device: ``auto`` (CUDA when available), ``cpu``, ``cuda``, ``cuda:<index>`` or ``mps``.
        num_threads: torch CPU threads; None = torch's default.
        tf32: CUDA matmuls and convolutions in TF32 (Ampere and newer GPUs: fp32 range, 10-bit
            mantissa, several times faster); False for strict fp32. No effect on CPU.
        data_dir: where datasets are fetched to and cached.
        output_dir: the run folder (Hydra's); None outside a Hydra app (benchmarks).
        seeds: seeds per combination of ``experiment=table2`` (read by its sweeper).
        resume: a run folder to resume training from (None: start afresh).
    """

    seed: Annotated[int, Range(ge=0, le=2**32 - 1)]
    stage: Literal["finetune", "pretrain"]
    device: Annotated[str, Pattern(r"auto|cpu|mps|cuda(:\d+)?", "one of auto, cpu, cuda, cuda:<index>, mps")]
    num_threads: PositiveInt | None
    data_dir: str
    output_dir: str | None
    tf32: bool = True
    seeds: PositiveInt | None = None
    resume: str | None = None


@dataclass(frozen=True)
class EvalOptions:
    """Full-ranking evaluation (``conf/eval/default.yaml``).

    Args:
        mask_history: remove the user's past items from the ranking (paper: true).
        batch_size: users scored at once, or ``auto`` (see
            :func:`seqrec.evaluation.resolve_eval_batch_size`).
        rank_repeats: rank a target that repeats a history item (true) or mask it with the
            history (false: the paper's code).
    """

    mask_history: bool
    batch_size: Literal["auto"] | PositiveInt
    rank_repeats: bool = True


# config groups: every other top-level key is a RunOptions field
GROUPS = ("dataset", "model", "loss", "optimizer", "trainer", "eval")
# config groups that are off unless selected (null in conf/config.yaml's defaults)
OPTIONAL_GROUPS = ("logger",)
# what seqrec.runs.pipeline passes to each _target_ at build time (data-derived sizes, built objects):
# never options, so `+trainer.seed=7` or `+model.n_items=5` is an error
SUPPLIED = {
    "model": ("n_items", "max_len"),  # + what a pre-training stage supplies (stage_supplies)
    "loss": (),
    "optimizer": ("params",),
    "trainer": ("model", "loss", "optimizer", "split", "seed", "device"),
}

# trainer options that are the eval group's (conf/trainer/default.yaml interpolates them)
FROM_EVAL = {"mask_history": "mask_history", "rank_repeats": "rank_repeats", "eval_batch_size": "batch_size"}


@dataclass(frozen=True)
class CheckedConfig:
    """What :func:`validate_config` returns: the checked options, as plain values or built specs.

    ``model``, ``loss``, ``optimizer``, ``trainer`` are the resolved nodes (``_target_`` plus
    constructor options; the model's without its stage keys), ready for
    :func:`build_object`. ``pretraining`` is None for a model without a pre-training stage.
    """

    run: RunOptions
    dataset: DatasetSpec
    eval: EvalOptions
    model: dict
    loss: dict
    optimizer: dict
    trainer: dict
    pretraining: Any
    # tracker name → options (seqrec.runs.tracking); empty: the run folder's files alone
    logger: dict = field(default_factory=dict)


def target_of(values: Mapping[str, Any], group: str):
    """The class or function named by ``values["_target_"]``.

    Raises:
        ConfigError: no ``_target_``, or it cannot be imported.
    """
    name = values.get("_target_")
    try:
        return get_object(name)
    except Exception as err:  # noqa: BLE001 - ImportError, AttributeError, Hydra's own errors
        raise ConfigError(
            f"{group}._target_={name!r} cannot be imported ({err}). Every file in "
            f"conf/{group}/ names a class with _target_, e.g. seqrec.models.SASRec."
        ) from None


def check_target_group(values: dict, group: str) -> None:
    """Check a ``_target_`` node against its target's signature (see :mod:`seqrec.options`)."""
    check_options(values, target_of(values, group), group, supplied=SUPPLIED[group])


def check_model(values: dict) -> tuple[dict, Any]:
    """Split a model node into its constructor options (checked) and, for a model with a
    pre-training stage (:class:`~seqrec.models.protocol.Pretrainable`), its checked stage options
    (an instance of the model's ``stage_options``; S3-Rec's :class:`~seqrec.models.s3rec_stage.Pretraining`).

    Raises:
        ConfigError: a bad option, or stage options on a model that cannot pre-train.
    """
    target = target_of(values, "model")
    keys = stage_keys(target)
    stage = {key: values[key] for key in keys if key in values}
    options = {key: value for key, value in values.items() if key not in keys}
    if not keys:
        others = _stage_keys_of_shipped_models()
        for key in values:
            if key in others:
                raise ConfigError(
                    f"unknown option model.{key}: {values['_target_']} has no pre-training stage "
                    f"({key} belongs to the stage of {', '.join(others[key])}), so nothing would read it. Remove it."
                )
    check_options(options, target, "model", supplied=(*SUPPLIED["model"], *stage_supplies(target)))
    return options, (construct(target.stage_options, stage, "model") if stage else None)


def _stage_keys_of_shipped_models() -> dict[str, list[str]]:
    """Stage key → the shipped models (``model=<name>``) whose pre-training stage reads it."""
    import seqrec.models

    owners: dict[str, list[str]] = {}
    for name in seqrec.models.__all__:
        cls = getattr(seqrec.models, name)
        for key in stage_keys(cls):
            owners.setdefault(key, []).append(f"model={cls.name}")
    return owners


def top_level(cfg: DictConfig) -> dict:
    """The top-level options of ``cfg`` (not the groups), interpolations resolved.

    ``output_dir`` (``${hydra:runtime.output_dir}``) is None outside a Hydra app.
    """
    values = {}
    for key in cfg:
        if key in GROUPS or key in OPTIONAL_GROUPS:
            continue
        try:
            value = cfg[key]
            values[key] = plain(value, key) if OmegaConf.is_config(value) else value
        except MissingMandatoryValue:
            raise ConfigError(
                f"{key} has no value (it is '???'). Set it on the command line, e.g. "
                f"`python train.py ... {key}=<value>`."
            ) from None
        except InterpolationResolutionError as err:
            if key != "output_dir":
                raise ConfigError(f"the option {key} cannot be resolved: {err}") from None
            values[key] = None
    return values


def validate_config(cfg: DictConfig) -> CheckedConfig:
    """Check every option of a composed run config (``conf/config.yaml`` + overrides).

    Checks keys, types, choices and ranges of the top level and of every group against their
    schemas, and the combinations: ``stage=pretrain`` needs a model with a pre-training stage.
    Nothing is converted: the config is used and recorded exactly as composed.

    Raises:
        ConfigError: one paragraph naming the first bad option, its value and the valid choices.
    """
    missing = [group for group in GROUPS if group not in cfg]
    if missing:
        raise ConfigError(
            f"the config has no '{missing[0]}' group; compose it from conf/config.yaml (groups: {', '.join(GROUPS)})."
        )
    groups = {group: plain(cfg[group], group) for group in GROUPS}
    also_meant = {
        str(key): f"{group}.{key}" for group in GROUPS for key in groups[group] if not str(key).startswith("_")
    }
    run = construct(
        RunOptions,
        top_level(cfg),
        "",
        where="conf/config.yaml",
        also_meant={**also_meant, **{group: group for group in GROUPS}},
    )
    dataset = construct(DatasetSpec, groups["dataset"], "dataset")
    eval_options = construct(EvalOptions, groups["eval"], "eval")
    model, pretraining = check_model(groups["model"])
    for group in ("loss", "optimizer", "trainer"):
        check_target_group(groups[group], group)
    for key, eval_key in FROM_EVAL.items():  # one value, read by training, analysis and recommend alike
        if key in groups["trainer"] and groups["trainer"][key] != groups["eval"].get(eval_key):
            raise ConfigError(
                f"trainer.{key}={groups['trainer'][key]!r} differs from eval.{eval_key}="
                f"{groups['eval'].get(eval_key)!r}: the trainer takes it from eval.{eval_key}, which the "
                f"analysis and the recommendations read too. Set eval.{eval_key}=... instead."
            )
    if run.stage == "pretrain" and pretraining is None:
        raise ConfigError(
            f"stage=pretrain needs a model with a pre-training stage (model=s3rec); "
            f"{model['_target_']} has none. Use stage=finetune."
        )
    logger = check_loggers(plain(cfg["logger"], "logger") if cfg.get("logger") is not None else None)
    return CheckedConfig(
        run=run,
        dataset=dataset,
        eval=eval_options,
        model=model,
        loss=groups["loss"],
        optimizer=groups["optimizer"],
        trainer=groups["trainer"],
        pretraining=pretraining,
        logger=logger,
    )


def build_object(values: Mapping[str, Any], group: str, **supplied: Any):
    """Build a checked ``_target_`` node (:class:`CheckedConfig`) with ``hydra.utils.instantiate``;
    objects and data-derived sizes go in as ``supplied`` (through a partial, so Hydra never
    converts them to config).

    Raises:
        SeqrecError: the class's own :class:`~seqrec.errors.SeqrecError`, or a
            :class:`ConfigError` naming the options when the class raises ``ValueError``.
    """
    factory = instantiate(dict(values), _partial_=True)
    try:
        return factory(**supplied)
    except ValueError as err:
        raise ConfigError(rejected(values, err, group, factory.func)) from None
