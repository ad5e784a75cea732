"""Device names as the options and command lines give them (``device=auto``, ``--device cuda:1``)."""

from __future__ import annotations

import torch

from seqrec.errors import ConfigError


def resolve_device(name: str, option: str = "device=") -> torch.device:
    """``auto`` → CUDA when available, else CPU; ``cpu``/``cuda``/``cuda:1``/``mps`` as given.

    ``option``: how the message writes the setting, ``device=`` (train.py) or ``--device `` (the
    command lines).

    Raises:
        ConfigError: ``name`` is no device torch knows, or a CUDA or MPS device was asked for on
            a machine without one (or a CUDA index beyond its GPUs).
    """
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except (RuntimeError, ValueError, TypeError):
        raise ConfigError(
            f"{option}{name!r} is not a device: use auto (a GPU when there is one), cpu, cuda or cuda:<index>."
        ) from None
    kinds = {"cuda": ("CUDA GPU", torch.cuda.is_available), "mps": ("Apple GPU (MPS)", torch.backends.mps.is_available)}
    if device.type in kinds and not kinds[device.type][1]():
        raise ConfigError(
            f"{option}{name} was asked for but no {kinds[device.type][0]} is available here; "
            f"use {option}cpu or {option}auto."
        )
    if device.type == "cuda" and device.index is not None and device.index >= torch.cuda.device_count():
        raise ConfigError(
            f"{option}{name} was asked for but this machine has {torch.cuda.device_count()} CUDA GPU(s), "
            f"numbered from 0; use {option}cuda (the first) or an index below the count."
        )
    return device
