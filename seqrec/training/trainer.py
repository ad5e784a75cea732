"""The one training loop: epoch → validate → early stop → keep the best state → test with it.

Shared by every model and loss (the CCE paper's protocol: Adam, at most 150 epochs, early
stopping with patience 10 on a validation metric, full-ranking evaluation of the best state).
Batches are drawn from tensors built once (:class:`seqrec.data.LeaveOneOut`) by index; nothing
per-sample happens in Python inside the loop.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass, field
from typing import Callable, Literal, get_args

import torch

from seqrec.data.csr import expand
from seqrec.data.split import LeaveOneOut
from seqrec.errors import SeqrecError
from seqrec.evaluation import METRICS, NonFiniteScores, evaluate_ranks, mean_metrics
from seqrec.losses import Loss
from seqrec.models.scoring import training_table
from seqrec.options import PositiveInt
from seqrec.seeding import derive_seed
from seqrec.training import distributed as ddp
from seqrec.training.batching import batch_weights, epoch_batches
from seqrec.training.checkpoints import Checkpoints, Interrupted, LoopState, StopRequest
from seqrec.training.loop import EpochLoop

log = logging.getLogger(__name__)

__all__ = [
    "Checkpoints",
    "FitResult",
    "Interrupted",
    "LoopState",
    "StopRequest",
    "Trainer",
    "batch_weights",
    "epoch_batches",
]

# the validation metrics early stopping can monitor (``trainer.monitor``)
Monitor = Literal[tuple(f"valid/{name}" for name in METRICS)]
Precision = Literal["fp32", "bf16", "fp16"]
# what one training sample is: a user's whole training sequence (the paper), or every prefix of it
Samples = Literal["sequences", "prefixes"]
PRECISIONS = get_args(Precision)


@dataclass
class FitResult:
    """What :meth:`Trainer.fit` returns: metrics, per-user ranks and timings (seconds)."""

    metrics: dict[str, float]
    test_ranks: torch.Tensor
    valid_ranks: torch.Tensor
    best_epoch: int
    epochs_run: int
    seconds_per_epoch: float
    eval_seconds_per_epoch: float
    history: list[dict] = field(default_factory=list)


class Trainer(EpochLoop):
    """Fine-tuning: the stage of the one epoch loop (:class:`seqrec.training.loop.EpochLoop`) that trains
    any model ``[B, L] -> [B, L, d]`` with an ``output_table()`` with any loss, validates every
    epoch, stops early and evaluates the best state.

    Every epoch's randomness (batch order, negatives, dropout) comes from ``(seed, epoch)``
    (:func:`seqrec.seeding.derive_seed`), so a run resumed from :meth:`state_dict` computes
    exactly the epochs an uninterrupted one would, also from the middle of an epoch.

    Under ``torchrun`` each process trains its share of every global batch of ``batch_size`` rows
    in DDP and evaluates a share of the users (:mod:`seqrec.training.distributed`; lines marked ``DDP``).

    Args:
        model: the recommender (already on ``device``).
        loss: a :class:`seqrec.losses.Loss` ``(hidden, targets, table, negatives) -> scalar``
            (its ``sampler``, if any, already bound to ``split``).
        optimizer: built over the parameters of the model and the loss.
        split: :class:`seqrec.data.LeaveOneOut` on ``device``.
        max_epochs: upper bound on epochs (150).
        batch_size: training batch size (256).
        patience: stop after this many epochs without a strict improvement of ``monitor`` (10).
        monitor: validation metric for early stopping and model selection (``valid/ndcg@20``).
        bucket_by_length: length-bucketed batches with trimmed left padding (same math per row).
        pool_batches: see :func:`epoch_batches`.
        eval_batch_size: users per full-ranking batch, or ``"auto"`` (bounded by memory, see
            :func:`seqrec.evaluation.resolve_eval_batch_size`).
        mask_history: mask the user's past items when ranking (paper: True).
        rank_repeats: a target that repeats a history item is ranked among the unseen items (True)
            or masked with the history, a miss (False: the CCE paper's code; ``experiment=table2``).
        log_test_every_epoch: also compute test NDCG@10 each epoch, for the efficiency curves
            only (never used for selection; off by default, on in ``experiment=table2``).
        precision: ``fp32``, ``bf16`` or ``fp16`` (autocast on the forward pass; the losses'
            softmax and log-sigmoid stay in fp32; fp16 also scales the loss with a GradScaler).
        compile: wrap the model's training forward pass in ``torch.compile`` (dynamic shapes,
            since bucketed batches vary in width).
        samples: ``sequences`` (one sample per user: its training sequence, the CCE paper's) or
            ``prefixes`` (every prefix of every training sequence is a sample of its own, the
            data loaders of S3-Rec, BSARec and the models published on these files; with a
            last-position loss, ``loss=ce``, that is their protocol). Prefixes are cut from the
            same tensors by index, length-bucketed like sequences.
        seed: the run's seed; each epoch's generators are seeded from ``(seed, epoch)``.
        device: torch device of model and data.
        progress: show tqdm progress bars (auto-disabled when not a terminal).

    The annotations are the ``trainer`` group's schema: :mod:`seqrec.config` checks every
    option against them before anything is built, so the constructor does not check again.
    """

    def __init__(
        self,
        model: torch.nn.Module,
        loss: Loss,
        optimizer: torch.optim.Optimizer,
        split: LeaveOneOut,
        max_epochs: PositiveInt = 150,
        batch_size: PositiveInt = 256,
        patience: PositiveInt = 10,
        monitor: Monitor = "valid/ndcg@20",
        bucket_by_length: bool = True,
        pool_batches: PositiveInt = 64,
        eval_batch_size: PositiveInt | Literal["auto"] = "auto",
        mask_history: bool = True,
        rank_repeats: bool = True,
        log_test_every_epoch: bool = False,
        precision: Precision = "fp32",
        compile: bool = False,
        samples: Samples = "sequences",
        seed: int = 42,
        device: str | torch.device = "cpu",
        progress: bool = True,
    ):
        super().__init__(model, optimizer, max_epochs, device, precision, progress)
        self.loss, self.split = loss, split
        self.batch_size, self.patience, self.monitor = batch_size, patience, monitor
        self.bucket_by_length, self.pool_batches = bucket_by_length, pool_batches
        self.eval_batch_size, self.mask_history = eval_batch_size, mask_history
        self.rank_repeats = rank_repeats
        self.log_test_every_epoch = log_test_every_epoch
        self.forward = torch.compile(model, dynamic=True) if compile else model
        self.forward = ddp.wrap(self.forward, loss)  # DDP: training forward only (self.model stays plain)
        self.seed = seed
        self.neg_gen = torch.Generator(device=self.device)
        self.samples = samples
        lengths = (split.train_input != 0).sum(1).cpu()  # [U_tr]
        if samples == "prefixes":  # sample s = (training row, prefix length k), k = 1..n of the row
            self.sample_rows, within = expand(lengths)  # [S] each
            self.train_lengths = within + 1  # [S]: k
            self.row_lengths = lengths
        else:
            self.sample_rows = self.row_lengths = None
            self.train_lengths = lengths  # [S = U_tr]
        self._positions = self._weights = None  # the running epoch's (see _start_epoch)

    # -- evaluation and batches -----------------------------------------------------------
    def evaluate(self, which: str, epoch: int | None = None) -> torch.Tensor:
        """Full-ranking ranks ``[U]`` of the ``which`` ('valid'|'test') targets for all users
        (under DDP each rank ranks a share of the users; every rank gets all ``U`` ranks) with the
        model's current weights, those after ``epoch`` when given (named if training diverged).

        Raises:
            SeqrecError: the model scores NaN (training diverged, e.g. in an epoch's last step,
                after the epoch's loss was still finite).
        """
        try:
            return self._evaluate(which)
        except NonFiniteScores:
            raise SeqrecError(
                f"the model's {which} scores are NaN{'' if epoch is None else f' after epoch {epoch}'}: "
                "training diverged "
                f"(its last steps made the weights non-finite). Lower the learning rate (optimizer.lr=...)"
                f"{self._precision_hint()}."
            ) from None

    def _precision_hint(self) -> str:
        """The second fix a divergence message offers: full precision, when the run is not in it."""
        return "" if self.precision == "fp32" else f" or use trainer.precision=fp32 (this run: {self.precision})"

    def _evaluate(self, which: str) -> torch.Tensor:
        inputs = getattr(self.split, f"{which}_input")
        targets = getattr(self.split, f"{which}_target")
        autocast = self._autocast if self.precision != "fp32" else None

        def ranks(users: torch.Tensor) -> torch.Tensor:  # [u] user indices -> [u] ranks
            history = (lambda idx: self.split.history(users[idx], which)) if self.mask_history else None
            return evaluate_ranks(
                self.model,
                inputs[users],
                targets[users],
                history,
                self.eval_batch_size,
                autocast=autocast,
                rank_repeats=self.rank_repeats,
            )

        return ddp.sharded_ranks(ranks, (inputs != 0).sum(1))  # DDP: users shared out, ranks gathered

    def sample_batch(self, idx: torch.Tensor, keep: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The training samples ``idx`` (``[B]``, indices into the epoch's samples) as a batch
        ``keep`` columns wide: ``(users [B], inputs [B, keep], targets [B, keep])``, left-padded.

        A sequence sample is its row's last ``keep`` columns. A prefix sample (row, k) is the
        row's first k real items with their targets, right-aligned: the same items and targets
        the row has at its first k positions, so a causal model sees each (history, next item)
        pair of the sequence once as a prefix's last position.
        """
        split, width = self.split, self.split.train_input.shape[1]
        if self.sample_rows is None:
            idx = idx.to(self.device, non_blocking=True)
            return (
                split.train_users[idx],
                split.train_input[idx, width - keep :],
                split.train_target[idx, width - keep :],
            )
        rows, k = self.sample_rows[idx], self.train_lengths[idx]  # [B] each
        start = width - self.row_lengths[rows]  # [B]: the row's first real column
        cols = (start + k - keep).unsqueeze(1) + torch.arange(keep)  # [B, keep]: ends at the prefix's last item
        real = (cols >= start.unsqueeze(1)).to(self.device)
        rows, cols = rows.to(self.device), cols.clamp(min=0).to(self.device)
        inputs = torch.where(real, split.train_input[rows.unsqueeze(1), cols], 0)  # [B, keep]
        targets = torch.where(real, split.train_target[rows.unsqueeze(1), cols], 0)  # [B, keep]
        return split.train_users[rows], inputs, targets

    def _loss_positions(self) -> torch.Tensor:
        """``[S]`` number of positions each training sample contributes to the loss."""
        if self.loss.positions == "last":
            return torch.ones_like(self.train_lengths)
        return self.train_lengths

    def _generators(self) -> dict[str, torch.Generator]:
        return {"negatives": self.neg_gen}

    def _start_epoch(self, epoch: int) -> list[torch.Tensor]:
        """The epoch's batches (the same on every rank); seeds dropout and negatives from
        ``(seed, epoch)`` (``(seed, epoch, rank)`` on DDP ranks > 0)."""
        rank = ddp.seed_parts()  # DDP: (seed, epoch, rank) on ranks > 0; rank 0 = one process
        torch.manual_seed(derive_seed("train/dropout", self.seed, epoch, *rank))  # CPU and every CUDA device
        self.neg_gen.manual_seed(derive_seed("train/negatives", self.seed, epoch, *rank))
        order = torch.Generator().manual_seed(derive_seed("train/order", self.seed, epoch))
        batches = epoch_batches(self.train_lengths, self.batch_size, order, self.bucket_by_length, self.pool_batches)
        self._positions = self._loss_positions()  # [S]
        self._weights = batch_weights(batches, self._positions) if self.bucket_by_length else None
        return batches

    def _batch_loss(self, index: int, batch: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        # DDP: this rank's rows of the global batch, and the loss factor that makes DDP's
        # gradient average the one-process step (1.0 in one process)
        idx, share = ddp.shard_rows(batch, self._positions, ddp.rank(), ddp.world_size())
        keep = int(self.train_lengths[idx].max()) if self.bucket_by_length else self.split.train_input.shape[1]
        users, inputs, targets = self.sample_batch(idx, keep)  # [B], [B, W], [B, W]
        negatives = None
        if self.loss.num_negatives:
            negatives = self.loss.sampler.sample(users, targets, self.loss.num_negatives, self.neg_gen)  # [B, W, K]
        with self._autocast():  # matmuls in bf16/fp16, log-softmax and loss in fp32
            hidden = self.forward(inputs)  # [B, W, d]
            table = training_table(self.model, self.loss.full_softmax)  # [N (+ never-target classes), d]
            loss = self.loss(hidden.float(), targets, table, negatives)
        if self._weights is not None:
            loss = loss * float(self._weights[index])
        if share != 1.0:
            loss = loss * share
        return loss, loss.detach()  # the epoch's mean is then the mean over positions

    def train_epoch(self, epoch: int, max_batches: int | None = None, stop: StopRequest | None = None) -> float:
        """One pass over all training samples (or its first ``max_batches`` batches, for
        benchmarks); returns the epoch's mean loss per position.

        When :attr:`state` records an interrupted epoch ``epoch`` (``batches_done > 0``), it
        continues after those batches with the saved generator states.

        Raises:
            Interrupted: ``stop`` was set; :attr:`state` then holds the position in the epoch.
            SeqrecError: the loss is not finite (training diverged).
        """
        total, n_batches = self.run_batches(epoch, max_batches, stop)
        mean_loss = float(total) / max(n_batches, 1)
        if not math.isfinite(mean_loss):
            raise SeqrecError(
                f"the training loss became {mean_loss} in epoch {epoch}: training diverged. Lower the "
                f"learning rate (optimizer.lr=...){self._precision_hint()}."
            )
        return mean_loss

    # -- state -----------------------------------------------------------------------------
    def state_dict(self) -> dict:
        """``{model, loss, optimizer, scaler, monitor, loop}``: all a resumed run needs (``last.pt``);
        ``loss`` holds a loss's own parameters and buffers (empty for most losses); ``loop`` is
        :class:`LoopState` as a dict (history rows, best score/epoch, generator states)."""
        return {
            "model": self.model.state_dict(),
            "loss": self.loss.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scaler": self.scaler.state_dict() if self.scaler is not None else None,
            "monitor": self.monitor,
            "loop": dict(vars(self.state)),
        }

    def load_state_dict(self, state: dict) -> None:
        """Continue from a :meth:`state_dict` (e.g. ``last.pt`` of an interrupted run)."""
        self.model.load_state_dict(state["model"])
        self.loss.load_state_dict(state.get("loss", {}))
        self.optimizer.load_state_dict(state["optimizer"])
        if self.scaler is not None and state.get("scaler"):
            self.scaler.load_state_dict(state["scaler"])
        self.state = LoopState(**state["loop"])

    # -- the loop --------------------------------------------------------------------------
    def _epoch_row(self, epoch: int, checkpoints: Checkpoints, stop: StopRequest | None) -> dict:
        """Train ``epoch`` and validate: its log row (epoch, train_loss, valid metrics,
        [test/ndcg@10], eval_seconds, epoch_seconds, train_seconds_cum), the same on every rank.

        Raises:
            Interrupted: ``stop`` was set during the epoch; ``checkpoints.save_last`` holds the
                position in it.
        """
        st = self.state
        train_loss, epoch_seconds = self._train_timed(epoch, lambda: self.train_epoch(epoch, stop=stop), checkpoints)
        st.train_seconds += epoch_seconds

        start = time.perf_counter()
        row = {"epoch": epoch, "train_loss": train_loss}
        row.update(mean_metrics(self.evaluate("valid", epoch), prefix="valid/"))
        if self.log_test_every_epoch:
            row["test/ndcg@10"] = mean_metrics(self.evaluate("test", epoch), prefix="test/")["test/ndcg@10"]
        self._sync()
        row["eval_seconds"] = time.perf_counter() - start
        row["epoch_seconds"] = epoch_seconds
        row["train_seconds_cum"] = st.train_seconds
        return ddp.broadcast_object(row)  # DDP: rank 0's row, so every rank decides alike

    def _record(self, row: dict) -> bool:
        """Add an epoch's row to the loop state and log it; whether the monitor strictly improved
        (ties keep the earlier epoch)."""
        st = self.state
        st.eval_seconds += row["eval_seconds"]
        st.history.append(row)
        st.epoch = row["epoch"]
        score = row[self.monitor]
        improved = score > st.best_score
        if improved:
            st.best_score, st.best_epoch = score, row["epoch"]
        log.info(
            "epoch %d  loss %.4f  %s %.4f  (best %.4f @ %d)  %.2fs train %.2fs eval",
            row["epoch"],
            row["train_loss"],
            self.monitor,
            score,
            st.best_score,
            st.best_epoch,
            row["epoch_seconds"],
            row["eval_seconds"],
        )
        return improved

    def _evaluate_best(
        self, checkpoints: Checkpoints, stop: StopRequest | None
    ) -> tuple[torch.Tensor, torch.Tensor, dict[str, float]]:
        """Restore the best state and rank valid and test with it: ``(valid_ranks, test_ranks,
        metrics)``.

        Raises:
            Interrupted: Ctrl-C/SIGTERM during the evaluation (``last.pt`` holds the finished
                loop: a resume evaluates).
        """
        best = checkpoints.load_best()
        if best is not None:
            self.model.load_state_dict(best["model"])
            self.loss.load_state_dict(best.get("loss", {}))
        ddp.broadcast_module(self.model)  # DDP: rank 0 holds the best state
        ddp.broadcast_module(self.loss)
        best_epoch = self.state.best_epoch if best is not None else self.state.epoch
        valid_ranks = self.evaluate("valid", best_epoch)
        metrics = mean_metrics(valid_ranks, prefix="valid/")
        test_ranks = self.evaluate("test", best_epoch)
        metrics.update(mean_metrics(test_ranks, prefix="test/"))
        if (signum := ddp.agreed_signal(stop)) is not None:
            raise Interrupted(signum, self.state.epoch, 0)
        return valid_ranks, test_ranks, metrics

    def _done(self) -> bool:
        """Early stopping: ``patience`` epochs without a strict improvement of the monitor."""
        st = self.state
        if st.epoch - st.best_epoch < self.patience:
            return False
        log.info("early stopping: no improvement of %s for %d epochs", self.monitor, self.patience)
        return True

    def _postfix(self, row: dict) -> dict:
        return {
            "loss": f"{row['train_loss']:.4f}",
            self.monitor: f"{row[self.monitor]:.4f}",
            "best": self.state.best_epoch,
        }

    def fit(
        self,
        on_epoch_end: Callable[[dict], None] | None = None,
        checkpoints: Checkpoints | None = None,
        stop: StopRequest | None = None,
    ) -> FitResult:
        """Train with early stopping, restore the best state, evaluate valid and test with it.

        Starts after :attr:`state` (epoch 0 for a new run, or where :meth:`load_state_dict` left
        it). After each epoch the latest state goes to ``checkpoints.save_last``, and when the
        monitor strictly improves the state goes to ``checkpoints.save_best``
        (:meth:`~seqrec.training.loop.EpochLoop.run_epochs`); the final valid and test evaluation uses
        ``checkpoints.load_best()``.

        Args:
            on_epoch_end: called with each epoch's log row (epoch, train_loss, valid metrics,
                [test/ndcg@10], epoch_seconds, eval_seconds, train_seconds_cum), before the
                state is saved.
            checkpoints: where best and latest states go (default: best kept in memory).
            stop: checked after every batch; when set, the state is saved and
                :class:`Interrupted` is raised.

        Returns:
            :class:`FitResult` with ``valid/...`` and ``test/...`` metrics of the best state.
        """
        checkpoints = checkpoints or Checkpoints()
        st = self.state
        ddp.broadcast_module(self.model)  # DDP: every rank starts from rank 0's weights
        ddp.broadcast_module(self.loss)
        self.run_epochs(checkpoints, stop, on_epoch_end)
        valid_ranks, test_ranks, metrics = self._evaluate_best(checkpoints, stop)
        n = len(st.history)
        return FitResult(
            metrics=metrics,
            test_ranks=test_ranks.cpu(),
            valid_ranks=valid_ranks.cpu(),
            best_epoch=st.best_epoch,
            epochs_run=n,
            seconds_per_epoch=st.train_seconds / max(n, 1),
            eval_seconds_per_epoch=st.eval_seconds / max(n, 1),
            history=st.history,
        )
