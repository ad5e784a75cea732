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


def atomic_write(path: str | os.PathLike, data: str | bytes | Callable[[BinaryIO], object]) -> Path:
    """Create ``path`` (and its folders) atomically: the one way seqrec writes a file.

    Args:
        path: the file to create or replace.
        data: its content: text (written as UTF-8), bytes, or a function that writes into the
            binary handle of the temporary file (e.g. ``lambda f: torch.save(obj, f)``).

    Returns:
        ``path`` as a :class:`~pathlib.Path`.

    Raises:
        TypeError: ``data`` is none of those; or whatever ``data`` or the file system raises.
            The temporary file is removed then and an existing ``path`` is left as it was.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            if isinstance(data, str):
                handle.write(data.encode("utf-8"))
            elif isinstance(data, (bytes, bytearray)):
                handle.write(data)
            elif callable(data):
                data(handle)
            else:
                raise TypeError(f"atomic_write needs str, bytes or a function, got {type(data).__name__}")
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o644)  # mkstemp creates 0600; make it an ordinary file
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path
