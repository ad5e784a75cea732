"""Files of ``python -m seqrec.recommend``: sequences and users in, recommendations out.

Sequences (``--sequences``), raw ids as strings:

* CSV (``.csv``, ``.tsv``): a header with ``item_id`` and ``sequence_id`` (or ``user_id``), one
  row per interaction; rows of one sequence need not be adjacent. With a ``timestamp`` column
  each sequence is put in time order (ties keep file order), parsed as the training reader
  parses it (:func:`seqrec.data.timestamps.parse_times`); without one, file order is the order,
  oldest first::

      sequence_id,item_id
      alice,2
      alice,15

* JSON Lines (``.jsonl``, ``.ndjson``, ``.json``): one sequence per line, ``{"sequence_id": "alice",
  "items": ["2", "15"]}`` or a bare list ``["2", "15"]`` (its id: the line number).

Users (``--users``): one raw user id per line (a first line ``user_id`` is a header), or a CSV
with a ``user_id`` column such as a run's ``per_user_test.csv``.

Recommendations (``--out``): ``.csv`` or ``.jsonl``, one row per (user or sequence, rank), written
atomically (:mod:`seqrec.atomic`), so a failed command leaves no file.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import numpy as np
import pandas as pd

from seqrec.atomic import atomic_write
from seqrec.data.text import read_text
from seqrec.data.timestamps import parse_times
from seqrec.errors import DataError, SeqrecError

CSV_SUFFIXES = {".csv": ",", ".tsv": "\t"}
JSONL_SUFFIXES = {".jsonl", ".ndjson", ".json"}
OUT_SUFFIXES = {".csv", ".jsonl"}


def _fix(path: Path) -> str:
    return (
        f"Fix the file '{path}': CSV needs a header with sequence_id (or user_id) and item_id, one row "
        'per interaction; JSON Lines needs one sequence per line, {"sequence_id": "s1", "items": '
        '["i1", "i2"]} or ["i1", "i2"].'
    )


def read_sequences(path: str | Path) -> dict[str, list[str]]:
    """``{sequence_id: [raw item ids, oldest first]}`` from a CSV or JSON Lines file (see module).

    Raises:
        DataError: a missing, empty or malformed file, naming the line and the fix.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"--sequences '{path}' does not exist or is not a file. {_fix(path)}")
    suffix = path.suffix.lower()
    if suffix in CSV_SUFFIXES:
        return _read_csv(path, CSV_SUFFIXES[suffix])
    if suffix in JSONL_SUFFIXES:
        return _read_jsonl(path)
    raise DataError(f"--sequences '{path}': unknown file type '{suffix}'; use .csv, .tsv or .jsonl. {_fix(path)}")


def _read_csv(path: Path, sep: str) -> dict[str, list[str]]:
    text = read_text(path)  # the training reader's decoding: BOMs, UTF-16, gzip; bad bytes named by line
    try:
        # blank lines are kept as rows here and dropped below, so row r stays file line r + 2
        frame = pd.read_csv(io.StringIO(text), sep=sep, dtype=str, keep_default_na=False, skip_blank_lines=False)
    except pd.errors.EmptyDataError:
        raise DataError(f"--sequences '{path}' is empty. {_fix(path)}") from None
    except pd.errors.ParserError as exc:
        raise DataError(f"--sequences '{path}' is not a readable CSV ({str(exc).strip()}). {_fix(path)}") from None
    # spaces around fields ("s1, i1"), as the training reader of interaction files drops them
    frame = frame.rename(columns=lambda c: str(c).strip()).apply(lambda col: col.str.strip())
    frame.index = np.arange(len(frame)) + 2  # 1-based file lines, after the header
    frame = frame[(frame != "").any(axis=1)]
    if frame.empty:
        raise DataError(f"--sequences '{path}' has a header but no rows. {_fix(path)}")
    id_col = next((c for c in ("sequence_id", "user_id") if c in frame.columns), None)
    if id_col is None or "item_id" not in frame.columns:
        raise DataError(
            f"--sequences '{path}': the header names {', '.join(map(str, frame.columns))}, "
            f"not sequence_id (or user_id) and item_id. {_fix(path)}"
        )
    blank = (frame[id_col] == "") | (frame["item_id"] == "")
    if blank.any():
        line = int(frame.index[blank.to_numpy()][0])
        raise DataError(f"--sequences '{path}', line {line}: {id_col} or item_id is empty. {_fix(path)}")
    if "timestamp" in frame.columns:
        lines = frame.index.to_numpy()
        times = parse_times(frame["timestamp"].to_numpy(), lines, path, no_time="drop the timestamp column")
        by_time = np.argsort(times, kind="stable")
        # then by sequence, in the file's order of first appearance: only the items move
        first_seen = pd.factorize(frame[id_col])[0][by_time]
        frame = frame.iloc[by_time[np.argsort(first_seen, kind="stable")]]
    return {key: list(group) for key, group in frame.groupby(id_col, sort=False)["item_id"]}


def _item_token(value, path: Path, line: int) -> str:
    if isinstance(value, str) or (isinstance(value, int) and not isinstance(value, bool)):
        return str(value)
    raise DataError(
        f"--sequences '{path}', line {line}: item {json.dumps(value)} is not an id (a string "
        f"or a whole number). {_fix(path)}"
    )


def _read_jsonl(path: Path) -> dict[str, list[str]]:
    sequences: dict[str, list[str]] = {}
    first_line: dict[str, int] = {}
    try:
        lines = path.read_text(encoding="utf-8-sig").splitlines()
    except UnicodeDecodeError as exc:
        raise DataError(f"--sequences '{path}' is not UTF-8 text ({exc}). {_fix(path)}") from None
    for number, text in enumerate(lines, start=1):
        if not text.strip():
            continue
        try:
            record = json.loads(text)
        except json.JSONDecodeError as exc:
            raise DataError(
                f"--sequences '{path}', line {number}: not valid JSON ({exc.msg} at column {exc.colno}). {_fix(path)}"
            ) from None
        if isinstance(record, dict):
            if not isinstance(record.get("items"), list):
                raise DataError(f"--sequences '{path}', line {number}: the object has no \"items\" list. {_fix(path)}")
            key, items = record.get("sequence_id", str(number)), record["items"]
        elif isinstance(record, list):
            key, items = str(number), record
        else:
            raise DataError(
                f"--sequences '{path}', line {number}: a {type(record).__name__}, not an object or a list. {_fix(path)}"
            )
        key = _item_token(key, path, number)
        if key in sequences:
            raise DataError(
                f"--sequences '{path}', line {number}: sequence_id {key!r} was already used on "
                f"line {first_line[key]}; give every sequence its own id."
            )
        sequences[key] = [_item_token(item, path, number) for item in items]
        first_line[key] = number
    if not sequences:
        raise DataError(f"--sequences '{path}' holds no sequence. {_fix(path)}")
    return sequences


def read_users(path: str | Path) -> list[str]:
    """Raw user ids, one per line (optional header ``user_id``) or a CSV's ``user_id`` column, from a
    file, a pipe, or standard input (``-``).

    Raises:
        DataError: a missing or empty file, or a CSV without a ``user_id`` column.
    """
    path = Path("/dev/stdin") if str(path) == "-" else Path(path)
    if not path.exists() or path.is_dir():  # a pipe (<(...), /dev/stdin) is read like a file
        raise DataError(
            f"--users '{path}' does not exist or is a folder; give 'all', a file with one raw user id per "
            "line, or - to read them from standard input."
        )
    text = read_text(path)  # as training reads files: BOMs, UTF-16, gzip; bad bytes named by line
    # CSV rules for the one-id-per-line form too: a quoted id ("u,1") is the text inside the quotes
    rows = [(n, [f.strip() for f in row]) for n, row in enumerate(csv.reader(io.StringIO(text)), 1)]
    rows = [(n, row) for n, row in rows if any(row)]
    if rows and len(rows[0][1]) == 1:
        several = next((n for n, row in rows if len(row) > 1), None)
        if several is not None:
            raise DataError(
                f"--users '{path}', line {several}: several comma-separated fields, but line "
                f"{rows[0][0]} has one. Give one user id per line (quote an id that holds a comma: "
                '"u,1"), or a CSV with a user_id column.'
            )
    lines = [row[0] for _, row in rows]
    if rows and len(rows[0][1]) > 1:
        try:
            frame = pd.read_csv(io.StringIO(text), dtype=str, keep_default_na=False)
        except pd.errors.ParserError as exc:
            raise DataError(f"--users '{path}' is not a readable CSV ({str(exc).strip()}).") from None
        if "user_id" not in frame.columns:
            raise DataError(
                f"--users '{path}' looks like a CSV but has no user_id column (it has "
                f"{', '.join(map(str, frame.columns))}); give a user_id column or one id per line."
            )
        lines = [u for u in frame["user_id"] if u]
    elif lines and lines[0] == "user_id":
        lines = lines[1:]
    if not lines:
        raise DataError(f"--users '{path}' holds no user id; give one raw user id per line.")
    return lines


def check_out_path(path: str | Path) -> Path:
    """``--out`` must end in .csv or .jsonl (checked before any work is done).

    Raises:
        SeqrecError: another suffix, or a folder.
    """
    path = Path(path)
    if path.suffix.lower() not in OUT_SUFFIXES or path.is_dir():
        raise SeqrecError(f"--out '{path}' must be a file ending in .csv or .jsonl (e.g. --out recs.csv).")
    return path


def write_recommendations(frame: pd.DataFrame, path: str | Path) -> Path:
    """Write the long-format frame as CSV or JSON Lines (by suffix), atomically."""
    path = check_out_path(path)
    if path.suffix.lower() == ".csv":
        return atomic_write(path, frame.to_csv(index=False))
    text = frame.to_json(orient="records", lines=True, force_ascii=False)
    return atomic_write(path, text if text.endswith("\n") or not text else text + "\n")
