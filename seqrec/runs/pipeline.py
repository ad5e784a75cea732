"""``run(cfg)``: preprocess → build → train with early stopping → evaluate → write outputs.

This is the one function behind ``python train.py …``; tests call it in-process with a
composed config. Every object is built from its config group with ``hydra.utils.instantiate``;
dataset-derived sizes (``n_items``, ``max_len``) are passed at build time.
"""

from __future__ import annotations

import contextlib
import logging
import platform
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from omegaconf import DictConfig, OmegaConf

from seqrec.atomic import write_json
from seqrec.config.schema import CheckedConfig, build_object, validate_config
from seqrec.data import LeaveOneOut, SequenceData, load_dataset
from seqrec.devices import resolve_device
from seqrec.errors import ConfigError, RunInterrupted
from seqrec.locks import RUN_LOCK, exclusive
from seqrec.losses import Loss
from seqrec.models.causality import check_causal
from seqrec.models.protocol import check_protocol
from seqrec.models.scoring import training_table
from seqrec.runs import resume
from seqrec.runs.outputs import NoWriter, RunOutput, RunWriter, per_user_frame, writing
from seqrec.runs.rundir import set_tf32, settle_hydra_record, share_run_dir
from seqrec.runs.summary import print_summary
from seqrec.runs.tracking import build_trackers, check_trackers
from seqrec.seeding import seed_everything
from seqrec.training import distributed as ddp
from seqrec.training.pretrain_stage import PretrainStage, prepare_stage, start_fine_tuning
from seqrec.training.trainer import Interrupted, Trainer

log = logging.getLogger(__name__)


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
    options: CheckedConfig
    # what the model was built with besides its options (n_items, max_len, S3-Rec's n_attributes)
    model_kwargs: dict
    # the pre-training stage (S3-Rec's) when this run pre-trains or fine-tunes from its checkpoint
    pretraining: PretrainStage | None = None


def build_model(
    options: CheckedConfig, cfg: DictConfig, data: SequenceData, split: LeaveOneOut, device: torch.device
) -> tuple[torch.nn.Module, dict, PretrainStage | None]:
    """The model of the checked config on ``device``, the data-derived arguments it was built
    with, and the pre-training stage when the run needs one.

    A model with a pre-training stage (:class:`~seqrec.models.protocol.Pretrainable`, checked
    options in ``options.pretraining``) gets its stage and the constructor arguments the stage
    supplies from :func:`seqrec.training.pretrain_stage.prepare_stage`.
    """

    def make(**sizes) -> torch.nn.Module:
        return build_object(options.model, "model", **sizes).to(device)

    stage, sizes = None, {"n_items": data.n_items, "max_len": options.dataset.max_len}
    if options.pretraining is not None:
        stage, supplied = prepare_stage(options.pretraining, options.run.stage, cfg, data, split, make)
        sizes.update(supplied)
    model = make(**sizes)
    check_protocol(model, options.model["_target_"])
    return model, sizes, stage


def build(cfg: DictConfig) -> Experiment:
    """Check the config (:func:`seqrec.config.schema.validate_config`), seed, pick the device,
    load and split the data, and instantiate model, loss, optimizer and trainer from their config
    groups (dataset-derived sizes passed at build time).

    Used by :func:`run` and by the benchmarks, so both measure the same objects.

    Raises:
        SeqrecError: bad data or configuration, before anything is written.
    """
    options = validate_config(cfg)
    seed_everything(options.run.seed)
    device = ddp.local_device(resolve_device(options.run.device))  # DDP: cuda:<LOCAL_RANK>
    loss = build_object(options.loss, "loss")  # cheap: a bad loss option fails before the data loads
    if options.run.num_threads:
        torch.set_num_threads(options.run.num_threads)
    set_tf32(options.run.tf32)  # set either way: a sweep's second run does not inherit the first's

    data = load_dataset(options.dataset, Path(cfg.data_dir))
    split = LeaveOneOut.build(data, max_len=options.dataset.max_len).to(device)
    log.info(
        "%s: %d users (%d with a training sequence), %d items, %d interactions",
        data.name,
        data.n_users,
        len(split.train_users),
        data.n_items,
        int(data.lengths.sum()),
    )

    model, model_kwargs, pretraining = build_model(options, cfg, data, split, device)
    if not loss.full_softmax and training_table(model, True).shape[0] > data.n_items:
        raise ConfigError(
            f"model.padding_class=true makes the padding row a class of a full softmax, which loss={loss.name} "
            "does not compute (it scores only the items it samples), so the option would change nothing. Drop "
            "it (model.random_padding_row=true alone gives the reference's fixed row, as its BCE has it), or "
            "train with loss=ce or loss=cce."
        )
    if options.run.stage == "finetune" and loss.positions == "all":  # the model must not see its targets
        check_causal(model, data.n_items, options.dataset.max_len, loss.name)
    try:
        loss.bind_catalogue(data.n_items)
    except ValueError as err:
        raise ConfigError(f"the loss {loss.name} does not fit this dataset ({data.n_items} items): {err}") from None
    loss = loss.to(device)
    if loss.sampler is not None:
        loss.sampler.bind(split)
    # a loss may have parameters of its own: they are trained with the model's
    optimizer = build_object(options.optimizer, "optimizer", params=[*model.parameters(), *loss.parameters()])
    trainer = build_object(
        options.trainer,
        "trainer",
        model=model,
        loss=loss,
        optimizer=optimizer,
        split=split,
        seed=options.run.seed,
        device=device,
    )
    return Experiment(data, split, model, loss, optimizer, trainer, device, options, model_kwargs, pretraining)


def start_from_pretraining(exp: Experiment, progress: bool) -> dict:
    """Before fine-tuning a model with a pre-training stage: its starting weights
    (:func:`seqrec.training.pretrain_stage.start_fine_tuning`, pre-training first when needed); return
    the facts for ``metrics.json`` (none for a model without a pre-training stage).

    Raises:
        RunInterrupted: SIGTERM/Ctrl-C while pre-training (its ``last.pt`` holds the position).
    """
    if exp.options.pretraining is None:
        return {}
    with resume.stop_on_signals() as stop:
        try:
            return start_fine_tuning(exp.options.pretraining, exp.pretraining, exp.model, exp.data, progress, stop)
        except Interrupted as err:
            raise RunInterrupted(err.signal, None, pretraining=exp.pretraining.folder) from None


def run(cfg: DictConfig, overrides: list[str] | None = None, trackers: Sequence = ()) -> dict:
    """Train and evaluate one dataset × model × loss × optimizer configuration.

    A folder that already holds a finished run (``metrics.json``) is not retrained; an unfinished
    one with ``last.pt`` is continued (``resume=<folder>``, or a sweep re-run into fixed folders,
    see :mod:`seqrec.runs.resume`). SIGTERM and Ctrl-C save ``last.pt`` after the running batch.

    Args:
        cfg: composed config (``conf/config.yaml``); ``cfg.output_dir`` is where files go.
        overrides: the command-line overrides (for ``resume=``: only these are checked against
            the saved config).
        trackers: trackers (:class:`seqrec.runs.tracking.Tracker`) beside the ``logger`` group's, e.g. a
            search trial's pruning (:func:`seqrec.tune.pruning.trial_trackers`); rank 0 only.

    Returns:
        The contents of ``metrics.json``: ``valid/<metric>`` and ``test/<metric>`` for
        HR@5/10/20 and NDCG@5/10/20, plus run facts (best epoch, seconds per epoch, …).

    Raises:
        SeqrecError: bad data or configuration (message says what to fix).
        RunInterrupted: stopped by SIGTERM/Ctrl-C; ``last.pt`` is saved.
    """
    wall_start = time.perf_counter()
    stage = validate_config(cfg).run.stage  # every option, before a file is read or written
    # DDP (torchrun): join the process group, use rank 0's run folder and rank 0's view of it
    if ddp.init_from_env(cfg.device) and stage == "pretrain":
        raise ConfigError(
            "stage=pretrain runs in one process: start it with `python train.py stage=pretrain ...`, "
            "then fine-tune under torchrun (it loads the pre-trained checkpoint)."
        )
    cfg = share_run_dir(cfg)
    with own_run_folder(cfg):
        return _run_owned(cfg, overrides, stage, wall_start, trackers)


@contextlib.contextmanager
def own_run_folder(cfg: DictConfig):
    """Hold the run folder's lock (:mod:`seqrec.locks`) for the run's life, on rank 0: a second
    process writing the same folder is refused before it reads or writes anything there. The
    folder is the one ``resume=`` names, else ``output_dir`` (created)."""
    if not ddp.is_main():
        yield
        return
    folder = Path(str(cfg.resume)) if cfg.get("resume") else Path(cfg.output_dir)
    if not folder.is_dir():
        if cfg.get("resume"):  # resume.prepare names the missing folder
            yield
            return
        with writing(folder, "the run folder"):
            folder.mkdir(parents=True, exist_ok=True)
    with exclusive(folder / RUN_LOCK, what="run folder"):
        yield


def _run_owned(
    cfg: DictConfig, overrides: list[str] | None, stage: str, wall_start: float, trackers: Sequence = ()
) -> dict:
    """:func:`run` once the folder is this process's."""
    start = (
        ddp.on_main(lambda: resume.prepare(cfg, overrides))
        if stage == "finetune"
        else resume.RunStart(cfg, Path(cfg.output_dir))
    )
    resumed = cfg.get("resume")  # the saved config of a resumed run has no resume=
    cfg, out_dir = start.cfg, start.out_dir
    if start.finished is not None:
        # the same config on changed data is another run: never hand back the old metrics
        ddp.on_main(lambda: resume.check_finished_data(cfg, out_dir, start.finished))
        if ddp.is_main():
            settle_hydra_record(out_dir, resumed, accepted=False)
            print(
                f"{out_dir} already holds a finished run (metrics.json); not retrained. Delete the folder "
                "to train it again."
            )
        return start.finished
    exp = build(cfg)  # a resumed run's saved config is checked too; bad data fails here, before any write
    trackers = [*build_trackers(exp.options.logger), *trackers]
    # an unreachable tracking server fails here, on every rank, before the folder is touched
    ddp.on_main(lambda: check_trackers(trackers))
    if ddp.is_main():  # the run is accepted: Hydra's record of this command joins the folder
        settle_hydra_record(out_dir, resumed, accepted=True)
    data, trainer = exp.data, exp.trainer
    if stage == "pretrain":
        return run_pretraining(cfg, exp, wall_start, trackers)
    config = OmegaConf.to_container(cfg, resolve=True)
    # DDP: rank 0 alone writes; the others get rank 0's weights in fit()
    output = RunWriter if ddp.is_main() else NoWriter
    identity = {"model_kwargs": exp.model_kwargs, "data_fingerprint": data.fingerprint}
    if start.state is None:
        writer: RunOutput = output(out_dir, config, **identity)
        writer.config(OmegaConf.to_yaml(cfg, resolve=True))
        pretrain_facts = ddp.on_main(lambda: start_from_pretraining(exp, cfg.trainer.progress))
    else:
        resume.check_identity(start.state, config, out_dir / "last.pt", data.fingerprint)
        if ddp.is_main():  # the rank that reads best.pt at the end
            resume.check_best(out_dir / "best.pt", start.state, config, data.fingerprint)
        trainer.load_state_dict(start.state)  # the model's weights come from last.pt
        writer = output(out_dir, config, history=trainer.state.history, **identity)
        if ddp.is_main():
            _record_folder(writer, out_dir)
        pretrain_facts = start.state.get("facts", {})
    writer.facts = pretrain_facts
    writer.ids(data.item_tokens, data.user_tokens)  # raw ids for seqrec.recommend
    writer.start_trackers(trackers, trainer.state.epoch + 1)
    try:
        return _train_and_finish(exp, writer, out_dir, int(cfg.seed), pretrain_facts, wall_start)
    finally:
        writer.close_trackers()


def _record_folder(writer: RunOutput, out_dir: Path) -> None:
    """Set ``config.yaml``'s ``output_dir`` to ``out_dir`` when a continued run lives elsewhere than it
    started (a search's re-queued trial moved to its new trial's folder, a folder moved by hand)."""
    path = out_dir / "config.yaml"
    if not path.is_file():
        return
    saved = OmegaConf.load(path)
    if saved.get("output_dir") is None or Path(str(saved.output_dir)).resolve() != out_dir.resolve():
        saved.output_dir = str(out_dir)
        writer.config(OmegaConf.to_yaml(saved))


def _train_and_finish(
    exp: Experiment, writer: RunOutput, out_dir: Path, seed: int, pretrain_facts: dict, wall_start: float
) -> dict:
    """Train with ``exp``'s trainer, then write the run's results through ``writer``; returns the
    content of ``metrics.json``."""
    data, model, loss, trainer, device = exp.data, exp.model, exp.loss, exp.trainer, exp.device
    with resume.stop_on_signals() as stop:
        try:
            result = trainer.fit(on_epoch_end=writer.epoch, checkpoints=writer, stop=stop)
        except Interrupted as err:
            raise RunInterrupted(err.signal, out_dir) from None

    repeats = {
        f"{split}/repeat_share": float(exp.split.repeated_targets(split).double().mean()) for split in ("valid", "test")
    }
    metrics = {
        "dataset": data.name,
        "model": model.name,
        "loss": loss.name,
        "seed": seed,
        **result.metrics,
        **repeats,
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
        "rank_repeats": trainer.rank_repeats,
        "device": str(device),
        "world_size": ddp.world_size(),
        "torch": torch.__version__,
        "python": platform.python_version(),
        "git_commit": git_commit(),
        "output_dir": str(out_dir),
    }
    if not ddp.is_main():
        return metrics
    print_summary(metrics)  # printed first: the numbers are shown even when the disk is full
    writer.finish(metrics, per_user_frame(result.test_ranks, data.user_tokens))
    return metrics


def run_pretraining(cfg: DictConfig, exp: Experiment, wall_start: float, trackers: Sequence = ()) -> dict:
    """``stage=pretrain``: make sure the pre-trained checkpoint exists (pre-training or resuming
    as needed), write ``pretrain.json`` (no ``metrics.json``: this is no finished run) and return it.
    ``trackers`` (the ``logger`` group's and any others, built and checked by the caller) record
    each pre-training epoch's objectives as ``pretrain/<objective>`` (``aap``, ``mip``, ``map``,
    ``sp``, ``loss``, ``seconds``; step = epoch) in the run folder.

    The model has a pre-training stage: :func:`validate_config` refuses ``stage=pretrain`` otherwise.

    Raises:
        RunInterrupted: SIGTERM/Ctrl-C; the pre-training folder's ``last.pt`` holds the position
            inside the running epoch, and the same command continues from it.
    """
    out_dir = Path(cfg.output_dir)
    config = OmegaConf.to_container(cfg, resolve=True)
    started: list = []

    def on_start(first_epoch: int) -> None:
        for tracker in trackers:
            tracker.start(out_dir, config, first_epoch)
            started.append(tracker)

    def on_epoch(row: dict) -> None:
        for tracker in started:
            tracker.log_epoch({"epoch": row["epoch"], **{f"pretrain/{k}": v for k, v in row.items() if k != "epoch"}})

    try:
        with resume.stop_on_signals() as stop:
            try:
                path = exp.pretraining.checkpoint(cfg.trainer.progress, on_start, on_epoch, stop)
            except Interrupted as err:
                raise RunInterrupted(err.signal, out_dir, pretraining=exp.pretraining.folder) from None
        summary = {
            "dataset": exp.data.name,
            "model": exp.model.name,
            **exp.pretraining.summary(path),
            "total_seconds": time.perf_counter() - wall_start,
            "device": str(exp.device),
            "output_dir": str(cfg.output_dir),
        }
        write_json(out_dir / "pretrain.json", summary)
        for tracker in started:
            tracker.log_final(summary)
    finally:
        for tracker in started:
            tracker.close()
    losses = "  ".join(f"{k.split('/')[1]} {v:.4g}" for k, v in summary.items() if k.startswith("pretrain/"))
    print(
        f"pre-trained {summary['model']} on {summary['dataset']}: epoch {summary['pretrain_epochs']} "
        f"({losses})\ncheckpoint {path}"
    )
    return summary
