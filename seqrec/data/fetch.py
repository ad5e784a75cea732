"""Put each dataset's files into the data directory (``make data``).

Sources, in order: (a) a local shared folder with the same layout (``s3rec/LastFM.txt``,
``raw/ml-100k/ml-100k.inter``) — ``$SEQREC_SHARED_DATA``, else ``<project root>/../shared/data``,
else ``<project root>/shared/data`` — from which the file is copied; (b) the public URL in the
dataset config (the S3-Rec repository's ``data/`` folder; RecBole's ``ml-100k.zip``). Files are
written atomically and the shared folder is never written to.

Usage: ``python -m seqrec.data.fetch [NAME ...| --all] [--data-dir DIR]``
"""

from __future__ import annotations

import argparse
import hashlib
import logging
import os
import shutil
import sys
import urllib.error
import urllib.request
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import IO, Any

from seqrec.atomic import atomic_write
from seqrec.data.spec import DatasetSpec
from seqrec.data.text import directory_message
from seqrec.errors import DataError

log = logging.getLogger(__name__)

PROJECT_ROOT = Path(__file__).resolve().parents[2]
CONF_DIR = PROJECT_ROOT / "conf" / "dataset"
# Same default as ``data_dir`` in conf/config.yaml.
DEFAULT_DATA_DIR = Path(os.environ.get("SEQREC_DATA_DIR") or PROJECT_ROOT / "data")
TIMEOUT_S = 60.0


def shared_data_dirs() -> list[Path]:
    """Existing shared data folders, in the order they are searched."""
    env = os.environ.get("SEQREC_SHARED_DATA")
    if env and not Path(env).is_dir():  # a typo would otherwise fall back to ../shared unseen
        log.warning("SEQREC_SHARED_DATA=%s is not a folder; it is ignored (../shared/data, else a download).", env)
    candidates = [Path(env)] if env else []
    candidates += [PROJECT_ROOT.parent / "shared" / "data", PROJECT_ROOT / "shared" / "data"]
    return [folder for folder in candidates if folder.is_dir()]


def shared_data_dir() -> Path | None:
    """The first existing shared data folder, or None when this machine has none."""
    folders = shared_data_dirs()
    return folders[0] if folders else None


def find_shared(rel_path: str) -> Path | None:
    """The file ``rel_path`` in the first shared folder that has it, else None."""
    for folder in shared_data_dirs():
        if (folder / rel_path).is_file():
            return folder / rel_path
    return None


def file_sha256(path: Path) -> str:
    """Hex sha256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def verify_file(path: Path, sha256: str | None, source: str, fresh: bool, data_dir: Path | None = None) -> None:
    """Check ``path`` against the published file's ``sha256`` (no check when None).

    Args:
        source: where the file came from (for the message).
        fresh: the file was just copied or downloaded: it is deleted on a mismatch.
        data_dir: the data directory; a file away from the benchmark's place in it is the user's
            own, which the message must not tell them to delete.

    Raises:
        DataError: the bytes differ (a file cut short, edited or another version), naming the
            file, both checksums, its size and the fix.
    """
    if not sha256:
        return
    found = file_sha256(path)
    if found == sha256.lower():
        return
    size = path.stat().st_size
    if fresh:
        path.unlink(missing_ok=True)
        fix = (
            f"It was deleted again. The source ({source}) holds another version or a damaged copy: "
            "replace it with the published file, then run the same command again."
        )
    else:
        fix = _own_file_fix(path, sha256, data_dir) or (
            f"It is cut short, edited or another version. Delete it (rm {path}) and run the same command "
            "again: train.py and `python -m seqrec.data.fetch` copy or download the published file anew."
        )
    raise DataError(
        f"{path} ({size:,} bytes) is not the published benchmark file: its sha256 is {found}, expected {sha256}. {fix}"
    )


def _own_file_fix(path: Path, sha256: str, data_dir: Path | None) -> str | None:
    """The fix when ``path`` is not where the benchmark with ``sha256`` keeps its file, else None.

    A benchmark config pointed at the user's own file (``dataset=lastfm dataset.path=/my/file.txt``)
    fails the checksum by design; deleting that file, the fix for a damaged copy, would lose their data.
    """
    if data_dir is None:
        return None
    for name, cfg in load_dataset_configs().items():
        if cfg.get("sha256") != sha256.lower():
            continue
        published = Path(data_dir) / str(cfg.path)
        if path.resolve() == published.resolve():
            return None
        return (
            f"Benchmark configs (dataset={name}) check that dataset.path is their published file, kept at "
            f"{published}. To train on your own file, keep it and use the custom dataset: dataset=custom "
            f"dataset.format={cfg.format} dataset.path={path} dataset.kcore={cfg.kcore} (the kcore of "
            f"dataset={name}; custom's default is a 5-core filter). See docs/running.md for its other options."
        )
    return None


# long: the copy/download/verify sequence and its error paragraphs, each naming the path and the fix
def ensure_file(
    data_dir: Path,
    rel_path: str,
    url: str | None = None,
    archive_member: str | None = None,
    timeout: float = TIMEOUT_S,
    sha256: str | None = None,
) -> Path:
    """Return ``data_dir / rel_path``, copying or downloading it first when it is missing, and
    checked against ``sha256`` when one is given (the five benchmark files).

    ``url`` may point to a zip archive; then ``archive_member`` names the file inside it (an
    exact member name, or a base name that occurs once). The archive is kept under
    ``data_dir/downloads`` so that the other files it holds need no second download.

    Raises:
        DataError: the file is in no shared folder and cannot be downloaded (offline, bad URL,
            member not in the archive), the path is a directory, ``data_dir`` lies inside a
            shared folder, or the file does not match ``sha256`` (:func:`verify_file`).
    """
    rel_path = os.path.expanduser(rel_path)  # "~/log.csv" (Hydra overrides get no shell expansion)
    target = Path(data_dir) / rel_path
    if target.is_file():
        verify_file(target, sha256, str(target), fresh=False, data_dir=Path(data_dir))
        return target
    if target.is_dir():
        raise DataError(directory_message(target))
    refuse_shared(Path(data_dir))
    # no mkdir here: a missing file must leave no empty folders behind (writes create them)
    shared = find_shared(rel_path)
    if shared is not None:
        with open(shared, "rb") as src:
            _copy_to(target, src)
        verify_file(target, sha256, str(shared), fresh=True)
        log.info("copied %s -> %s", shared, target)
        return target
    if not url:
        here = Path(rel_path).resolve()
        if not Path(rel_path).is_absolute() and here.is_file():
            raise DataError(
                f"{target} does not exist, but {here} does: dataset.path is relative "
                f"to the data directory ({data_dir}), not to the working directory. "
                f"Give the absolute path: dataset.path={here}"
            )
        if Path(rel_path).is_absolute():
            raise DataError(f"{target} does not exist. Check dataset.path (it should name your interaction log).")
        raise DataError(
            f"{target} is missing, it is in no shared data folder and the dataset config has no "
            f"url to download it from. Copy the file to {target}, or set SEQREC_SHARED_DATA to "
            f"a folder that holds {rel_path}."
        )
    if archive_member is None:
        _download(url, target, timeout, target)
    else:
        archive = Path(data_dir) / "downloads" / Path(url.split("?")[0]).name
        if not archive.is_file():
            archive.parent.mkdir(parents=True, exist_ok=True)
            _download(url, archive, timeout, target)
        _extract(archive, archive_member, target, url)
    verify_file(target, sha256, url, fresh=True)
    log.info("downloaded %s -> %s", url, target)
    return target


def fetch_dataset(cfg: Mapping[str, Any] | DatasetSpec, data_dir: Path, extras: bool = True) -> list[Path]:
    """Make sure the dataset's source file (and, with ``extras``, its attribute/item files) is
    under ``data_dir``; return their paths. Raises :class:`DataError` as :func:`ensure_file`."""
    spec = cfg if isinstance(cfg, DatasetSpec) else DatasetSpec.from_mapping(cfg)
    files = [(spec.path, spec.url, spec.archive_member, spec.sha256)]
    if extras and spec.attributes_path:
        files.append((spec.attributes_path, spec.attributes_url, None, None))
    if extras and spec.item_path:
        files.append((spec.item_path, spec.item_url, spec.item_archive_member, None))
    return [ensure_file(Path(data_dir), path, url, member, sha256=sha) for path, url, member, sha in files]


def refuse_shared(data_dir: Path) -> None:
    """Raise :class:`DataError` when ``data_dir`` is (inside) a shared, read-only data folder."""
    resolved = Path(data_dir).resolve()
    for folder in shared_data_dirs():
        if resolved.is_relative_to(folder.resolve()):
            raise DataError(
                f"the data directory {data_dir} lies inside the shared data folder {folder}, "
                "which seqrec never writes to. Point the data directory to a project folder "
                "(e.g. data/); the files are copied there from the shared folder automatically."
            )


def _copy_to(target: Path, stream: IO[bytes]) -> None:
    """Copy ``stream`` into ``target`` atomically (all of it or nothing)."""
    atomic_write(target, lambda handle: shutil.copyfileobj(stream, handle, length=1 << 20))


def _download(url: str, dest: Path, timeout: float, wanted: Path) -> None:
    """Download ``url`` to ``dest``; ``wanted`` is the file the user needs (for the message)."""
    request = urllib.request.Request(url, headers={"User-Agent": "seqrec-fetch"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            _copy_to(dest, response)
    except (urllib.error.URLError, OSError, ValueError) as err:
        reason = getattr(err, "reason", None) or err
        raise DataError(
            f"cannot download {wanted.name} from {url} ({reason}). If this machine is offline, "
            f"copy the file to {wanted} by hand, or set SEQREC_SHARED_DATA to a folder with the "
            "same layout as the data directory that holds it (e.g. s3rec/LastFM.txt), then run the "
            "same command again."
        ) from err


def _extract(archive: Path, member: str, target: Path, url: str) -> None:
    try:
        with zipfile.ZipFile(archive) as zf:
            names = zf.namelist()
            if member not in names:
                matches = [n for n in names if Path(n).name == Path(member).name]
                if len(matches) != 1:
                    raise DataError(
                        f"{archive} (from {url}) has no member '{member}'; it holds "
                        f"{', '.join(names[:20])}. Fix archive_member in the dataset config."
                    )
                member = matches[0]
            with zf.open(member) as src:
                _copy_to(target, src)
    except zipfile.BadZipFile as err:
        archive.unlink(missing_ok=True)  # a partial download: fetch it again next time
        raise DataError(
            f"{archive} (from {url}) is not a valid zip file ({err}); it was deleted; run the same command again."
        ) from err


def load_dataset_configs(names: list[str] | None = None) -> dict[str, Mapping[str, Any]]:
    """The dataset configs of ``conf/dataset/*.yaml`` by file stem (all, or the given names).

    Raises:
        DataError: a name has no config file (the message lists the available ones).
    """
    from omegaconf import OmegaConf

    available = sorted(p.stem for p in CONF_DIR.glob("*.yaml"))
    for name in names or []:
        if name not in available:
            raise DataError(
                f"unknown dataset '{name}': there is no {CONF_DIR / name}.yaml. Available: {', '.join(available)}."
            )
    configs = {name: OmegaConf.load(CONF_DIR / f"{name}.yaml") for name in (names or available)}
    # without names: every dataset with a fixed source (not the `custom` template, path: ???)
    return {name: cfg for name, cfg in configs.items() if names or not OmegaConf.is_missing(cfg, "path")}


def main(argv: list[str] | None = None) -> int:
    """Command line entry point; returns the exit status (1 on a :class:`DataError`)."""
    parser = argparse.ArgumentParser(
        prog="python -m seqrec.data.fetch", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("names", nargs="*", help="dataset names (conf/dataset/<name>.yaml)")
    parser.add_argument("--all", action="store_true", help="fetch every configured dataset")
    parser.add_argument(
        "--data-dir", type=Path, default=DEFAULT_DATA_DIR, help=f"where to put the files (default: {DEFAULT_DATA_DIR})"
    )
    args = parser.parse_args(argv)
    if not args.names and not args.all:
        parser.error("name at least one dataset, or use --all")
    logging.basicConfig(level=logging.INFO, format="%(message)s")

    def body() -> None:
        for name, cfg in load_dataset_configs(None if args.all else args.names).items():
            for path in fetch_dataset(cfg, args.data_dir):
                print(f"{name}: {path}")

    from seqrec.runs.cli import run_main  # the command line's error handling; the data layer needs no more of it

    return run_main(body)


if __name__ == "__main__":
    sys.exit(main())
