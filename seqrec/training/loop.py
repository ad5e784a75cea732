"""The epoch loop every training stage runs: S3-Rec's pre-training and fine-tuning alike.

:class:`EpochLoop` owns what does not depend on what is trained: optimizer steps (with autocast
and fp16 loss scaling), the epoch's batches resumed from the middle after an interrupt, the
generator states that make a resumed run compute what an uninterrupted one would, the stop
request (SIGTERM, Ctrl-C) checked after every batch, and the epoch driver (row → record →
checkpoints → stop). A stage is a subclass that says what one batch costs and what an epoch's row
holds:

* :meth:`EpochLoop._start_epoch` — the epoch's batches; seeds the epoch's generators;
* :meth:`EpochLoop._batch_loss` — one batch: the loss to minimise and the statistics to sum;
* :meth:`EpochLoop._epoch_row` — train an epoch (and validate, when the stage does);
* :meth:`EpochLoop._record` — keep the row; whether the monitored value improved;
* :meth:`EpochLoop._done` — early stopping.

:class:`seqrec.training.trainer.Trainer` is fine-tuning (validation, early stopping, best state);
:class:`seqrec.training.pretrain.PretrainLoop` is S3-Rec's pre-training (no validation, a fixed number of
epochs). Both save through a :class:`~seqrec.training.checkpoints.Checkpoints`, so ``last.pt``, resume,
the folder lock and SIGTERM behave the same in both.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable

import torch
from tqdm.auto import tqdm

from seqrec.training import distributed as ddp
from seqrec.training.checkpoints import Checkpoints, Interrupted, LoopState, StopRequest

AUTOCAST_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


class EpochLoop:
    """Optimizer steps over a stage's batches, epoch after epoch, resumable after any batch.

    Args:
        model: the network (on ``device``).
        optimizer: over the parameters being trained.
        max_epochs: the last epoch.
        device: torch device of the model and the data.
        precision: ``fp32``, ``bf16`` or ``fp16`` (autocast on the forward pass; fp16 also scales
            the loss with a GradScaler, since fp16 gradients underflow without it).
        progress: tqdm bars (rank 0 only under DDP).
        stat_names: names of the statistics :meth:`_batch_loss` returns, one per entry of its
            ``[K]`` vector; ``()`` for a scalar.

    Attributes:
        state: :class:`LoopState`, where the loop stands (part of ``last.pt``).
    """

    desc = "training"  # the epochs bar's label

    def __init__(
        self,
        model: torch.nn.Module,
        optimizer: torch.optim.Optimizer,
        max_epochs: int,
        device: torch.device,
        precision: str = "fp32",
        progress: bool = True,
        stat_names: tuple[str, ...] = (),
    ):
        self.model, self.optimizer, self.max_epochs = model, optimizer, max_epochs
        self.device = torch.device(device)
        self.precision = precision
        self.scaler = torch.amp.GradScaler(self.device.type) if precision == "fp16" else None
        self.progress = progress and ddp.is_main()  # DDP: bars on rank 0
        self.stat_names = stat_names
        self.state = LoopState()

    # -- what a stage supplies -------------------------------------------------------------------
    def _start_epoch(self, epoch: int) -> list[torch.Tensor]:
        """The epoch's batches (index tensors; the same on every rank); seeds the epoch's
        generators, so an epoch's randomness depends on the epoch alone."""
        raise NotImplementedError

    def _batch_loss(self, index: int, batch: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Batch ``index`` of the epoch: ``(loss, stats)``, the scalar to minimise and the
        detached statistics (``[]`` or ``[K]``, see ``stat_names``) whose epoch sum is kept."""
        raise NotImplementedError

    def _generators(self) -> dict[str, torch.Generator]:
        """The stage's own generators (besides torch's global ones), saved mid-epoch."""
        return {}

    def _epoch_row(self, epoch: int, checkpoints: Checkpoints, stop: StopRequest | None) -> dict:
        """Train ``epoch`` (see :meth:`_train_timed`) and return its log row."""
        raise NotImplementedError

    def _record(self, row: dict) -> bool:
        """Keep an epoch's row in :attr:`state` (epoch, history) and log it; whether the
        monitored value strictly improved (then the state is saved as the best)."""
        raise NotImplementedError

    def _done(self) -> bool:
        """Whether to stop before :attr:`max_epochs` (early stopping); never by default."""
        return False

    def _postfix(self, row: dict) -> dict:
        """What the epochs bar shows after an epoch."""
        return {}

    def state_dict(self) -> dict:
        """All a resumed loop needs (``last.pt``)."""
        raise NotImplementedError

    # -- shared machinery ------------------------------------------------------------------------
    def _autocast(self):
        if self.precision in AUTOCAST_DTYPES:
            return torch.autocast(device_type=self.device.type, dtype=AUTOCAST_DTYPES[self.precision])
        return contextlib.nullcontext()

    def _sync(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)

    def _rng_state(self) -> dict:
        state = {"torch": torch.get_rng_state(), **{k: g.get_state() for k, g in self._generators().items()}}
        if self.device.type == "cuda":
            state["cuda"] = torch.cuda.get_rng_state(self.device)
        return state

    def _set_rng_state(self, state: dict) -> None:
        torch.set_rng_state(state["torch"])
        for name, generator in self._generators().items():
            generator.set_state(state[name])
        if "cuda" in state and self.device.type == "cuda":
            torch.cuda.set_rng_state(state["cuda"], self.device)

    def _step(self, loss: torch.Tensor) -> None:
        self.optimizer.zero_grad(set_to_none=True)
        if self.scaler is not None:
            self.scaler.scale(loss).backward()
            self.scaler.step(self.optimizer)
            self.scaler.update()
        else:
            loss.backward()
            self.optimizer.step()

    def run_batches(
        self, epoch: int, max_batches: int | None = None, stop: StopRequest | None = None
    ) -> tuple[torch.Tensor, int]:
        """Train epoch ``epoch`` (or its first ``max_batches`` batches, for benchmarks): the sum of
        the batches' statistics (averaged over DDP ranks) and the number of batches.

        When :attr:`state` records an interrupted epoch ``epoch`` (``batches_done > 0``), it
        continues after those batches with the saved generator states and sums.

        Raises:
            Interrupted: ``stop`` was set; :attr:`state` then holds the position in the epoch.
        """
        self.model.train()
        batches = self._start_epoch(epoch)
        first, total = 0, torch.zeros(len(self.stat_names) or (), device=self.device)
        if self.state.batches_done and self.state.epoch == epoch - 1:  # resume inside this epoch
            first = self.state.batches_done
            total += torch.as_tensor(self.state.loss_total, dtype=total.dtype, device=self.device)
            rng = ddp.rank_rng(self.state.rng)  # DDP: this rank's generators
            if rng is not None:
                self._set_rng_state(rng)
        n_batches = len(batches) if max_batches is None else min(max_batches, len(batches))
        bar = tqdm(range(first, n_batches), desc=f"epoch {epoch}", leave=False, disable=not self.progress or None)
        for b in bar:
            loss, stats = self._batch_loss(b, batches[b])
            total += stats
            self._step(loss)
            if self.progress and self.stat_names and ((b + 1) % 20 == 0 or b + 1 == n_batches):
                means = (total / (b + 1)).tolist()
                bar.set_postfix({k: f"{v:.3g}" for k, v in zip(self.stat_names, means)}, refresh=False)
            if b + 1 < n_batches and (signum := ddp.agreed_signal(stop)) is not None:
                self.state.batches_done, self.state.loss_total = b + 1, ddp.all_mean(total).tolist()
                self.state.rng = ddp.gather_rng(self._rng_state())
                raise Interrupted(signum, epoch - 1, b + 1)
        bar.close()
        self.state.batches_done, self.state.loss_total, self.state.rng = 0, 0.0, None
        return ddp.all_mean(total), n_batches  # DDP: the global batches' sums

    def _train_timed(self, epoch: int, train: Callable[[], object], checkpoints: Checkpoints) -> tuple[object, float]:
        """``train()`` (an epoch) and its wall-clock seconds; an :class:`Interrupted` epoch is
        saved (``checkpoints.save_last``) before it propagates."""
        self._sync()
        start = time.perf_counter()
        try:
            result = train()
        except Interrupted:
            checkpoints.save_last(self.state_dict())
            raise
        self._sync()
        return result, time.perf_counter() - start

    def run_epochs(
        self,
        checkpoints: Checkpoints,
        stop: StopRequest | None = None,
        on_epoch_end: Callable[[dict], None] | None = None,
    ) -> None:
        """Epochs after :attr:`state` up to :attr:`max_epochs` or :meth:`_done`: each epoch's row
        (:meth:`_epoch_row`) is recorded, passed to ``on_epoch_end``, and the state saved:
        ``checkpoints.save_best`` when the monitored value improved, ``checkpoints.save_last``
        always. Between epochs a set ``stop`` raises :class:`Interrupted` (state saved)."""
        st = self.state
        bar = tqdm(total=self.max_epochs, initial=st.epoch, desc=self.desc, disable=not self.progress or None)
        done = st.epoch > 0 and self._done()
        while st.epoch < self.max_epochs and not done:
            epoch = st.epoch + 1
            row = self._epoch_row(epoch, checkpoints, stop)
            improved = self._record(row)
            bar.update(1)
            bar.set_postfix(self._postfix(row))
            if on_epoch_end is not None:
                on_epoch_end(row)
            state = self.state_dict()
            if improved:
                checkpoints.save_best(state)
            checkpoints.save_last(state)
            done = self._done()
            if not done and epoch < self.max_epochs and (signum := ddp.agreed_signal(stop)) is not None:
                raise Interrupted(signum, epoch, 0)
        bar.close()
