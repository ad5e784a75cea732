"""How entry points report user errors: one paragraph on stderr, exit status 1, no traceback."""

from __future__ import annotations

import contextlib

from omegaconf.errors import MissingMandatoryValue
from rich.console import Console

from seqrec.errors import SeqrecError


@contextlib.contextmanager
def report_errors():
    """Turn a :class:`SeqrecError` into its message on stderr and ``SystemExit(1)``."""
    try:
        yield
    except SeqrecError as err:
        _fail(str(err))
    except MissingMandatoryValue as err:
        key = getattr(err, "full_key", None) or "a required option"
        _fail(f"{key} has no value (it is '???' in its config file). Set it on the command line, "
              f"e.g. `python train.py ... {key}=<value>`.")


def _fail(message: str) -> None:
    Console(stderr=True).print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)
    raise SystemExit(1)
