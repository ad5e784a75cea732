"""Where S3-Rec's pre-trained models live and how fine-tuning starts from one (Zhou et al., CIKM
2020): the stage around :class:`seqrec.training.pretrain.PretrainLoop`.

**Checkpoints** (:class:`PretrainStage`): ``<dir>/<dataset>-<key>/epoch-<E>.pt`` where
  ``key`` hashes everything that changes what pre-training computes: the processed data's
  fingerprint, the attributes, the model's sizes and the pre-training recipe (not the number of
  epochs, which is in the file name, and not the fine-tuning seed, loss or trainer). All
  fine-tunings of a dataset (three losses, a seed sweep) share one pre-training; a later run
  that asks for more epochs resumes from the latest saved epoch. Every epoch draws its
  randomness from (seed, epoch) alone, so a resumed pre-training computes the same epochs as an
  uninterrupted one (bit-for-bit on CPU). Files are written atomically and a lock file keeps two
  processes from pre-training into the same folder at once.

:func:`prepare_stage` builds the stage a run's config asks for (or none), and
:func:`start_fine_tuning` puts the weights to fine-tune from into the model: the published
model, seqrec's own pre-training (run first when missing), or none.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from pathlib import Path

import torch
from omegaconf import DictConfig, OmegaConf

from seqrec.atomic import atomic_write, write_json
from seqrec.data.attributes import load_attributes
from seqrec.data.preprocess import SequenceData
from seqrec.data.pretrain_samples import PretrainData
from seqrec.data.split import LeaveOneOut
from seqrec.errors import ConfigError
from seqrec.locks import exclusive
from seqrec.models.s3rec_checkpoint import load_published
from seqrec.models.s3rec_stage import PretrainConfig, Pretraining
from seqrec.training.checkpoints import Checkpoints, DamagedCheckpoint, StopRequest, read_checkpoint
from seqrec.training.pretrain import OBJECTIVES, PretrainLoop

log = logging.getLogger(__name__)

# Bump when the sampling or the losses change what an epoch computes: old checkpoints are then
# not reused (they stay on disk under their old key).
PRETRAIN_VERSION = "1"
_CHECKPOINT_RE = re.compile(r"^epoch-(\d+)\.pt$")
# the keys of a model config that belong to :class:`Pretraining`, not to the model's constructor
STAGE_KEYS = tuple(f.name for f in fields(Pretraining))


class _StageCheckpoints(Checkpoints):
    """Where :class:`PretrainLoop` saves inside a :class:`PretrainStage` folder: ``last.pt`` every
    time (after every epoch, and mid-epoch on a stop), ``epoch-E.pt`` every ``save_every`` epochs
    and after the last; ``on_epoch`` is told each finished epoch once ``last.pt`` holds it."""

    def __init__(self, stage: PretrainStage, on_epoch: Callable[[dict], None] | None):
        super().__init__()
        self.stage, self.on_epoch = stage, on_epoch

    def save_last(self, state: dict) -> None:
        stage, epoch = self.stage, int(state["epoch"])
        payload = {**state, "key": stage.key}
        atomic_write(stage.folder / "last.pt", lambda handle: torch.save(payload, handle))
        if state["loop"]["batches_done"]:  # stopped inside an epoch: nothing finished to keep
            return
        if epoch % stage.config.save_every == 0 or epoch == stage.config.epochs:
            atomic_write(stage.path(epoch), lambda handle: torch.save(payload, handle))
        if self.on_epoch is not None:
            self.on_epoch(state["history"][-1])


@dataclass
class PretrainStage:
    """Where S3-Rec's pre-trained checkpoints for one configuration live, and how to make them.

    Build it with :meth:`from_config`; :meth:`checkpoint` returns the epoch-``E`` checkpoint,
    pre-training (or resuming) first when it is missing; :meth:`load_into` puts it into the
    model to fine-tune.

    Attributes:
        config: the recipe (``model.pretrain``). folder: the content-addressed folder.
        key: what the folder name hashes (also saved as ``key.json`` next to the checkpoints).
        make_model: builds a fresh model (called under the pre-training seed).
        data: the prefixes.
        n_attributes: A of the dataset.
    """

    config: PretrainConfig
    folder: Path
    key: dict
    make_model: Callable[[], torch.nn.Module]
    data: PretrainData
    n_attributes: int
    facts: dict = field(default_factory=dict)

    @classmethod
    def from_config(
        cls,
        cfg: DictConfig,
        config: PretrainConfig,
        data: SequenceData,
        split: LeaveOneOut,
        build_model: Callable[..., torch.nn.Module],
    ) -> PretrainStage:
        """The stage of ``cfg`` (a model config with :data:`STAGE_KEYS`, checked by
        :func:`seqrec.config.schema.validate_config`): loads the dataset's item attributes and builds
        the pre-training samples.

        Args:
            config: the checked recipe (``model.pretrain``).
            build_model: ``build_model(**sizes)`` → a fresh model on the training device
                (called under the pre-training seed).

        Raises:
            DataError: the dataset has no item attributes (the message suggests
                ``model.pretrained=false``), or their file is missing or malformed.
        """
        model_cfg = OmegaConf.to_container(cfg.model, resolve=True)
        for key in STAGE_KEYS:
            model_cfg.pop(key, None)
        attributes = load_attributes(cfg.dataset, Path(cfg.data_dir), data.item_tokens, required=True)
        sizes = {"n_items": data.n_items, "max_len": int(cfg.dataset.max_len), "n_attributes": attributes.n_attributes}
        key = {
            "version": PRETRAIN_VERSION,
            "dataset": data.name,
            "data_fingerprint": data.fingerprint,
            "attributes_fingerprint": attributes.fingerprint,
            "model": {**model_cfg, **sizes},
            "pretrain": config.recipe(),
        }
        digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:16]
        return cls(
            config=config,
            folder=Path(config.dir) / f"{data.name}-{digest}",
            key=key,
            make_model=lambda: build_model(**sizes),
            data=PretrainData.build(split, attributes),
            n_attributes=attributes.n_attributes,
        )

    def path(self, epoch: int) -> Path:
        return self.folder / f"epoch-{epoch}.pt"

    def saved_epochs(self) -> list[int]:
        """Epochs with a checkpoint in :attr:`folder`, ascending."""
        if not self.folder.is_dir():
            return []
        found = (_CHECKPOINT_RE.match(p.name) for p in self.folder.iterdir())
        return sorted(int(m.group(1)) for m in found if m)

    def checkpoint(
        self,
        progress: bool = True,
        on_start: Callable[[int], None] | None = None,
        on_epoch: Callable[[dict], None] | None = None,
        stop: StopRequest | None = None,
    ) -> Path:
        """The epoch-``config.epochs`` checkpoint, pre-training first when it is missing
        (resuming from the latest saved epoch below it). Global RNG state is left untouched.

        Args:
            progress: tqdm bars.
            on_start: called with the first epoch to run, when pre-training runs at all.
            on_epoch: called with each epoch's row (``epoch``, ``aap``, ``mip``, ``map``, ``sp``,
                ``loss``, ``seconds``) once ``last.pt`` holds that epoch.
            stop: checked after every batch (:func:`seqrec.runs.resume.stop_on_signals`).

        Raises:
            Interrupted: ``stop`` was set; ``last.pt`` holds the position inside the epoch, and
                the next call continues from it.
        """
        target = self.path(self.config.epochs)
        if self._intact(target):
            self.facts.setdefault("pretrain_epochs_run", 0)
            return target
        self.folder.mkdir(parents=True, exist_ok=True)
        with exclusive(self.folder / ".lock", wait=True, what="pre-training folder"):
            if self._intact(target):  # another process finished it while we waited
                self.facts.setdefault("pretrain_epochs_run", 0)
                return target
            if target.is_file():  # damaged: pre-train again from the newest intact state
                target.unlink()
            write_json(self.folder / "key.json", self.key)
            self._train(progress, on_start, on_epoch, stop)
        return target

    @staticmethod
    def _intact(path: Path) -> bool:
        """Whether ``path`` exists and loads; a damaged file (cut short by a full disk or a copy)
        is named in a warning, and the caller pre-trains again from the previous intact state."""
        if not path.is_file():
            return False
        try:
            read_checkpoint(path)
        except DamagedCheckpoint as err:
            log.warning("%s; pre-training again from the previous intact checkpoint", err)
            return False
        return True

    def _resume_point(self, device: torch.device) -> dict | None:
        """The newest intact saved state below the target epoch: ``last.pt`` (written after every
        epoch) or an ``epoch-E.pt``. A file that cannot be read is named in a warning and the
        previous intact one is used (None: start from scratch)."""
        candidates = [self.folder / "last.pt"] if (self.folder / "last.pt").is_file() else []
        candidates += [self.path(e) for e in reversed(self.saved_epochs()) if e < self.config.epochs]
        best = None
        for path in candidates:
            if (
                best is not None
                and path != self.folder / "last.pt"
                and int(_CHECKPOINT_RE.match(path.name)[1]) <= best["epoch"]
            ):
                break  # epoch files are newest first: the rest are older than what we have
            try:
                state = read_checkpoint(path, device)
            except DamagedCheckpoint as err:
                log.warning("%s; using the previous intact one", err)
                continue
            if "epoch" not in state:
                log.warning("%s holds no pre-training state (no epoch); using the previous intact one", path)
                continue
            if "optimizer" not in state:  # a stored final model (scripts/pretrain_store.sh): no resuming
                log.info("%s holds no optimizer state; it is not a point to resume from", path)
                continue
            epoch = int(state["epoch"])
            if epoch <= self.config.epochs and (best is None or epoch > best["epoch"]):
                best = state
        return best

    def _train(self, progress: bool, on_start=None, on_epoch=None, stop: StopRequest | None = None) -> None:
        device = self.data.items.device
        devices = [device.index or 0] if device.type == "cuda" else []
        with torch.random.fork_rng(devices=devices):
            torch.manual_seed(self.config.seed)
            loop = PretrainLoop(self.make_model(), self.data, self.config, progress=progress)
            state = self._resume_point(device)
            if state is not None:
                loop.load_state_dict(state)
                within = f" and {loop.state.batches_done} batches of the next" if loop.state.batches_done else ""
                log.info("resuming pre-training after epoch %d%s from %s", loop.state.epoch, within, self.folder)
            start = loop.state.epoch
            log.info(
                "pre-training %s for epochs %d..%d into %s (%d prefixes)",
                type(loop.model).__name__,
                start + 1,
                self.config.epochs,
                self.folder,
                len(self.data),
            )
            if on_start is not None:
                on_start(start + 1)
            rows = loop.fit(_StageCheckpoints(self, on_epoch), stop)
            if not self.path(self.config.epochs).is_file():  # last.pt already held the final epoch
                payload = {**loop.state_dict(), "key": self.key}
                atomic_write(self.path(self.config.epochs), lambda handle: torch.save(payload, handle))
            self.facts["pretrain_epochs_run"] = len(rows)
            self.facts["pretrain_seconds_per_epoch"] = sum(r["seconds"] for r in rows) / max(len(rows), 1)

    def load_into(self, model: torch.nn.Module, progress: bool = True, stop: StopRequest | None = None) -> dict:
        """Load the pre-trained weights into ``model`` (pre-training first if needed, stopped by
        ``stop`` as :meth:`checkpoint` is); return the facts for ``metrics.json``."""
        path = self.checkpoint(progress, stop=stop)
        state = read_checkpoint(path, next(model.parameters()).device)
        model.load_state_dict(state["model"])
        return {
            "pretrained": True,
            "pretrain_checkpoint": str(path),
            "pretrain_epochs": int(state["epoch"]),
            **self.facts,
        }

    def summary(self, path: Path) -> dict:
        """What ``stage=pretrain`` reports: the checkpoint, its epoch and final losses."""
        state = read_checkpoint(path)
        last = state["history"][-1] if state["history"] else {}
        return {
            "pretrain_checkpoint": str(path),
            "pretrain_epochs": int(state["epoch"]),
            "pretrain_folder": str(self.folder),
            "saved_epochs": self.saved_epochs(),
            **{f"pretrain/{k}": last[k] for k in (*OBJECTIVES, "loss") if k in last},
            **self.facts,
        }


def prepare_stage(
    options: Pretraining,
    run_stage: str,
    cfg: DictConfig,
    data: SequenceData,
    split: LeaveOneOut,
    build_model: Callable[..., torch.nn.Module],
) -> tuple[PretrainStage | None, dict]:
    """The pre-training stage a run of S3-Rec needs, and the constructor arguments it supplies
    (``Pretraining.supplies``).

    A stage (item attributes and pre-training samples) is built only for ``stage=pretrain`` or
    ``model.pretrained=true``; from scratch (``model.pretrained=false``) no pre-training data is
    read and ``n_attributes`` is 0.

    Args:
        options: the checked stage options. run_stage: ``pretrain`` or ``finetune``.
        build_model: see :meth:`PretrainStage.from_config`.

    Raises:
        ConfigError: ``stage=pretrain`` with ``model.pretrained_from`` (a published model is
            already pre-trained).
        DataError: see :meth:`PretrainStage.from_config`.
    """
    if run_stage == "pretrain" and options.pretrained_from:
        raise ConfigError(
            f"stage=pretrain with model.pretrained_from={options.pretrained_from}: the published model is "
            "already pre-trained, and stage=pretrain only runs seqrec's own pre-training; drop one of the two."
        )
    stage = None
    if options.pretrained or run_stage == "pretrain":
        stage = PretrainStage.from_config(cfg, options.pretrain, data, split, build_model)
    return stage, {"n_attributes": stage.n_attributes if stage is not None else 0}


def start_fine_tuning(
    options: Pretraining,
    stage: PretrainStage | None,
    model: torch.nn.Module,
    data: SequenceData,
    progress: bool = True,
    stop: StopRequest | None = None,
) -> dict:
    """Put the weights S3-Rec fine-tunes from into ``model``: the S3-Rec authors' published model
    (``model.pretrained_from``), seqrec's own pre-training (run first when missing, stopped by
    ``stop``), or none (``model.pretrained=false``). Returns the facts for ``metrics.json``
    (``pretrained``, ``pretrain_checkpoint``, ``pretrain_epochs``, …).

    Raises:
        Interrupted: ``stop`` was set while pre-training (its ``last.pt`` holds the position).
        SeqrecError: a published model that does not fit (:func:`load_published`).
    """
    if options.pretrained_from:
        return load_published(model, options.pretrained_from, data.item_tokens, data.name)
    if stage is not None:
        return stage.load_into(model, progress, stop)
    return {"pretrained": False, "pretrain_checkpoint": None, "pretrain_epochs": 0}


__all__ = ["PretrainStage", "prepare_stage", "start_fine_tuning", "STAGE_KEYS", "PRETRAIN_VERSION"]
