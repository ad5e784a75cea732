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
"""

from __future__ import annotations

import logging
import math

import torch

from seqrec.data.pretrain_samples import PretrainData, epoch_seed
from seqrec.errors import SeqrecError
from seqrec.models.s3rec_stage import PretrainConfig
from seqrec.training.batching import epoch_batches
from seqrec.training.checkpoints import Checkpoints, LoopState, StopRequest
from seqrec.training.loop import EpochLoop

log = logging.getLogger(__name__)

OBJECTIVES = ("aap", "mip", "map", "sp")


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


__all__ = ["OBJECTIVES", "PretrainLoop"]
