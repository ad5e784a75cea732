"""Result folders: the light copy of a finished run that the repository keeps under ``results/``.

A run folder holds checkpoints (``best.pt``, ``last.pt``) of megabytes and a ``per_user_test.csv``
of a few megabytes; the report needs neither the checkpoints nor the six metric columns, which
follow from the rank. A *result folder* keeps what ``python -m seqrec.report`` reads, so Table 2,
Improve and the paired t-tests rebuild on any machine without training:

===========================  ==============================================================
``config.yaml``              the run's resolved config (``output_dir`` made relative to the
                             working directory when it lies below it)
``metrics.json``             unchanged
``epochs.csv``               unchanged (RQ2 curves)
``per_user_test.csv.gz``     ``user_id,rank`` of every test user, gzip with a fixed header
                             (mtime 0) so the same run exports to the same bytes
``result.json``              ``{"format": RESULT_FORMAT, "files": {name: sha256}}``, written last
===========================  ==============================================================

Layout: ``<root>/<dataset>/<model>-<loss>/seed<seed>/`` (names from ``metrics.json``).

The per-user metrics are recomputed from the ranks with :func:`seqrec.evaluation.metrics_from_ranks`,
the function that produced ``metrics.json``, so a result folder gives exactly the run's numbers.
A folder written in another format is refused by name (:func:`check_result_dir`) instead of
being read with the wrong meaning.

    python -m seqrec.report.export outputs/table2 --into results/table2
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
from pathlib import Path

import pandas as pd
from omegaconf import OmegaConf

from seqrec.atomic import atomic_write
from seqrec.errors import SeqrecError

RESULT_FORMAT = 1
RESULT_FILE = "result.json"
RANKS_FILE = "per_user_test.csv.gz"
COPIED = ("config.yaml", "metrics.json", "epochs.csv")
# per-user files: raw user ids are strings, and "NaN", "null" or "NA" is a user like any other
# (pandas would read those as missing, and an export would write them as empty ids)
USER_IDS = {"dtype": {"user_id": str}, "keep_default_na": False}


def is_result_dir(path: str | os.PathLike) -> bool:
    """Whether ``path`` is a result folder (any format): it has ``result.json`` or compressed ranks."""
    path = Path(path)
    return (path / RESULT_FILE).is_file() or (path / RANKS_FILE).is_file()


def check_result_dir(path: str | os.PathLike) -> None:
    """Refuse a result folder that this version cannot read with the right meaning.

    Raises:
        SeqrecError: ``result.json`` is missing (a folder of an older, unversioned format), cannot
            be parsed, names another format, or a listed file is missing or differs from its
            sha256 (edited or cut short). The message names the folder and how to rebuild it.
    """
    path = Path(path)
    rebuild = (
        "Rebuild it from its run folder with `python -m seqrec.report.export <runs> --into "
        "<results>`, or read it with the seqrec version that wrote it (its commit is in metrics.json)."
    )
    meta_path = path / RESULT_FILE
    if not meta_path.is_file():
        raise SeqrecError(
            f"Result folder '{path}' has no {RESULT_FILE}: it was written in an older format "
            f"than this seqrec reads (format {RESULT_FORMAT}). {rebuild}"
        )
    try:
        meta = json.loads(meta_path.read_text())
        fmt, files = meta["format"], meta["files"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise SeqrecError(f"Cannot read '{meta_path}' ({exc}). {rebuild}") from exc
    if fmt != RESULT_FORMAT:
        raise SeqrecError(
            f"Result folder '{path}' is in format {fmt!r}; this seqrec reads format {RESULT_FORMAT}. {rebuild}"
        )
    for name, digest in files.items():
        try:
            actual = _sha256((path / name).read_bytes())
        except OSError as exc:
            raise SeqrecError(f"Result folder '{path}' lacks '{name}' ({exc.strerror}). {rebuild}") from exc
        if actual != digest:
            raise SeqrecError(
                f"'{path / name}' differs from the sha256 recorded in {RESULT_FILE}: it was "
                f"edited or cut short. Restore it (`git checkout -- {path / name}`) or rebuild it. {rebuild}"
            )


def read_ranks(path: str | os.PathLike) -> pd.DataFrame:
    """Per-user test metrics from a result folder's ``per_user_test.csv.gz``.

    Returns:
        DataFrame with ``user_id`` (str), ``rank`` and the six metrics of
        :func:`seqrec.evaluation.metrics_from_ranks` (float64), in file order.
    Raises:
        SeqrecError: unreadable file or no ``user_id``/``rank`` column.
    """
    import torch  # the report reads runs without torch elsewhere; only this path needs it

    from seqrec.evaluation import metrics_from_ranks

    try:
        df = pd.read_csv(path, **USER_IDS)
    except (OSError, ValueError, EOFError, pd.errors.ParserError) as exc:
        raise SeqrecError(f"Cannot read '{path}': {exc}. Restore it from git or rebuild the result folder.") from exc
    if not {"user_id", "rank"} <= set(df.columns):
        raise SeqrecError(f"'{path}' needs the columns user_id and rank; it has {', '.join(df.columns)}.")
    ranks = torch.tensor(df["rank"].to_numpy(dtype="int64"))
    for name, values in metrics_from_ranks(ranks).items():
        df[name] = values.numpy()
    return df


def result_dir_name(metrics: dict) -> Path:
    """``<dataset>/<model>-<loss>/seed<seed>`` of a run from its ``metrics.json`` content."""
    return Path(
        str(metrics["dataset"]).lower(),
        f"{str(metrics['model']).lower()}-{str(metrics['loss']).lower()}",
        f"seed{int(metrics['seed'])}",
    )


def export_run(
    run_dir: str | os.PathLike,
    into: str | os.PathLike,
    overwrite: bool = False,
    name: str | os.PathLike | None = None,
    dry_run: bool = False,
) -> tuple[Path, bool]:
    """Write the result folder of one finished run below ``into``.

    Args:
        run_dir: a finished run folder (has ``metrics.json``, ``per_user_test.csv``, ``epochs.csv``,
            ``config.yaml``).
        into: the results root, e.g. ``results/table2``.
        overwrite: replace an existing result folder whose files differ (a retrained run).
        name: the result folder below ``into``; default ``<dataset>/<model>-<loss>/seed<seed>``
            (:func:`result_dir_name`).
        dry_run: read and check everything, write nothing (the return value is what a real
            export would give).

    Returns:
        ``(result folder, changed)``: changed is False when the folder already held the same bytes.
    Raises:
        SeqrecError: the run is not finished or lacks a file; the destination holds a different
            result and ``overwrite`` is false (both folders named).
    """
    run_dir = Path(run_dir)
    try:
        metrics = json.loads((run_dir / "metrics.json").read_text())
        files = {name: (run_dir / name).read_bytes() for name in COPIED if name != "config.yaml"}
        files["config.yaml"] = _portable_config((run_dir / "config.yaml").read_text())
        per_user = pd.read_csv(run_dir / "per_user_test.csv", usecols=["user_id", "rank"], **USER_IDS)
    except (OSError, ValueError, KeyError) as exc:
        raise SeqrecError(
            f"Cannot export '{run_dir}': {exc}. Only finished runs (with metrics.json, "
            "config.yaml, epochs.csv and per_user_test.csv) can be exported."
        ) from exc
    files[RANKS_FILE] = _gzip(per_user.to_csv(index=False).encode())
    dest = Path(into) / (result_dir_name(metrics) if name is None else Path(name))
    meta = (
        json.dumps(
            {"format": RESULT_FORMAT, "files": {n: _sha256(b) for n, b in sorted(files.items())}},
            indent=1,
            sort_keys=True,
        )
        + "\n"
    )
    if (dest / RESULT_FILE).is_file() and (dest / RESULT_FILE).read_text() == meta:
        return dest, False
    if dest.exists() and any(dest.iterdir()) and not overwrite:
        raise SeqrecError(
            f"'{dest}' already holds a different result for this dataset, model, loss and seed "
            f"than the run '{run_dir}'. Pass --overwrite to replace it, or export into another folder."
        )
    if dry_run:
        return dest, True
    (dest / RESULT_FILE).unlink(missing_ok=True)  # the folder is incomplete until result.json is back
    for name, data in files.items():
        atomic_write(dest / name, data)
    atomic_write(dest / RESULT_FILE, meta)
    return dest, True


def export_runs(
    runs: str | os.PathLike, into: str | os.PathLike, overwrite: bool = False, keep_layout: bool = False
) -> list[tuple[Path, bool]]:
    """:func:`export_run` for every finished run below ``runs`` (folders with ``metrics.json``;
    result folders themselves are skipped). With ``keep_layout`` each result folder takes its run
    folder's path below ``runs`` (configurations beyond Table 2, e.g. ``lastfm/sasrec-cce-
    sequences-len200/seed42``, which ``<model>-<loss>`` alone would merge). Every run is read and
    checked before the first folder is written, so an error leaves ``into`` as it was. Raises
    SeqrecError as :func:`export_run` does, or when none is found."""
    found = sorted(p.parent for p in Path(runs).rglob("metrics.json") if not is_result_dir(p.parent))
    if not found:
        raise SeqrecError(
            f"No finished run under '{runs}' (no metrics.json outside result folders). "
            "Point it at a folder of run folders, e.g. outputs/table2."
        )
    runs = Path(runs)
    if keep_layout and runs in found:
        raise SeqrecError(
            f"'{runs}' is a run folder itself, so --keep-layout has no path below it to keep. Pass "
            "the sweep folder that holds it (e.g. outputs/leaderboard)."
        )
    names = {run: run.relative_to(runs) if keep_layout else None for run in found}
    sources: dict[Path, Path] = {}
    for run in found:  # every run checked before the first folder is written: all or nothing
        dest, _ = export_run(run, into, overwrite, names[run], dry_run=True)
        if dest in sources:
            raise SeqrecError(
                f"The runs '{sources[dest]}' and '{run}' would both be exported to '{dest}': they have "
                "the same dataset, model, loss and seed, so one would silently replace the other. Export "
                "them separately (into different folders), move or delete the one you do not want, or "
                "pass --keep-layout to keep each run's path below the folder."
            )
        sources[dest] = run
    return [export_run(run, into, overwrite, names[run]) for run in found]


def _portable_config(text: str) -> str:
    """The config with ``output_dir`` relative to the working directory when it lies below it,
    so a committed result names no path of the machine that trained it."""
    cfg = OmegaConf.create(text)
    out = cfg.get("output_dir")
    if isinstance(out, str) and os.path.isabs(out):
        try:
            cfg.output_dir = str(Path(out).relative_to(Path.cwd()))
        except ValueError:
            cfg.output_dir = Path(out).name
    return OmegaConf.to_yaml(cfg)


def _gzip(data: bytes) -> bytes:
    buffer = io.BytesIO()
    with gzip.GzipFile(fileobj=buffer, mode="wb", mtime=0, filename="") as handle:
        handle.write(data)
    return buffer.getvalue()


def _sha256(data: bytes | str) -> str:
    return hashlib.sha256(data.encode() if isinstance(data, str) else data).hexdigest()
