"""Readers of interaction files: the S3-Rec ``<Name>.txt`` format, RecBole atomic ``.inter`` files
and CSV logs.

Every reader returns :class:`Interactions` in file order. Raw user and item ids stay string
tokens ("7" and "007" are different items, "0" and "NaN" are ordinary items), except in the
S3-Rec format, whose positive integer item ids are kept as item indices so that
``<Name>_item2attributes.json`` still matches (as in S3-Rec's ``datasets.py``). Timestamps become
an exact int64 sort key (never float64, which cannot tell 1609459200.1234567891 from
1609459200.1234567892). Every problem in a file is a :class:`~seqrec.errors.DataError` that names
the file and the 1-based line.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from seqrec.data.delimited import column_name, read_table
from seqrec.data.text import read_text
from seqrec.data.timestamps import parse_times
from seqrec.errors import DataError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Interactions:
    """One interaction file, row by row in file order (M rows).

    Attributes:
        users: ``[M]`` str, raw user tokens.
        items: ``[M]`` str, raw item tokens.
        times: ``[M]`` int64 sort key (equal keys = equal times, order preserved), or None when
            the file order is the chronological order.
        item_ids: ``[M]`` int64 item indices fixed by the file (S3-Rec format), else None.
        lines: ``[M]`` int64, 1-based line number of each row (for error messages).
        path: the file that was read.
        ratings: ``[M]`` float64 of the rating column when one was read, else None.
    """

    users: np.ndarray
    items: np.ndarray
    times: np.ndarray | None
    item_ids: np.ndarray | None
    lines: np.ndarray
    path: Path
    ratings: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.users)


_MAX_ID = int(np.iinfo(np.int64).max)


def read_s3rec(path: Path) -> Interactions:
    """Read an S3-Rec ``<Name>.txt`` file: one user per line, ``user_id item_id item_id ...``.

    Items are in chronological order. Blank lines, a UTF-8 BOM, CRLF line ends and repeated
    whitespace are tolerated; a line with a user id and no items is skipped with one warning
    naming the first such lines (as RecBole's and S3-Rec's readers skip it).

    Raises:
        DataError: a token is not a positive integer (0 is padding) or is beyond int64, or a
            user id appears twice — the message names the file and the line.
    """
    path = Path(path)
    users: list[str] = []
    items: list[str] = []
    lines: list[int] = []
    seen: dict[int, int] = {}
    empty: list[str] = []
    for number, line in enumerate(read_text(path).split("\n"), start=1):
        tokens = line.split()
        if not tokens:
            continue
        _check_s3rec_ids(tokens, number, path)
        user = int(tokens[0])
        if len(tokens) == 1:  # a user without interactions: nothing to train or evaluate
            empty.append(f"line {number} (user {tokens[0]})")
            continue
        if user in seen:
            raise DataError(
                f"{path}, line {number}: user id {tokens[0]} was already given on line "
                f"{seen[user]}. The S3-Rec format has one line per user; merge the two lines "
                "(in chronological order) into one."
            )
        seen[user] = number
        users.extend([tokens[0]] * (len(tokens) - 1))
        items.extend(tokens[1:])
        lines.extend([number] * (len(tokens) - 1))
    if empty:
        log.warning(
            "%s: skipped %d user line(s) with no items: %s%s",
            path,
            len(empty),
            ", ".join(empty[:5]),
            ", …" if len(empty) > 5 else "",
        )
    item_ids = np.array(items, dtype=np.int64) if items else np.zeros(0, np.int64)
    return Interactions(
        users=np.array(users, dtype=str),
        items=np.array(items, dtype=str),
        times=None,
        item_ids=item_ids,
        lines=np.array(lines, dtype=np.int64),
        path=path,
    )


def _check_s3rec_ids(tokens: list[str], number: int, path: Path) -> None:
    """Raise DataError unless every token of line ``number`` is an id in 1..int64 max."""
    for token in tokens:
        if not (token.isascii() and token.isdigit()) or int(token) == 0:
            raise DataError(
                f"{path}, line {number}: '{token}' is not a positive integer id. In the "
                "S3-Rec format every line is 'user_id item_id item_id ...' with ids >= 1 "
                "(0 is the padding index); fix or remove the line, or use format: csv/atomic "
                "for string ids."
            )
        if int(token) > _MAX_ID:  # item ids become int64 indices: a hash-like id would overflow
            raise DataError(
                f"{path}, line {number}: id {token} is larger than {_MAX_ID} (the largest "
                "int64), so it cannot be an item index of the S3-Rec format. Re-number the "
                "ids 1..N, or read the log with format: csv/atomic, which keeps ids as strings."
            )


def read_atomic(
    path: Path,
    user_col: str = "user_id",
    item_col: str = "item_id",
    time_col: str | None = "timestamp",
    sep: str = "\t",
    rating_col: str | None = None,
) -> Interactions:
    """Read a RecBole atomic file (``.inter``): tab separated, header ``name:type`` per column.

    Columns may be named with or without their type (``user_id`` or ``user_id:token``). Fields
    are not quoted. See :func:`read_csv` for the rest (tokens, timestamps, errors); a user or
    item column typed ``token_seq`` (a list per field) is a :class:`DataError` in both.
    """
    return _read_delimited(path, user_col, item_col, time_col, sep, quoted=False, rating_col=rating_col)


def read_csv(
    path: Path,
    user_col: str = "user_id",
    item_col: str = "item_id",
    time_col: str | None = "timestamp",
    sep: str = ",",
    rating_col: str | None = None,
) -> Interactions:
    """Read a delimited log with a header row naming the columns (double quotes allowed; a
    quoted field may span lines, as review texts do).

    Tokens are stripped of surrounding spaces and kept as strings. Excel's ``sep=,`` line above
    the header is skipped when it names ``sep`` (else an error says which sep to set). Lines
    that repeat the header (files joined with their headers) are skipped with one warning
    naming them. ``time_col`` None keeps the file order as the chronological order. Integer
    timestamps become int64 exactly, decimal ones an exact int64 key (scaled by 10^fraction
    digits, or their rank when that would overflow), ISO date-times nanoseconds since 1970.
    ``rating_col`` (optional) is read as numbers into :attr:`Interactions.ratings`.

    Raises:
        DataError: a named column is missing or named twice (the message lists the columns
            found and the likely cause), there are no data rows, a row has a wrong number of
            fields, a quote is not closed, a user/item field is empty or so long that the id
            table would need over 2 GiB, or a timestamp is empty
            or cannot be parsed (file, line and value named); or the file is not readable text
            (see :func:`seqrec.data.text.read_text`).
    """
    return _read_delimited(path, user_col, item_col, time_col, sep, quoted=True, rating_col=rating_col)


def _read_delimited(
    path: Path,
    user_col: str,
    item_col: str,
    time_col: str | None,
    sep: str,
    quoted: bool,
    rating_col: str | None = None,
) -> Interactions:
    path = Path(path)
    options = (("user_col", user_col), ("item_col", item_col), ("time_col", time_col), ("rating_col", rating_col))
    table = read_table(path, [(option, col) for option, col in options if col is not None], sep, quoted)
    columns, numbers = table.columns, table.lines
    for option, col in (("item_col", item_col), ("user_col", user_col)):
        kind = table.types[col]
        if kind.endswith("_seq"):  # RecBole's list fields: several values in one field
            raise DataError(
                f"{path}: the header (line {table.header_line}) types column '{column_name(col)}' "
                f"({option}) as {kind}, a list of values in one field (like the item_id_list of "
                "RecBole's sequential benchmark files), but seqrec reads one interaction per row: "
                "a single user and item. Give the plain interaction file (user, item, timestamp "
                f"per row), or set dataset.{option} to a column of type token."
            )
    if len(numbers) == 0:
        raise DataError(
            f"{path} has a header (line {table.header_line}) but no data rows: it needs one "
            "row per interaction. Check that it is the right file."
        )
    for col in (user_col, item_col):
        empty = columns[col] == ""
        if empty.any():
            row = int(np.flatnonzero(empty)[0])
            raise DataError(
                f"{path}, line {numbers[row]}: the '{col}' field is empty. Every row "
                "needs a user and an item; fill it in or delete the row."
            )
    for option, col in (("user_col", user_col), ("item_col", item_col)):
        _check_id_width(columns[col], numbers, path, option, col)
    times = None if time_col is None else parse_times(columns[time_col], numbers, path, time_col)
    ratings = None if rating_col is None else _parse_ratings(columns[rating_col], numbers, path, rating_col)
    return Interactions(
        ratings=ratings,
        users=columns[user_col].astype(str),
        items=columns[item_col].astype(str),
        times=times,
        item_ids=None,
        lines=numbers,
        path=path,
    )


def _parse_ratings(values: np.ndarray, numbers: np.ndarray, path: Path, col: str) -> np.ndarray:
    """``[M]`` float64 ratings; an empty or non-numeric field is a DataError naming its line."""
    parsed = pd.to_numeric(pd.Series(values, dtype=object), errors="coerce").to_numpy(dtype=np.float64)
    bad = np.isnan(parsed)
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise DataError(
            f"{path}, line {numbers[row]}: the '{col}' field (dataset.rating_col) is "
            f"{values[row]!r}, not a number ({int(bad.sum())} row(s) like it). Fix or delete those rows, "
            "or set dataset.rating_col and dataset.min_rating to null to keep every row."
        )
    return parsed


# Ids become a fixed-width numpy string array: rows x longest id x 4 bytes.
_MAX_ID_TABLE_BYTES = 2 << 30


def _check_id_width(values: np.ndarray, numbers: np.ndarray, path: Path, option: str, col: str) -> None:
    """Refuse an id column whose fixed-width table would need more than 2 GiB.

    ``values``: ``[M]`` object strings; one long field (a review text read as the item column, a
    quote gone astray) makes every row as wide as it, so 1M rows with one 50,000-character id
    would ask for 200 GB and end in a MemoryError or the OOM killer.

    Raises:
        DataError: naming the longest field's line, its length, the option and the fix.
    """
    lengths = pd.Series(values, dtype=object).str.len().to_numpy()
    row = int(lengths.argmax())
    need = len(values) * int(lengths[row]) * 4
    if need > _MAX_ID_TABLE_BYTES:
        raise DataError(
            f"{path}, line {numbers[row]}: the '{col}' field is {lengths[row]:,} characters long "
            f"({str(values[row])[:40]!r}…); ids are stored at the width of the longest, which "
            f"for {len(values):,} rows needs {need / 2**30:.0f} GiB. Check that dataset.{option} "
            "names an id column (not a text column) and that the quotes of this line are right, or "
            "shorten the ids (e.g. replace them with a hash)."
        )


__all__ = ["Interactions", "read_s3rec", "read_atomic", "read_csv", "parse_times"]
