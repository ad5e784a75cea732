"""Atomic file writes: every file seqrec produces appears whole or not at all.

A writer fills a temporary file in the target's folder, which is flushed to disk and renamed
over the target (``os.replace`` is atomic on POSIX and Windows). A crash, a full disk or a
concurrent writer therefore never leaves a half-written cache, checkpoint or result behind.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO


def atomic_write(path: str | os.PathLike, write: Callable[[BinaryIO], object]) -> Path:
    """Create ``path`` (and its folders) from ``write(handle)`` on a binary temp-file handle.

    Returns:
        ``path`` as a :class:`~pathlib.Path`.

    Raises:
        Whatever ``write`` or the file system raises; the temporary file is removed then.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o644)  # mkstemp creates 0600; make it an ordinary file
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def write_bytes(path: str | os.PathLike, data: str | bytes) -> Path:
    """Atomically write ``data`` (text is UTF-8 encoded) to ``path``; returns the path."""
    payload = data.encode("utf-8") if isinstance(data, str) else data
    return atomic_write(path, lambda handle: handle.write(payload))
