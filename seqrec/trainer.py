"""The one training loop: epoch → validate → early stop → keep the best state → test with it.

Shared by every model and loss (the CCE paper's protocol: Adam, at most 150 epochs, early
stopping with patience 10 on a validation metric, full-ranking evaluation of the best state).
Batches are drawn from tensors built once (:class:`seqrec.data.LeaveOneOut`) by index; nothing
per-sample happens in Python inside the loop.
"""

from __future__ import annotations

import contextlib
import copy
import logging
import math
import time
from dataclasses import dataclass, field
from typing import Callable, Literal

import torch
from tqdm.auto import tqdm

from seqrec.config.check import PositiveInt
from seqrec.errors import SeqrecError
from seqrec.evaluation import METRICS, evaluate_ranks, mean_metrics

log = logging.getLogger(__name__)

# the validation metrics early stopping can monitor (``trainer.monitor``)
Monitor = Literal[tuple(f"valid/{name}" for name in METRICS)]


def epoch_batches(
    lengths: torch.Tensor,
    batch_size: int,
    generator: torch.Generator,
    bucket_by_length: bool = True,
    pool_batches: int = 64,
) -> list[torch.Tensor]:
    """Row indices of one epoch's training batches, shuffled with ``generator``.

    With ``bucket_by_length`` users are shuffled, cut into pools of ``pool_batches`` batches,
    sorted by length inside each pool (so a batch holds users of similar length and needs little
    padding), and the batch order is shuffled again. Every user appears exactly once per epoch.

    Args:
        lengths: ``[U]`` number of real items in each training input (on CPU).
        batch_size: rows per batch.
        generator: seeded CPU generator (the epoch's randomness).
        bucket_by_length: group similar lengths (see above); False = plain random batches.
        pool_batches: batches per sorting pool; larger = tighter buckets, less randomness.

    Returns:
        List of int64 index tensors ``[<= batch_size]``.
    """
    perm = torch.randperm(len(lengths), generator=generator)
    if not bucket_by_length:
        return list(perm.split(batch_size))
    batches = []
    for pool in perm.split(batch_size * pool_batches):
        pool = pool[torch.argsort(lengths[pool], stable=True)]
        batches.extend(pool.split(batch_size))
    shuffle = torch.randperm(len(batches), generator=generator)
    return [batches[i] for i in shuffle]


@dataclass
class FitResult:
    """What :meth:`Trainer.fit` returns: metrics, per-user test ranks and timings (seconds)."""

    metrics: dict[str, float]
    test_ranks: torch.Tensor
    best_epoch: int
    epochs_run: int
    seconds_per_epoch: float
    eval_seconds_per_epoch: float
    history: list[dict] = field(default_factory=list)
    best_state: dict | None = None
    best_optimizer_state: dict | None = None


class Trainer:
    """Generic trainer for any model ``[B, L] -> [B, L, d]`` with an ``item_emb`` and any loss.

    Args:
        model: the recommender (already on ``device``).
        loss: callable ``(hidden, targets, item_emb, mask, negatives) -> scalar`` with
            ``num_negatives``.
        optimizer: built over ``model.parameters()``.
        split: :class:`seqrec.data.LeaveOneOut` on ``device``.
        max_epochs: upper bound on epochs (150).
        batch_size: training batch size (256).
        patience: stop after this many epochs without improvement of ``monitor`` (10).
        monitor: validation metric for early stopping and model selection (``valid/ndcg@20``).
        bucket_by_length: length-bucketed batches with trimmed left padding (same math per row).
        pool_batches: see :func:`epoch_batches`.
        eval_batch_size: users per full-ranking batch, or ``"auto"`` (bounded by memory, see
            :func:`seqrec.evaluation.resolve_eval_batch_size`).
        mask_history: mask the user's past items when ranking (paper: True).
        log_test_every_epoch: also compute test NDCG@10 each epoch, for the efficiency curves
            only (never used for selection).
        precision: ``fp32`` or ``bf16`` (autocast on the forward pass; losses stay in fp32).
        compile: wrap the model's training forward pass in ``torch.compile`` (dynamic shapes,
            since bucketed batches vary in width).
        seed: seeds the batch order and negative sampling generators.
        device: torch device of model and data.
        progress: show tqdm progress bars (auto-disabled when not a terminal).

    The annotations are the ``trainer`` group's schema: :mod:`seqrec.config` checks every
    option against them before anything is built, so the constructor does not check again.
    """

    def __init__(
        self,
        model: torch.nn.Module,
        loss: Callable,
        optimizer: torch.optim.Optimizer,
        split,
        max_epochs: PositiveInt = 150,
        batch_size: PositiveInt = 256,
        patience: PositiveInt = 10,
        monitor: Monitor = "valid/ndcg@20",
        bucket_by_length: bool = True,
        pool_batches: PositiveInt = 64,
        eval_batch_size: PositiveInt | Literal["auto"] = "auto",
        mask_history: bool = True,
        log_test_every_epoch: bool = True,
        precision: Literal["fp32", "bf16"] = "fp32",
        compile: bool = False,
        seed: int = 42,
        device: str | torch.device = "cpu",
        progress: bool = True,
    ):
        self.model, self.loss, self.optimizer, self.split = model, loss, optimizer, split
        self.max_epochs, self.batch_size, self.patience, self.monitor = max_epochs, batch_size, patience, monitor
        self.bucket_by_length, self.pool_batches = bucket_by_length, pool_batches
        self.eval_batch_size, self.mask_history = eval_batch_size, mask_history
        self.log_test_every_epoch = log_test_every_epoch
        self.device = torch.device(device)
        self.precision = precision
        self.forward = torch.compile(model, dynamic=True) if compile else model
        self.progress = progress
        self.order_gen = torch.Generator().manual_seed(seed)
        self.neg_gen = torch.Generator(device=self.device).manual_seed(seed + 1)
        self.train_lengths = (split.train_input != 0).sum(1).cpu()  # [U_tr]

    # -- helpers ---------------------------------------------------------------------------
    def _autocast(self):
        if self.precision == "bf16":
            return torch.autocast(device_type=self.device.type, dtype=torch.bfloat16)
        return contextlib.nullcontext()

    def _sync(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)

    def evaluate(self, which: str) -> torch.Tensor:
        """Full-ranking ranks ``[U]`` of the ``which`` ('valid'|'test') targets for all users."""
        inputs = getattr(self.split, f"{which}_input")
        targets = getattr(self.split, f"{which}_target")
        history = (lambda users: self.split.history(users, which)) if self.mask_history else None
        autocast = self._autocast if self.precision == "bf16" else None
        return evaluate_ranks(self.model, inputs, targets, history, self.eval_batch_size, autocast=autocast)

    def _loss_positions(self) -> torch.Tensor:
        """``[U_tr]`` number of positions each training sequence contributes to the loss."""
        if getattr(self.loss, "last_position_only", False):
            return torch.ones_like(self.train_lengths)
        return self.train_lengths

    def train_epoch(self, epoch: int, max_batches: int | None = None) -> float:
        """One pass over all training sequences (or its first ``max_batches`` batches, for
        benchmarks); returns the epoch's mean loss per position."""
        self.model.train()
        split, width = self.split, self.split.train_input.shape[1]
        batches = epoch_batches(
            self.train_lengths, self.batch_size, self.order_gen, self.bucket_by_length, self.pool_batches
        )
        # Bucketed batches hold very different numbers of target positions (short users
        # together, long users together). A per-batch mean would then weight a position of a
        # short-sequence batch many times more than one of a long-sequence batch, unlike random
        # batches where every batch holds about the same number. Scaling each batch's mean by
        # (its positions / the epoch's mean positions per batch) gives every position the same
        # weight, so the epoch's gradient matches that of random batches in expectation.
        positions = self._loss_positions()  # [U_tr] positions each user adds to the loss
        mean_positions = float(positions.sum()) / max(len(batches), 1)
        if max_batches is not None:
            batches = batches[:max_batches]
        total = torch.zeros((), device=self.device)
        for idx in tqdm(batches, desc=f"epoch {epoch}", leave=False, disable=not self.progress or None):
            keep = width
            if self.bucket_by_length:
                keep = int(self.train_lengths[idx].max())
                weight = float(positions[idx].sum()) / mean_positions
            idx = idx.to(self.device, non_blocking=True)
            inputs = split.train_input[idx, width - keep:]  # [B, W]
            targets = split.train_target[idx, width - keep:]  # [B, W]
            negatives = None
            if self.loss.num_negatives:
                negatives = split.sample_negatives(
                    split.train_users[idx], (keep, self.loss.num_negatives), self.neg_gen
                )  # [B, W, K]
            with self._autocast():  # bf16: matmuls in bf16, log-softmax and loss in fp32
                hidden = self.forward(inputs)  # [B, W, d]
                loss = self.loss(hidden.float(), targets, self.model.item_emb.weight, targets != 0, negatives)
            if self.bucket_by_length:
                loss = loss * weight
            total += loss.detach()  # the epoch's mean is then the mean over positions
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            self.optimizer.step()
        mean_loss = float(total) / max(len(batches), 1)
        if not math.isfinite(mean_loss):
            raise SeqrecError(
                f"the training loss became {mean_loss} in epoch {epoch}: training diverged. Lower the "
                "learning rate (optimizer.lr=...) or use trainer.precision=fp32."
            )
        return mean_loss

    # -- the loop --------------------------------------------------------------------------
    def fit(self, on_epoch_end: Callable[[dict], None] | None = None) -> FitResult:
        """Train with early stopping, restore the best state, evaluate valid and test with it.

        Args:
            on_epoch_end: called with each epoch's log row (epoch, train_loss, valid metrics,
                test/ndcg@10, epoch_seconds, eval_seconds, train_seconds_cum).

        Returns:
            :class:`FitResult` with ``valid/...`` and ``test/...`` metrics of the best state.
        """
        best_score, best_epoch, best_state, best_optimizer_state = -math.inf, 0, None, None
        train_seconds, eval_seconds, history = 0.0, 0.0, []
        epochs = tqdm(range(1, self.max_epochs + 1), desc="training", disable=not self.progress or None)
        for epoch in epochs:
            self._sync()
            start = time.perf_counter()
            train_loss = self.train_epoch(epoch)
            self._sync()
            epoch_seconds = time.perf_counter() - start
            train_seconds += epoch_seconds

            start = time.perf_counter()
            row = {"epoch": epoch, "train_loss": train_loss}
            row.update(mean_metrics(self.evaluate("valid"), prefix="valid/"))
            if self.log_test_every_epoch:
                row["test/ndcg@10"] = mean_metrics(self.evaluate("test"), prefix="test/")["test/ndcg@10"]
            self._sync()
            row["eval_seconds"] = time.perf_counter() - start
            row["epoch_seconds"] = epoch_seconds
            row["train_seconds_cum"] = train_seconds
            eval_seconds += row["eval_seconds"]
            history.append(row)

            score = row[self.monitor]
            if score > best_score:
                best_score, best_epoch = score, epoch
                best_state = copy.deepcopy(self.model.state_dict())
                best_optimizer_state = copy.deepcopy(self.optimizer.state_dict())
            log.info(
                "epoch %d  loss %.4f  %s %.4f  (best %.4f @ %d)  %.2fs train %.2fs eval",
                epoch, train_loss, self.monitor, score, best_score, best_epoch, epoch_seconds, row["eval_seconds"],
            )
            epochs.set_postfix(loss=f"{train_loss:.4f}", **{self.monitor: f"{score:.4f}"}, best=best_epoch)
            if on_epoch_end is not None:
                on_epoch_end(row)
            if epoch - best_epoch >= self.patience:
                log.info("early stopping: no improvement of %s for %d epochs", self.monitor, self.patience)
                break
        epochs.close()

        if best_state is not None:
            self.model.load_state_dict(best_state)
        metrics = mean_metrics(self.evaluate("valid"), prefix="valid/")
        test_ranks = self.evaluate("test")
        metrics.update(mean_metrics(test_ranks, prefix="test/"))
        n = len(history)
        return FitResult(
            metrics=metrics,
            test_ranks=test_ranks.cpu(),
            best_epoch=best_epoch,
            epochs_run=n,
            seconds_per_epoch=train_seconds / max(n, 1),
            eval_seconds_per_epoch=eval_seconds / max(n, 1),
            history=history,
            best_state=best_state,
            best_optimizer_state=best_optimizer_state,
        )
