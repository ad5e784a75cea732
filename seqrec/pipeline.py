"""``run(cfg)``: preprocess → build → train with early stopping → evaluate → write outputs.

This is the one function behind ``python train.py …``; tests call it in-process with a
composed config. Every object is built from its config group with ``hydra.utils.instantiate``;
dataset-derived sizes (``n_items``, ``max_len``) are passed at build time.
"""

from __future__ import annotations

import difflib
import inspect
import logging
import platform
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import torch
from hydra.errors import InstantiationException
from hydra.utils import get_object, instantiate
from omegaconf import DictConfig, OmegaConf

from seqrec.data import LeaveOneOut, SequenceData, load_dataset
from seqrec import distributed as ddp
from seqrec import resume
from seqrec.errors import ConfigError, RunInterrupted, SeqrecError
from seqrec.evaluation import MASKED_RANK
from seqrec.losses import Loss
from seqrec.models.s3rec_checkpoint import load_published
from seqrec.outputs import RunWriter, per_user_frame, write_json
from seqrec.pretrain import PretrainStage
from seqrec.seeding import seed_everything
from seqrec.summary import print_summary
from seqrec.trainer import Interrupted, Trainer

# warn when a larger share of valid or test targets are masked repeats of the user's history
MASKED_WARN_SHARE = 0.05

log = logging.getLogger(__name__)


def resolve_device(name: str) -> torch.device:
    """``auto`` → CUDA when available, else CPU; ``cpu``/``cuda``/``cuda:1`` as given.

    Raises:
        ConfigError: a CUDA device was asked for on a machine without one.
    """
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"device={name} was asked for but no CUDA GPU is available here; use device=cpu or device=auto.")
    return device


def git_commit() -> str | None:
    """The current git commit of the project, when it is a git checkout."""
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=Path(__file__).parent, capture_output=True, text=True, timeout=5
        )
        return out.stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


@dataclass
class Experiment:
    """Everything one run trains and evaluates, built from the config (see :func:`build`)."""

    data: SequenceData
    split: LeaveOneOut
    model: torch.nn.Module
    loss: Loss
    optimizer: torch.optim.Optimizer
    trainer: Trainer
    device: torch.device
    # S3-Rec's pre-training stage (models whose config has a `pretrain` sub-config), else None
    pretraining: PretrainStage | None = None


def build_object(node: DictConfig, group: str, **kwargs):
    """``hydra.utils.instantiate(node, **kwargs)`` with errors a user can act on.

    Raises:
        SeqrecError: the constructor's own :class:`SeqrecError`, or a :class:`ConfigError`
            naming the config group, the bad value and the options the class takes.
    """
    try:
        return instantiate(node, **kwargs)
    except InstantiationException as err:
        cause = err.__cause__
        if isinstance(cause, SeqrecError):
            raise cause from None
        target = node.get("_target_", "?")
        try:
            params = [p for p in inspect.signature(get_object(target)).parameters if p not in kwargs]
        except Exception:  # noqa: BLE001 - only for the hint
            params = []
        options = f" Its options are: {', '.join(params)}." if params else ""
        raise ConfigError(
            f"could not build {group} ({target}) from its config: {cause or err}. Check the "
            f"{group}.* values on the command line and in conf/{group}/.{options}"
        ) from None


def build_model(cfg: DictConfig, data: SequenceData, split: LeaveOneOut,
                device: torch.device) -> tuple[torch.nn.Module, PretrainStage | None]:
    """The model of ``cfg`` on ``device`` (dataset sizes passed at build time) and, for a model
    with a pre-training stage (S3-Rec, which also gets the dataset's attribute count), that stage.

    Also used to rebuild a finished run's model (``seqrec.analysis``).
    """
    pretraining = PretrainStage.from_config(cfg, data, split, device) if "pretrain" in cfg.model else None
    extra = {"n_attributes": pretraining.n_attributes} if pretraining is not None else {}
    model = build_object(cfg.model, "model", n_items=data.n_items, max_len=cfg.dataset.max_len, **extra)
    return model.to(device), pretraining


def build(cfg: DictConfig) -> Experiment:
    """Seed, pick the device, load and split the data, and instantiate model, loss, optimizer
    and trainer from their config groups (dataset-derived sizes passed at build time).

    Used by :func:`run` and by the benchmarks, so both measure the same objects.

    Raises:
        SeqrecError: bad data or configuration.
    """
    if isinstance(cfg.seed, bool) or not isinstance(cfg.seed, int):
        raise ConfigError(f"seed={cfg.seed!r} must be a whole number (e.g. seed=42).")
    seed_everything(cfg.seed)
    device = ddp.local_device(resolve_device(cfg.device))  # DDP: cuda:<LOCAL_RANK>
    loss = build_object(cfg.loss, "loss")  # cheap: a bad loss option fails before the data loads
    if cfg.get("num_threads"):
        torch.set_num_threads(int(cfg.num_threads))
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True

    data = load_dataset(cfg.dataset, Path(cfg.data_dir))
    split = LeaveOneOut.build(data, max_len=cfg.dataset.max_len).to(device)
    log.info(
        "%s: %d users (%d with a training sequence), %d items, %d interactions",
        data.name, data.n_users, len(split.train_users), data.n_items, int(data.lengths.sum()),
    )

    model, pretraining = build_model(cfg, data, split, device)
    loss = loss.to(device)
    if loss.sampler is not None:
        loss.sampler.bind(split)
    # a loss may have parameters of its own: they are trained with the model's
    optimizer = build_object(cfg.optimizer, "optimizer", params=[*model.parameters(), *loss.parameters()])
    # objects (the split is a dataclass) go in through the partial, so Hydra never converts them to config
    make_trainer = build_object(cfg.trainer, "trainer", _partial_=True)
    try:
        trainer = make_trainer(model=model, loss=loss, optimizer=optimizer, split=split, seed=cfg.seed, device=device)
    except TypeError as err:  # e.g. an unknown key added with +trainer.foo=...
        raise ConfigError(f"trainer: {err}. Valid trainer options are: "
                          f"{', '.join(inspect.signature(Trainer).parameters)}.") from None
    return Experiment(data, split, model, loss, optimizer, trainer, device, pretraining)


# the top-level keys of conf/config.yaml, its groups, and `seeds` of experiment=table2
TOP_LEVEL_KEYS = frozenset({
    "dataset", "model", "loss", "optimizer", "trainer", "eval", "experiment", "seed", "seeds", "stage",
    "device", "num_threads", "data_dir", "output_dir", "resume",
})


def check_top_level_keys(cfg: DictConfig) -> None:
    """Refuse a top-level key nothing reads, e.g. ``+max_epochs=5`` (meant: ``trainer.max_epochs``).

    Hydra answers ``max_epochs=5`` with "use +max_epochs=5", which would add a key that is silently
    ignored. Group options (``+trainer.x``) are checked where they are used.

    Raises:
        ConfigError: naming the key, the option it most likely meant, and the valid keys.
    """
    unknown = sorted(set(map(str, cfg.keys())) - TOP_LEVEL_KEYS)
    if not unknown:
        return
    key = unknown[0]
    candidates = {name: name for name in TOP_LEVEL_KEYS}
    for group in ("trainer", "eval", "model", "loss", "optimizer", "dataset"):
        for option in (cfg.get(group) or {}):
            candidates.setdefault(str(option), f"{group}.{option}")
    close = difflib.get_close_matches(key, list(candidates), n=1)
    hint = f"Did you mean {candidates[close[0]]}=...? " if close else ""
    raise ConfigError(
        f"unknown top-level option '{key}': nothing in seqrec reads it, so it would be silently "
        f"ignored. {hint}Top-level options are {', '.join(sorted(TOP_LEVEL_KEYS))}; the others live "
        "in their group, e.g. trainer.max_epochs=5 or dataset.kcore=10."
    )


def run(cfg: DictConfig, overrides: list[str] | None = None) -> dict:
    """Train and evaluate one dataset × model × loss × optimizer configuration.

    A folder that already holds a finished run (``metrics.json``) is not retrained; an unfinished
    one with ``last.pt`` is continued (``resume=<folder>``, or a sweep re-run into fixed folders,
    see :mod:`seqrec.resume`). SIGTERM and Ctrl-C save ``last.pt`` after the running batch.

    Args:
        cfg: composed config (``conf/config.yaml``); ``cfg.output_dir`` is where files go.
        overrides: the command-line overrides (for ``resume=``: only these are checked against
            the saved config).

    Returns:
        The contents of ``metrics.json``: ``valid/<metric>`` and ``test/<metric>`` for
        HR@5/10/20 and NDCG@5/10/20, plus run facts (best epoch, seconds per epoch, …).

    Raises:
        SeqrecError: bad data or configuration (message says what to fix).
        RunInterrupted: stopped by SIGTERM/Ctrl-C; ``last.pt`` is saved.
    """
    wall_start = time.perf_counter()
    check_top_level_keys(cfg)
    stage = cfg.get("stage", "finetune")
    if stage not in ("finetune", "pretrain"):
        raise ConfigError(f"stage={stage} is not a stage; use stage=finetune (default) or stage=pretrain.")
    # DDP (torchrun): join the process group, use rank 0's run folder and rank 0's view of it
    if ddp.init_from_env(cfg.device) and stage == "pretrain":
        raise ConfigError("stage=pretrain runs in one process: start it with `python train.py stage=pretrain ...`, "
                          "then fine-tune under torchrun (it loads the pre-trained checkpoint).")
    cfg = ddp.share_run_dir(cfg)
    start = ddp.on_main(lambda: resume.prepare(cfg, overrides)) if stage == "finetune" else \
        resume.RunStart(cfg, Path(cfg.output_dir))
    cfg, out_dir = start.cfg, start.out_dir
    if start.finished is not None:
        if ddp.is_main():
            print(f"{out_dir} already holds a finished run (metrics.json); not retrained. Delete the folder "
                  "to train it again.")
        return start.finished
    exp = build(cfg)  # bad data or options fail here, before anything is written
    data, model, loss, trainer, device = exp.data, exp.model, exp.loss, exp.trainer, exp.device
    if stage == "pretrain":
        return run_pretraining(cfg, exp, wall_start)
    config = OmegaConf.to_container(cfg, resolve=True)
    main = ddp.is_main()  # DDP: rank 0 alone writes; the others get rank 0's weights in fit()
    if start.state is None:
        writer = RunWriter(out_dir, config) if main else ddp.NoWriter()
        writer.config(OmegaConf.to_yaml(cfg, resolve=True))
        # S3-Rec: a published pre-trained model, or the matching own checkpoint (pre-training first
        # if needed); then fine-tune it
        if cfg.model.get("pretrained_from"):
            pretrain_facts = ddp.on_main(lambda: load_published(
                model, cfg.model.pretrained_from, data.item_tokens, data.name))
        else:
            pretrain_facts = ddp.on_main(lambda: exp.pretraining.load_into(model, cfg.trainer.progress)) \
                if exp.pretraining else {}
    else:
        trainer.load_state_dict(start.state)  # the model's weights come from last.pt
        writer = RunWriter(out_dir, config, history=trainer.state.history) if main else ddp.NoWriter()
        pretrain_facts = start.state.get("facts", {})
    writer.facts = pretrain_facts
    writer.ids(data.item_tokens, data.user_tokens)  # raw ids for seqrec.recommend

    with resume.stop_on_signals() as stop:
        try:
            result = trainer.fit(on_epoch_end=writer.epoch, checkpoints=writer, stop=stop)
        except Interrupted as err:
            raise RunInterrupted(err.signal, out_dir) from None

    masked = {f"{split}/masked_share": float((ranks == MASKED_RANK).double().mean())
              for split, ranks in (("valid", result.valid_ranks), ("test", result.test_ranks))}
    metrics = {
        "dataset": data.name,
        "model": getattr(model, "name", type(model).__name__.lower()),
        "loss": loss.name,
        "seed": int(cfg.seed),
        **result.metrics,
        **masked,
        "best_epoch": result.best_epoch,
        "epochs_run": result.epochs_run,
        "seconds_per_epoch": result.seconds_per_epoch,
        "eval_seconds_per_epoch": result.eval_seconds_per_epoch,
        "total_seconds": time.perf_counter() - wall_start,
        "n_users": data.n_users,
        "n_items": data.n_items,
        "data_fingerprint": data.fingerprint,
        **pretrain_facts,
        "monitor": trainer.monitor,
        "mask_history": trainer.mask_history,
        "device": str(device),
        "world_size": ddp.world_size(),
        "torch": torch.__version__,
        "python": platform.python_version(),
        "git_commit": git_commit(),
        "output_dir": str(out_dir),
    }
    if not main:
        return metrics
    warn_masked_targets(masked, trainer.mask_history)
    print_summary(metrics)  # printed first: the numbers are shown even when the disk is full
    writer.finish(metrics, per_user_frame(result.test_ranks, data.user_tokens))
    return metrics


def warn_masked_targets(masked: dict[str, float], mask_history: bool) -> None:
    """Warn when more than :data:`MASKED_WARN_SHARE` of the valid or test targets repeat an item of
    the user's history: with ``eval.mask_history=true`` they are misses by construction (a log
    with every row twice scores 0 everywhere)."""
    worst = max(masked.values())
    if mask_history and worst > MASKED_WARN_SHARE:
        log.warning(
            "%.1f%% of the validation and %.1f%% of the test targets are items the user already "
            "interacted with; eval.mask_history=true masks them, so they count as misses. If the log "
            "repeats rows, deduplicate it; if repeats are real (re-consumption), evaluate with "
            "eval.mask_history=false.", 100 * masked["valid/masked_share"], 100 * masked["test/masked_share"])


def run_pretraining(cfg: DictConfig, exp: Experiment, wall_start: float) -> dict:
    """``stage=pretrain``: make sure the pre-trained checkpoint exists (pre-training or resuming
    as needed), write ``pretrain.json`` (no ``metrics.json``: this is no finished run) and return it.

    Raises:
        ConfigError: the model has no pre-training stage.
    """
    if exp.pretraining is None:
        raise ConfigError(f"stage=pretrain needs a model with a pre-training stage (model=s3rec); "
                          f"{cfg.model._target_} has none.")
    if cfg.model.get("pretrained_from"):
        raise ConfigError(f"stage=pretrain with model.pretrained_from={cfg.model.pretrained_from}: the "
                          "published model is already pre-trained, and stage=pretrain only runs "
                          "seqrec's own pre-training; drop one of the two.")
    path = exp.pretraining.checkpoint(cfg.trainer.progress)
    summary = {"dataset": exp.data.name, "model": getattr(exp.model, "name", type(exp.model).__name__.lower()),
               **exp.pretraining.summary(path), "total_seconds": time.perf_counter() - wall_start,
               "device": str(exp.device), "output_dir": str(cfg.output_dir)}
    write_json(Path(cfg.output_dir) / "pretrain.json", summary)
    losses = "  ".join(f"{k.split('/')[1]} {v:.4g}" for k, v in summary.items() if k.startswith("pretrain/"))
    print(f"pre-trained {summary['model']} on {summary['dataset']}: epoch {summary['pretrain_epochs']} "
          f"({losses})\ncheckpoint {path}")
    return summary
