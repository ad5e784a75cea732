"""Data-parallel training with ``torch.nn.parallel.DistributedDataParallel`` (DDP) under ``torchrun``.

Everything rank-aware lives here; the trainer and the pipeline call these functions at a few
marked lines. Without ``torchrun`` (no ``WORLD_SIZE`` > 1 in the environment, or a Slurm step of
one task) every function is the identity or a no-op, so a single process computes exactly what
it would without DDP support: no collective, no sharding, no extra random draws.

How a run is split across ``W`` processes (ranks):

* **Training**: every rank draws the same seeded batch order (:meth:`seqrec.training.trainer.Trainer._start_epoch`);
  rank ``r`` takes rows ``r::W`` of each global batch of ``trainer.batch_size`` rows
  (:func:`shard_rows`) and scales its loss so that DDP's gradient *average* equals the gradient
  of the one-process loss on the whole batch. Negatives and dropout come from
  ``(seed, epoch, rank)``; rank 0 keeps the one-process stream ``(seed, epoch)``.
* **Evaluation**: users are dealt out across ranks by length (:func:`sharded_ranks`); the integer
  ranks are gathered, so every metric is computed once over all users (exact, not a mean of
  per-rank means). The epoch's log row is rank 0's, broadcast, so early stopping is decided once.
* **Files**: one run folder, rank 0's (:func:`seqrec.runs.rundir.share_run_dir`); only rank 0 writes, logs and shows
  progress bars. Checkpoints hold the unwrapped model, so a run resumes with any number of
  processes.
"""

from __future__ import annotations

import atexit
import logging
import os
import subprocess
from typing import Callable

import torch
import torch.distributed as dist
from torch import nn

from seqrec.errors import ConfigError, SeqrecError

log = logging.getLogger(__name__)


# -- who am I --------------------------------------------------------------------------------
def active() -> bool:
    """True inside an initialised process group of more than one process."""
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def rank() -> int:
    """This process's global rank (0 without torchrun)."""
    return dist.get_rank() if active() else 0


def world_size() -> int:
    """Number of processes (1 without torchrun)."""
    return dist.get_world_size() if active() else 1


def local_rank() -> int:
    """This process's rank on its node (``LOCAL_RANK``; 0 without torchrun): its GPU index."""
    return int(os.environ.get("LOCAL_RANK", "0")) if active() else 0


def is_main() -> bool:
    """True on rank 0 (and in a single process): the one that writes files and logs."""
    return rank() == 0


def slurm_env(env: dict[str, str], hostnames: Callable[[str], list[str]]) -> dict[str, str]:
    """torchrun's variables from a Slurm step of several tasks (``srun``, submitit's launcher).

    Args:
        env: the environment (``SLURM_PROCID``, ``SLURM_NTASKS``, ``SLURM_LOCALID``,
            ``SLURM_JOB_NODELIST``, ``SLURM_JOB_ID``).
        hostnames: expands a Slurm node list (``node[1-3]``) into host names.

    Returns:
        ``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``, ``MASTER_ADDR`` (first node, unless set) and
        ``MASTER_PORT`` (from the job id, unless set); empty when this is not such a step.
    """
    if int(env.get("SLURM_NTASKS", "1")) <= 1 or "SLURM_PROCID" not in env or "SLURM_STEP_ID" not in env:
        return {}
    out = {"RANK": env["SLURM_PROCID"], "WORLD_SIZE": env["SLURM_NTASKS"], "LOCAL_RANK": env.get("SLURM_LOCALID", "0")}
    out["MASTER_ADDR"] = env.get("MASTER_ADDR") or hostnames(env["SLURM_JOB_NODELIST"])[0]
    out["MASTER_PORT"] = env.get("MASTER_PORT") or str(20000 + int(env.get("SLURM_JOB_ID", "0")) % 20000)
    return out


def launched_processes(env: dict[str, str] | None = None) -> int:
    """How many processes the launcher started for this run, before any process group exists:
    ``WORLD_SIZE`` (torchrun), else the tasks of a Slurm step of several (:func:`slurm_env`), else 1."""
    env = dict(os.environ if env is None else env)
    if "WORLD_SIZE" in env:
        return int(env["WORLD_SIZE"])
    if int(env.get("SLURM_NTASKS", "1")) > 1 and "SLURM_PROCID" in env and "SLURM_STEP_ID" in env:
        return int(env["SLURM_NTASKS"])
    return 1


def _scontrol_hostnames(nodelist: str) -> list[str]:
    return subprocess.run(
        ["scontrol", "show", "hostnames", nodelist], capture_output=True, text=True, check=True
    ).stdout.split()


def init_from_env(device: str = "auto") -> bool:
    """Join the process group that ``torchrun`` (or a Slurm step of several tasks) describes.

    Reads ``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``, ``MASTER_ADDR``, ``MASTER_PORT``. NCCL when
    the run uses CUDA (each process on ``cuda:<LOCAL_RANK>``), gloo on CPU. Idempotent; the
    group is destroyed at exit.

    Args:
        device: the run's ``device`` option (``cpu`` forces gloo even on a GPU machine).

    Returns:
        True when running with more than one process.
    """
    if dist.is_initialized():
        return active()
    if "WORLD_SIZE" not in os.environ:
        os.environ.update(slurm_env(dict(os.environ), _scontrol_hostnames))
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return False
    cuda = device != "cpu" and torch.cuda.is_available()
    if cuda:
        device_id = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
        torch.cuda.set_device(device_id)
        dist.init_process_group("nccl", device_id=device_id)
    else:
        dist.init_process_group("gloo")
    atexit.register(lambda: dist.is_initialized() and dist.destroy_process_group())
    return active()


def local_device(device: torch.device) -> torch.device:
    """The device of this process: ``cuda:<LOCAL_RANK>`` under torchrun on GPUs, else ``device``.

    Raises:
        ConfigError: a GPU index was given (``device=cuda:1``) with several processes.
    """
    if not active() or device.type != "cuda":
        return device
    if device.index is not None and device.index != local_rank():
        raise ConfigError(
            f"device={device} with {world_size()} processes: each process uses the GPU of its "
            "LOCAL_RANK (cuda:<local rank>). Use device=auto or device=cuda, and choose GPUs "
            "with CUDA_VISIBLE_DEVICES."
        )
    return torch.device("cuda", local_rank())


# -- collectives (identity in one process) -----------------------------------------------------
def broadcast_object(obj, src: int = 0):
    """``obj`` of rank ``src`` on every rank (picklable objects; tensors go via CPU)."""
    if not active():
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=src)
    return box[0]


def on_main(fn: Callable[[], object]):
    """Run ``fn`` on rank 0 only and hand its result to every rank; a :class:`SeqrecError` it
    raises is raised on every rank (so no rank waits for a rank that has failed)."""
    if not active():
        return fn()
    result = error = None
    if is_main():
        try:
            result = fn()
        except SeqrecError as err:
            error = err
    result, error = broadcast_object((result, error))
    if error is not None:
        raise error
    return result


def all_mean(value: torch.Tensor) -> torch.Tensor:
    """The mean of a tensor over ranks (a copy; the tensor itself in one process)."""
    if not active():
        return value
    out = value.detach().clone()
    dist.all_reduce(out)
    return out / world_size()


def gather(tensor: torch.Tensor) -> list[torch.Tensor]:
    """Every rank's ``tensor`` ``[n_r, ...]`` (``n_r`` may differ), as a list indexed by rank."""
    if not active():
        return [tensor]
    sizes = [torch.zeros(1, dtype=torch.long, device=tensor.device) for _ in range(world_size())]
    dist.all_gather(sizes, torch.tensor([len(tensor)], device=tensor.device))
    width = int(max(sizes))
    padded = torch.zeros((width, *tensor.shape[1:]), dtype=tensor.dtype, device=tensor.device)
    padded[: len(tensor)] = tensor
    parts = [torch.empty_like(padded) for _ in sizes]
    dist.all_gather(parts, padded)
    return [part[: int(n)] for part, n in zip(parts, sizes)]


def agreed_signal(stop) -> int | None:
    """The signal of a :class:`seqrec.training.trainer.StopRequest` if *any* rank received one (so all
    ranks stop after the same batch), else None. ``stop`` may be None."""
    own = stop.signal if stop is not None else None
    if not active():
        return own
    flag = torch.tensor([own or 0], dtype=torch.long, device=_collective_device())
    dist.all_reduce(flag, op=dist.ReduceOp.MAX)
    return int(flag) or None


def _collective_device() -> torch.device:
    return torch.device("cuda", local_rank()) if dist.get_backend() == "nccl" else torch.device("cpu")


def broadcast_module(module: nn.Module) -> None:
    """Copy rank 0's parameters and buffers into ``module`` on every rank (in place)."""
    if active():
        for tensor in module.state_dict().values():
            dist.broadcast(tensor, 0)


# -- training ----------------------------------------------------------------------------------
def seed_parts() -> tuple[int, ...]:
    """Extra parts of the per-epoch seeds: ``()`` on rank 0 (the one-process stream), ``(rank,)``
    on the others, so each rank draws its own negatives and dropout from ``(seed, epoch, rank)``."""
    return (rank(),) if rank() else ()


def shard_rows(idx: torch.Tensor, positions: torch.Tensor, rank: int, world: int) -> tuple[torch.Tensor, float]:
    """This rank's rows of a global batch and the factor that makes DDP's step the one-process step.

    The one-process loss of a batch is ``S / P`` (``S`` summed over its ``P`` target positions).
    Rank ``r`` computes the mean ``S_r / P_r`` over its own ``P_r`` positions; DDP averages the
    ranks' gradients, so scaling rank ``r``'s loss by ``P_r · W / P`` gives
    ``(1/W) Σ_r (S_r / P_r) · P_r · W / P = S / P``. A rank left without rows (a last batch
    smaller than ``W``) trains the batch's first row with factor 0: DDP needs every rank in
    every step.

    Args:
        idx: ``[B]`` row indices of the global batch (length-sorted inside a bucket, so ``r::W``
            gives each rank similar lengths).
        positions: ``[U]`` target positions each training row contributes to the loss.
        rank, world: this rank and the number of ranks ``W``.

    Returns:
        ``(rows [ceil((B - r) / W)], factor)``; ``(idx, 1.0)`` for one process.
    """
    if world == 1:
        return idx, 1.0
    mine = idx[rank::world]
    if len(mine) == 0:
        return idx[:1], 0.0
    return mine, float(positions[mine].sum()) * world / float(positions[idx].sum())


class _Replica(nn.Module):
    """The model and the loss as one module, so DDP broadcasts and averages every trained
    parameter (a loss may have its own); ``forward`` is the model's."""

    def __init__(self, model: nn.Module, loss: nn.Module | None):
        super().__init__()
        self.model = model
        self.loss = loss if isinstance(loss, nn.Module) else None

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        return self.model(inputs)


def wrap(forward: nn.Module, loss=None) -> nn.Module:
    """``forward`` (the model, maybe compiled) in DDP for the training forward; itself in one process.

    ``static_graph=True``: the set of trained parameters is the same every step, which lets DDP
    average parameters used outside ``forward`` (the output table the loss reads) and skip
    parameters no fine-tuning step uses (S3-Rec's pre-training heads).
    """
    if not active():
        return forward
    device_ids = [local_rank()] if dist.get_backend() == "nccl" else None
    return nn.parallel.DistributedDataParallel(_Replica(forward, loss), device_ids=device_ids, static_graph=True)


def gather_rng(state: dict) -> dict:
    """Generator states for ``last.pt`` in an interrupted epoch: rank 0's, plus every rank's
    under ``"ranks"`` (so a resume with the same number of processes is exact)."""
    if not active():
        return state
    ranks = [None] * world_size()
    dist.all_gather_object(ranks, state)
    return {**ranks[0], "ranks": ranks}


def rank_rng(state: dict) -> dict | None:
    """This rank's generator states from :func:`gather_rng`'s dict (or a one-process dict), or
    None when the run was saved by fewer processes (the rank keeps its freshly seeded generators)."""
    saved = state.get("ranks") or [state]
    if len(saved) != world_size() and is_main():
        log.warning(
            "resuming inside an epoch saved by %d process(es) with %d: the rest of the epoch draws "
            "other negatives and dropout than the uninterrupted run",
            len(saved),
            world_size(),
        )
    return saved[rank()] if rank() < len(saved) else None


# -- evaluation --------------------------------------------------------------------------------
def sharded_ranks(evaluate: Callable[[torch.Tensor], torch.Tensor], lengths: torch.Tensor) -> torch.Tensor:
    """Integer ranks ``[U]`` of all users, each rank evaluating a share of them.

    Users are sorted by length and dealt out (``r::W``), so each rank gets as much work; the
    ranks are gathered and put back in user order, so metrics over them are exact.

    Args:
        evaluate: maps user indices ``[u]`` to their int64 ranks ``[u]``.
        lengths: ``[U]`` input lengths (on the evaluation device).
    """
    if not active():
        return evaluate(torch.arange(len(lengths), device=lengths.device))
    order = torch.argsort(lengths, stable=True)
    parts = gather(evaluate(order[rank() :: world_size()]))
    ranks = torch.empty(len(lengths), dtype=torch.long, device=lengths.device)
    for r, part in enumerate(parts):
        ranks[order[r :: world_size()]] = part
    return ranks
