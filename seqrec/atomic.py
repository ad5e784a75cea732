"""Atomic file writes: every file seqrec produces appears whole or not at all.

A writer fills a temporary file in the target's folder, which is flushed to disk and renamed
over the target (``os.replace`` is atomic on POSIX and Windows). A crash, a full disk or a
concurrent writer therefore never leaves a half-written cache, checkpoint or result behind.

A writer killed outright (``kill -9``, a node lost) cannot remove its temporary file. Temporary
names carry the writer's host and process id (``.<name>.<host>-<pid>.<random>.tmp``), and the
first write of a process into a folder removes the temporary files of writers on this host that
no longer run (and any of
ours older than :data:`STALE_SECONDS`, e.g. from another host of a shared file system).
"""

from __future__ import annotations

import json
import os
import re
import socket
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

# a temporary file this old is stale whoever wrote it (no write takes a day)
STALE_SECONDS = 24 * 3600
# folders already cleaned by this process: a writer that died before we started is found the
# first time; one scan per folder, not one per write (a run writes every epoch)
_CLEANED: set[str] = set()
_TMP_RE = re.compile(r"^\..+\.(?P<host>[^.]+)-(?P<pid>\d+)\.[^.]+\.tmp$")


def _host() -> str:
    return re.sub(r"[^A-Za-z0-9_]", "_", socket.gethostname())[:40] or "host"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


def remove_stale_temp_files(folder: str | os.PathLike) -> list[Path]:
    """Delete temporary files of dead writers in ``folder`` (see the module docstring).

    Returns:
        The removed paths. Files that vanish or cannot be removed meanwhile are skipped.
    """
    removed = []
    host, now = _host(), time.time()
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return removed
    for entry in entries:
        match = _TMP_RE.match(entry.name)
        if not match or not entry.is_file(follow_symlinks=False):
            continue
        try:
            old = now - entry.stat().st_mtime > STALE_SECONDS
            dead = match["host"] == host and not _alive(int(match["pid"]))
            if old or dead:
                os.unlink(entry.path)
                removed.append(Path(entry.path))
        except OSError:
            continue
    return removed


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
    folder = os.path.abspath(path.parent)
    if folder not in _CLEANED:
        remove_stale_temp_files(folder)
        _CLEANED.add(folder)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.{_host()}-{os.getpid()}.", suffix=".tmp")
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


def write_json(path: Path, obj: dict) -> None:
    """Atomically write ``obj`` as indented JSON (:func:`atomic_write`)."""
    atomic_write(path, json.dumps(obj, indent=2, sort_keys=False) + "\n")
