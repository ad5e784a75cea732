"""S3-Rec's pre-training stage (Zhou et al., CIKM 2020, Sec. 3), as in its public code
(``run_pretrain.py``, ``datasets.PretrainDataset``, ``trainers.PretrainTrainer``).

* **Samples** (:class:`~seqrec.data.pretrain_samples.PretrainData`): every prefix ``w[:i+1]`` of
  each user's training part ``s[:-2]`` restricted to its last ``max_len`` items (the reference's
  ``seq[-(max_len+2):-2]``), left-padded. Validation and test items never appear: neither in the
  prefixes nor in the corpus that negative segments come from.
* **Per batch, redrawn every epoch** from a generator seeded by (pre-training seed, epoch), all
  with vectorised tensor ops: item masks (each real item with probability ``mask_p``, the last
  item of every prefix always; padding never; the mask token is ``N + 1``), one MIP negative
  per position drawn uniformly from the items *not* in the prefix (exact: a draw over each row's
  free items; the user's own validation and test items are excluded too, so nothing about them
  is learned, not even as a negative — the reference only excludes the prefix), and for SP a
  segment of length ``k ~ U{1..n//2}`` at a uniform start of the prefix (``n`` = its length)
  and a negative segment of the same length at a uniform start of the corpus (the training
  parts of all users, concatenated in user order; the reference uses the full sequences),
  shown in place of the segment with the rest of the prefix masked. Prefixes of length 1 have
  no segment and are left out of SP (the reference feeds them unmasked and gets the constant
  loss ``log 2``).
* **Loop** (:class:`PretrainLoop`, a stage of the one epoch loop :class:`seqrec.training.loop.EpochLoop`
  that fine-tuning runs too): Adam (lr 1e-3), batches of 100 prefixes, the weighted sum
  ``0.2·AAP + 1·MIP + 1·MAP + 0.5·SP`` (losses from :meth:`S3Rec.pretrain_losses`), a tqdm bar
  with each objective's running mean; the state after every epoch in ``last.pt`` (and, on
  SIGTERM or Ctrl-C, after the running batch, to continue inside the epoch) and a kept
  checkpoint every ``save_every`` epochs and after the last. A damaged file is named in a warning
  and the previous intact one is resumed from.
* **Checkpoints** (:class:`PretrainStage`): ``<dir>/<dataset>-<key>/epoch-<E>.pt`` where
  ``key`` hashes everything that changes what pre-training computes: the processed data's
  fingerprint, the attributes, the model's sizes and the pre-training recipe (not the number of
  epochs, which is in the file name, and not the fine-tuning seed, loss or trainer). All
  fine-tunings of a dataset (three losses, a seed sweep) share one pre-training; a later run
  that asks for more epochs resumes from the latest saved epoch. Every epoch draws its
  randomness from (seed, epoch) alone, so a resumed pre-training computes the same epochs as an
  uninterrupted one (bit-for-bit on CPU). Files are written atomically and a lock file keeps two
  processes from pre-training into the same folder at once.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from pathlib import Path

import torch
from omegaconf import DictConfig, OmegaConf

from seqrec.atomic import atomic_write, write_json
from seqrec.data.attributes import load_attributes
from seqrec.data.preprocess import SequenceData
from seqrec.data.pretrain_samples import PretrainData, epoch_seed  # noqa: F401 (re-exported)
from seqrec.data.split import LeaveOneOut
from seqrec.errors import ConfigError, SeqrecError
from seqrec.locks import exclusive
from seqrec.models.s3rec_checkpoint import load_published
from seqrec.models.s3rec_stage import PretrainConfig, Pretraining  # noqa: F401 (re-exported)
from seqrec.training.batching import epoch_batches
from seqrec.training.checkpoints import Checkpoints, LoopState, StopRequest
from seqrec.training.loop import EpochLoop

log = logging.getLogger(__name__)

# Bump when the sampling or the losses change what an epoch computes: old checkpoints are then
# not reused (they stay on disk under their old key).
PRETRAIN_VERSION = "1"
OBJECTIVES = ("aap", "mip", "map", "sp")
_CHECKPOINT_RE = re.compile(r"^epoch-(\d+)\.pt$")


# the keys of a model config that belong to :class:`Pretraining`, not to the model's constructor
STAGE_KEYS = tuple(f.name for f in fields(Pretraining))


# -- the loop ------------------------------------------------------------------------------------
class PretrainLoop(EpochLoop):
    """S3-Rec's pre-training as a stage of :class:`~seqrec.training.loop.EpochLoop`: epochs over all
    prefixes, each batch's loss the weighted sum ``0.2·AAP + 1·MIP + 1·MAP + 0.5·SP`` of
    :meth:`S3Rec.pretrain_losses`; no validation and no early stopping (``config.epochs``
    epochs). All randomness of epoch ``e`` (batch order, masks, negatives, segments, dropout)
    comes from :func:`epoch_seed` ``(config.seed, e)``, so a loop resumed from :meth:`state_dict`,
    also from the middle of an epoch, computes what an uninterrupted one would.

    Args:
        model: the model (an :class:`~seqrec.models.S3Rec`), on ``data``'s device.
        data: the prefixes.
        config: the recipe.
        optimizer: Adam over ``model.parameters()`` (a fresh one with ``config.lr`` if None).
        progress: tqdm bars (epochs, and batches with each objective's running mean).

    An epoch's row: ``epoch``, ``aap``, ``mip``, ``map``, ``sp`` (mean per-sequence losses),
    ``loss`` (their weighted sum) and ``seconds``.
    """

    desc = "pre-training"

    def __init__(
        self,
        model: torch.nn.Module,
        data: PretrainData,
        config: PretrainConfig,
        optimizer: torch.optim.Optimizer | None = None,
        progress: bool = True,
    ):
        optimizer = optimizer or torch.optim.Adam(model.parameters(), lr=config.lr)
        device = data.items.device
        super().__init__(model, optimizer, config.epochs, device, progress=progress, stat_names=OBJECTIVES)
        self.data, self.config = data, config
        self.draws = torch.Generator(device=device)  # masks, negatives, segments

    def _generators(self) -> dict[str, torch.Generator]:
        return {"draws": self.draws}

    def _start_epoch(self, epoch: int) -> list[torch.Tensor]:
        seed = epoch_seed(self.config.seed, epoch)
        torch.manual_seed(seed)  # dropout (PretrainStage forks the global RNG around the loop)
        order = torch.Generator().manual_seed(seed)
        self.draws.manual_seed(seed + 1)
        return epoch_batches(self.data.lengths.cpu(), self.config.batch_size, order, self.config.bucket_by_length)

    def _batch_loss(self, index: int, batch: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        config = self.config
        sample = self.data.batch(batch.to(self.device), self.draws, config.mask_p, trim=config.bucket_by_length)
        losses = self.model.pretrain_losses(sample)
        loss = sum(config.weights[name] * losses[name] for name in OBJECTIVES)
        return loss, torch.stack([losses[name].detach() for name in OBJECTIVES])

    def train_epoch(self, epoch: int, stop: StopRequest | None = None) -> dict[str, float]:
        """One pass over all prefixes: each objective's mean per-sequence loss and the weighted
        total (``"loss"``).

        Raises:
            Interrupted: ``stop`` was set (:attr:`state` holds the position in the epoch).
            SeqrecError: a loss is not finite (training diverged).
        """
        total, n_batches = self.run_batches(epoch, stop=stop)
        means = dict(zip(OBJECTIVES, (total / max(n_batches, 1)).tolist()))
        means["loss"] = sum(self.config.weights[name] * means[name] for name in OBJECTIVES)
        if not all(math.isfinite(value) for value in means.values()):
            raise SeqrecError(
                f"the pre-training loss became {means} in epoch {epoch}: training diverged. Lower model.pretrain.lr."
            )
        return means

    def _epoch_row(self, epoch: int, checkpoints: Checkpoints, stop: StopRequest | None) -> dict:
        means, seconds = self._train_timed(epoch, lambda: self.train_epoch(epoch, stop), checkpoints)
        return {"epoch": epoch, **means, "seconds": seconds}

    def _record(self, row: dict) -> bool:
        self.state.history.append(row)
        self.state.epoch = row["epoch"]
        log.info(
            "pre-train epoch %d  %s  %.1fs",
            row["epoch"],
            "  ".join(f"{name} {row[name]:.4g}" for name in OBJECTIVES),
            row["seconds"],
        )
        return False  # nothing is monitored: no best state

    def _postfix(self, row: dict) -> dict:
        return {name: f"{row[name]:.3g}" for name in OBJECTIVES}

    def state_dict(self) -> dict:
        """``{model, optimizer, epoch, history, loop}``: ``epoch`` the completed epochs, ``history``
        their rows, ``loop`` the position inside the next one (batches done, their summed
        objectives, generator states) when it was interrupted."""
        st = self.state
        return {
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "epoch": st.epoch,
            "history": list(st.history),
            "loop": {"batches_done": st.batches_done, "loss_total": st.loss_total, "rng": st.rng},
        }

    def load_state_dict(self, state: dict) -> None:
        """Continue from a :meth:`state_dict` (a ``last.pt``; one saved before the loop state was
        kept, with no ``loop``, continues after its completed epoch)."""
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.state = LoopState(epoch=int(state["epoch"]), history=list(state["history"]), **state.get("loop", {}))

    def fit(self, checkpoints: Checkpoints | None = None, stop: StopRequest | None = None) -> list[dict]:
        """Pre-train the epochs after :attr:`state` up to ``config.epochs``, saving through
        ``checkpoints`` after every epoch; returns the rows of the epochs run here.

        Raises:
            Interrupted: ``stop`` was set; ``checkpoints.save_last`` holds the position.
        """
        before = self.state.epoch
        self.run_epochs(checkpoints or Checkpoints(), stop)
        return [row for row in self.state.history if row["epoch"] > before]


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


# -- checkpoints and the pipeline's entry ------------------------------------------------------------
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
            torch.load(path, map_location="cpu", weights_only=True)
        except Exception as err:  # noqa: BLE001 - a damaged file of any kind
            log.warning(
                "pre-training checkpoint %s is damaged (%s: %s); pre-training again from the previous "
                "intact checkpoint",
                path,
                type(err).__name__,
                err,
            )
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
                state = torch.load(path, map_location=device, weights_only=True)
                epoch = int(state["epoch"])
                if "optimizer" not in state:  # a stored final model (scripts/pretrain_store.sh): no resuming
                    log.info("%s holds no optimizer state; it is not a point to resume from", path)
                    continue
            except Exception as err:  # noqa: BLE001 - a damaged file of any kind
                log.warning(
                    "pre-training checkpoint %s is damaged (%s: %s); using the previous intact one",
                    path,
                    type(err).__name__,
                    err,
                )
                continue
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
        state = torch.load(path, map_location=next(model.parameters()).device, weights_only=True)
        model.load_state_dict(state["model"])
        return {
            "pretrained": True,
            "pretrain_checkpoint": str(path),
            "pretrain_epochs": int(state["epoch"]),
            **self.facts,
        }

    def summary(self, path: Path) -> dict:
        """What ``stage=pretrain`` reports: the checkpoint, its epoch and final losses."""
        state = torch.load(path, map_location="cpu", weights_only=True)
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


__all__ = [
    "PretrainConfig",
    "PretrainData",
    "PretrainStage",
    "prepare_stage",
    "start_fine_tuning",
    "Pretraining",
    "STAGE_KEYS",
    "PretrainLoop",
    "epoch_seed",
]
