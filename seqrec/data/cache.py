"""Load a dataset: find (or fetch) its source file, then read the processed sequences from the
cache ``data_dir/processed/<name>-<key>.npz`` or build and write them.

``key`` is the first 16 hex digits of sha256(:data:`CACHE_VERSION` + :data:`DELIMITED_VERSION`
for CSV and atomic files + preprocessing settings + source file bytes), so a changed file, option
or reader never reuses a stale cache. Writes are atomic
(temp file in the same folder, then ``os.replace``); a corrupt or partial cache file is detected
on load and rebuilt.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from seqrec.atomic import atomic_write
from seqrec.data.fetch import ensure_file, refuse_shared
from seqrec.data.preprocess import SequenceData, preprocess
from seqrec.data.readers import Interactions, read_atomic, read_csv, read_s3rec
from seqrec.data.spec import DatasetSpec
from seqrec.errors import DataError

log = logging.getLogger(__name__)

# Bump when readers or preprocessing change what they produce: old caches are then ignored. It
# enters every data fingerprint, so a bump also makes runs, results/ and pre-trained S3-Rec models
# of the benchmark files incomparable with new ones.
CACHE_VERSION = "2"  # 2: date-times with and without a zone are refused
# Bump when only the CSV / RecBole atomic readers change what they produce: it enters the key of
# those formats alone, so the S3-Rec-format benchmark files keep theirs.
DELIMITED_VERSION = "1"  # 1: repeated header lines skipped, 'UTC'/'GMT' read as +00:00


def load_dataset(cfg: Mapping[str, Any] | DatasetSpec, data_dir: Path) -> SequenceData:
    """The processed dataset described by ``cfg`` (the ``dataset`` config group).

    Fetches the source file into ``data_dir`` first when it is missing (see
    :mod:`seqrec.data.fetch`), then returns the cached result or builds and caches it.

    Raises:
        ConfigError: a bad dataset option (a mapping ``cfg``; see :class:`DatasetSpec`).
        DataError: a missing/unfetchable/malformed source file, or a dataset that is empty after
            preprocessing or has no user with the 4 interactions a training pair needs.
    """
    spec = cfg if isinstance(cfg, DatasetSpec) else DatasetSpec.from_mapping(cfg)
    data_dir = Path(data_dir)
    refuse_shared(data_dir)
    source = ensure_file(data_dir, spec.path, spec.url, spec.archive_member, sha256=spec.sha256)
    key = fingerprint(source, spec)
    cache = data_dir / "processed" / f"{spec.name}-{key}.npz"
    if cache.is_file():
        try:
            data, warnings = load_cache(cache, key), _cached_warnings(cache)
            # what reading and filtering the file reported belongs in every run's log, not only the first's
            for message in warnings:
                log.warning("%s [reported when %s was built]", message, cache.name)
            return _trainable(data, spec, source)
        except CorruptCacheError as err:
            log.warning("rebuilding %s: %s", cache, err)
    with _Recorded(logging.getLogger("seqrec.data")) as recorded:
        data = preprocess(
            read_source(spec, source),
            spec.name,
            kcore=spec.kcore,
            min_user_interactions=spec.min_user_interactions,
            max_users=spec.max_users,
            fingerprint=key,
            min_rating=spec.min_rating,
        )
    save_cache(_trainable(data, spec, source), cache, recorded.messages)
    return data


class _Recorded(logging.Handler):
    """Keeps the messages of the WARNING records a logger (and its children) emits while active."""

    def __init__(self, logger: logging.Logger):
        super().__init__(logging.WARNING)
        self.logger, self.messages = logger, []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())

    def __enter__(self) -> _Recorded:
        self.logger.addHandler(self)
        return self

    def __exit__(self, *exc) -> None:
        self.logger.removeHandler(self)


def cached_dataset(name: str, fingerprint: str, data_dir: Path) -> SequenceData | None:
    """The processed dataset whose fingerprint is ``fingerprint`` from ``data_dir/processed/``,
    without its source file (which may have moved or changed since), or None when that cache is
    missing or damaged."""
    cache = Path(data_dir) / "processed" / f"{name}-{fingerprint}.npz"
    try:
        return load_cache(cache, fingerprint) if cache.is_file() else None
    except CorruptCacheError:
        return None


def _trainable(data: SequenceData, spec: DatasetSpec, source: Path) -> SequenceData:
    """``data`` if some user has a training pair (4+ interactions), else :class:`DataError`."""
    if (data.lengths <= 3).all():
        raise DataError(
            f"dataset '{spec.name}' ({source}): all {data.n_users} users left have at most 3 "
            "interactions; leave-one-out keeps the last two for validation and test, which "
            "leaves no training pair (that needs 4 interactions in one history). Use a log with "
            f"longer histories, or lower dataset.kcore (now {spec.kcore}) if the filter "
            "shortened them."
        )
    return data


def read_source(spec: DatasetSpec, source: Path) -> Interactions:
    """Read ``source`` with the reader of ``spec.format``."""
    if spec.format == "s3rec":
        return read_s3rec(source)
    reader = read_atomic if spec.format == "atomic" else read_csv
    return reader(
        source,
        user_col=spec.user_col,
        item_col=spec.item_col,
        time_col=spec.time_col,
        sep=spec.sep,
        rating_col=spec.rating_col,
    )


def current_fingerprint(cfg: Mapping[str, Any] | DatasetSpec, data_dir: Path) -> str | None:
    """The fingerprint the dataset's source file gives now (:func:`fingerprint`), without fetching,
    checking or preprocessing anything; None when the file is not in ``data_dir`` (nothing to
    compare with).

    Raises:
        ConfigError: a bad dataset option (a mapping ``cfg``; see :class:`DatasetSpec`).
    """
    spec = cfg if isinstance(cfg, DatasetSpec) else DatasetSpec.from_mapping(cfg)
    source = Path(data_dir) / os.path.expanduser(spec.path)  # where ensure_file looks first
    return fingerprint(source, spec) if source.is_file() else None


def fingerprint(source: Path, spec: DatasetSpec) -> str:
    """16 hex digits of sha256(CACHE_VERSION, DELIMITED_VERSION for CSV / atomic files,
    preprocessing settings, source file bytes)."""
    digest = hashlib.sha256()
    digest.update(f"seqrec-cache-{CACHE_VERSION}\n".encode())
    if spec.format != "s3rec":
        digest.update(f"delimited-{DELIMITED_VERSION}\n".encode())
    digest.update(json.dumps(spec.preprocessing_settings(), sort_keys=True).encode() + b"\n")
    with open(source, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()[:16]


class CorruptCacheError(Exception):
    """A cache file is unreadable or inconsistent (internal: the cache is then rebuilt)."""


def save_cache(data: SequenceData, path: Path, warnings: list[str] = ()) -> None:
    """Write ``data`` to ``path`` (.npz, no pickles) atomically, with the ``warnings`` its
    preprocessing logged (replayed whenever the cache is used)."""
    atomic_write(
        path,
        lambda handle: np.savez(
            handle,
            version=np.array(CACHE_VERSION),
            name=np.array(data.name),
            fingerprint=np.array(data.fingerprint),
            n_items=np.array(data.n_items),
            items=data.items,
            offsets=data.offsets,
            user_tokens=data.user_tokens,
            item_tokens=data.item_tokens,
            warnings=np.array(list(warnings), dtype=str),
        ),
    )


def _cached_warnings(path: Path) -> list[str]:
    """The warnings :func:`save_cache` stored (none in a cache written before they were kept)."""
    try:
        with np.load(path, allow_pickle=False) as npz:
            return [str(m) for m in npz["warnings"]] if "warnings" in npz.files else []
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as err:
        raise CorruptCacheError(f"unreadable ({type(err).__name__}: {err})") from err


def load_cache(path: Path, key: str) -> SequenceData:
    """Read a cache file written by :func:`save_cache` and check it.

    Raises:
        CorruptCacheError: unreadable (truncated, bad CRC), another version or key, or
            inconsistent arrays.
    """
    try:
        with np.load(path, allow_pickle=False) as npz:
            arrays = {name: npz[name] for name in npz.files}
        data = SequenceData(
            name=str(arrays["name"]),
            items=arrays["items"].astype(np.int64),
            offsets=arrays["offsets"].astype(np.int64),
            n_items=int(arrays["n_items"]),
            user_tokens=arrays["user_tokens"],
            item_tokens=arrays["item_tokens"],
            fingerprint=str(arrays["fingerprint"]),
        )
        version = str(arrays["version"])
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as err:
        raise CorruptCacheError(f"unreadable ({type(err).__name__}: {err})") from err
    problems = [
        version != CACHE_VERSION and f"version {version} != {CACHE_VERSION}",
        data.fingerprint != key and f"key {data.fingerprint} != {key}",
        (
            len(data.offsets) == 0
            or data.offsets[0] != 0
            or data.offsets[-1] != len(data.items)
            or (np.diff(data.offsets) < 0).any()
        )
        and "bad offsets",
        len(data.user_tokens) != data.n_users and "user tokens do not match",
        len(data.item_tokens) != data.n_items + 1 and "item tokens do not match",
        len(data.items) and (data.items.min() < 1 or data.items.max() > data.n_items) and "item index out of range",
    ]
    problems = [p for p in problems if p]
    if problems:
        raise CorruptCacheError("; ".join(problems))
    return data
