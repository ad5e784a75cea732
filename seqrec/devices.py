"""Device names as the options and command lines give them (``device=auto``, ``--device cuda:1``)."""

from __future__ import annotations

import torch

from seqrec.errors import ConfigError


def resolve_device(name: str, option: str = "device=") -> torch.device:
    """``auto`` → CUDA when available, else CPU; ``cpu``/``cuda``/``cuda:1`` as given.

    ``option``: how the message writes the setting, ``device=`` (train.py) or ``--device `` (the
    command lines).

    Raises:
        ConfigError: ``name`` is no device torch knows, or a CUDA device was asked for on a
            machine without one.
    """
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except (RuntimeError, ValueError, TypeError):
        raise ConfigError(
            f"{option}{name!r} is not a device: use auto (a GPU when there is one), cpu, cuda or cuda:<index>."
        ) from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(
            f"{option}{name} was asked for but no CUDA GPU is available here; use {option}cpu or {option}auto."
        )
    return device
