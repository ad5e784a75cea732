"""How entry points report user errors: one paragraph on stderr, exit status 1, no traceback."""

from __future__ import annotations

import contextlib

from omegaconf.errors import MissingMandatoryValue
from rich.console import Console
from rich.markup import escape

from seqrec.errors import SeqrecError


@contextlib.contextmanager
def report_errors(keep_going: bool = False):
    """Turn a :class:`SeqrecError` (or a missing ``???`` option) into its message on stderr and
    ``SystemExit(1)``; Ctrl-C into a one-line note and ``SystemExit(130)``.

    Args:
        keep_going: in a sweep, print the message and re-raise the error as an ordinary
            exception instead, so Hydra marks this job failed, runs the others, and exits
            non-zero at the end.
    """
    try:
        yield
    except SeqrecError as err:
        if keep_going:
            _print(str(err))
            raise
        _fail(str(err))
    except MissingMandatoryValue as err:
        key = getattr(err, "full_key", None) or "a required option"
        _fail(f"{key} has no value (it is '???' in its config file). Set it on the command line, "
              f"e.g. `python train.py ... {key}=<value>`.")
    except KeyboardInterrupt:
        Console(stderr=True).print("interrupted: this run wrote no metrics.json, so it does not count as a result.")
        raise SystemExit(130) from None


def _print(message: str) -> None:
    # escape: a message may contain [brackets] (paths, JSON examples) that rich would read as markup
    Console(stderr=True).print(f"[bold red]error:[/] {escape(message)}", highlight=False, soft_wrap=True)


def _fail(message: str) -> None:
    _print(message)
    raise SystemExit(1)
