"""Exclusive file locks for folders that one process at a time may write.

A run folder belongs to one run: two ``train.py`` processes writing one folder would mix their
files (one's ``metrics.json`` beside the other's ``config.yaml``). S3-Rec's pre-training folder
is shared by every fine-tuning run of the same recipe, which wait for each other instead. A search
folder belongs to one search process: a second one on the same study would take the first's running
trials for interrupted ones.

The lock is ``flock`` on a small file (``.run.lock``, ``.search.lock``, ``.lock``): the kernel drops it when its
process ends in any way (``kill -9`` included), so a lock left by a killed run is taken over by
the next one without any clean-up. The file records who holds it (pid, host, start time) for the
message the next writer gets. Where ``fcntl`` does not exist (Windows) nothing is locked.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import socket
import time
from pathlib import Path

from seqrec.errors import SeqrecError

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None

log = logging.getLogger(__name__)

RUN_LOCK = ".run.lock"
SEARCH_LOCK = ".search.lock"  # a hyper-parameter search's folder: one search process per study


class FolderInUse(SeqrecError):
    """Another live process holds the folder's lock."""


def _holder(handle) -> str:
    handle.seek(0)
    try:
        info = json.loads(handle.read() or "{}")
        since = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(info["since"]))
        return f"pid {info['pid']} on {info['host']}, since {since}"
    except (ValueError, KeyError, TypeError, OverflowError):
        return "another process"


@contextlib.contextmanager
def exclusive(path: str | os.PathLike, wait: bool = False, what: str = "folder"):
    """Hold an exclusive lock on the file ``path`` (created) for the ``with`` block.

    Args:
        path: the lock file; its folder must exist.
        wait: block until the holder finishes (with a log line) instead of refusing.
        what: how the message names the folder (e.g. ``"run folder"``).

    Raises:
        FolderInUse: ``wait`` is false and another live process holds the lock; the message names
            the folder and the holder (pid, host, start time) and how to go on.
    """
    path = Path(path)
    if fcntl is None:  # pragma: no cover
        yield
        return
    with open(path, "a+") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _holder(handle)
            if not wait:
                raise FolderInUse(
                    f"The {what} {path.parent} is in use by another run ({holder}). Two runs writing one "
                    "folder would mix their files, so this one stops before writing anything. Wait for that "
                    "run to end, or give this one another folder (hydra.run.dir=<folder>; sweeps: "
                    "hydra.sweep.dir=<folder>)."
                ) from None
            log.info("waiting for the process that holds %s (%s)", path.parent, holder)
            fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            handle.seek(0)
            handle.truncate()
            handle.write(json.dumps({"pid": os.getpid(), "host": socket.gethostname(), "since": time.time()}))
            handle.flush()
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
