"""Delimited text tables with a header row (CSV, TSV, RecBole atomic files): the columns a reader
asks for, as stripped strings with the 1-based line number of every row.

What this module knows is the text: separators, quotes (a quoted field may span lines), Excel's
``sep=`` line, RecBole's ``name:type`` headers, repeated header lines, blank rows. What a column
means (user, item, time, rating) is the caller's (:mod:`seqrec.data.readers`). Every problem is a
:class:`~seqrec.errors.DataError` naming the file, the line and the option to change.
"""

from __future__ import annotations

import csv
import difflib
import io
import logging
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from seqrec.data.spec import _SEP_ESCAPES
from seqrec.data.text import read_text
from seqrec.data.timestamps import _DECIMAL_RE
from seqrec.errors import DataError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Table:
    """The wanted columns of a delimited file (M data rows, header and skipped lines excluded).

    Attributes:
        columns: column name (as asked for) -> ``[M]`` object array of stripped strings.
        types: column name -> its RecBole type from a ``name:type`` header (``token``,
            ``token_seq``, ``float``, ``float_seq``), or ``""`` when the header gives none.
        lines: ``[M]`` int64, 1-based line number each row starts on.
        header_line: 1-based line number of the header.
    """

    columns: dict[str, np.ndarray]
    types: dict[str, str]
    lines: np.ndarray
    header_line: int


# long: one vectorised parse with a line-numbered error paragraph per malformed-input kind
def read_table(path: Path, wanted: list[tuple[str, str]], sep: str, quoted: bool) -> Table:
    """Read the columns ``wanted`` (``(option, column name)`` pairs, the option named in error
    messages, e.g. ``("user_col", "user_id")``) from a file whose first line is a header.

    ``quoted``: CSV quoting (``"a,b"`` is one field, ``""`` a quote, a quoted field may span
    lines); False splits every line at ``sep`` (RecBole atomic files). Blank lines and rows of
    separators only are skipped; so are lines repeating the header (files joined with their
    headers), with one warning naming them. A file with a header and no data rows gives M = 0.

    Raises:
        DataError: the file is empty or not readable text; Excel's ``sep=`` line names another
            separator; a wanted column is missing (the message gives the likely cause: JSON, a
            comment line, a wrong separator, no header, a close name) or named twice; a row has
            a wrong number of fields; a quote is never closed.
    """
    path = Path(path)
    names = [col for _, col in wanted]
    raw = pd.Series(read_text(path).split("\n"), dtype=object)
    numbers = np.arange(1, len(raw) + 1, dtype=np.int64)
    if quoted and len(sep) == 1 and (raw.str.count('"') % 2 == 1).any():
        raw, numbers = _join_quoted_lines(raw.tolist(), sep, path)
    # blank lines, and rows of separators only (the ',,,' rows spreadsheets export) are skipped
    keep = raw.str.replace(sep, "", regex=False).str.strip().to_numpy() != ""
    raw, numbers = raw[keep].reset_index(drop=True), numbers[keep]
    if len(raw) == 0:
        raise DataError(
            f"{path} is empty: it needs a header row naming the columns "
            f"({', '.join(names)}) and one row per interaction."
        )
    # Excel's "sep=;" line names the separator above the header (Excel writes and reads it).
    excel = re.fullmatch(r"sep=(.+)", raw[0].strip(" "), flags=re.IGNORECASE)
    if excel and len(raw) > 1:
        if _SEP_ESCAPES.get(excel.group(1), excel.group(1)) != sep:
            raise DataError(
                f"{path}, line {numbers[0]}: the file says its separator is {excel.group(1)!r} "
                f"(Excel's sep= line), but dataset.sep is {sep!r}. Set dataset.sep="
                f"{_SEPARATORS.get(excel.group(1), repr(excel.group(1)))}."
            )
        raw, numbers = raw[1:].reset_index(drop=True), numbers[1:]
    typed = _split_line(raw[0], sep, quoted)
    header = [column_name(name) for name in typed]
    header_line = int(numbers[0])
    first_line = raw[0]
    raw, numbers = raw[1:].reset_index(drop=True), numbers[1:]
    # Files joined with their headers (`cat part-*.csv`; Spark and BigQuery write one header per
    # shard) repeat the header line: it is no interaction (with time_col null it became one).
    again = (raw.str.strip() == first_line.strip()).to_numpy(dtype=bool)
    if again.any():
        log.warning(
            "%s: skipped %d line(s) that repeat the header (line %d): line(s) %s%s; the file looks "
            "like several files joined with their headers",
            path,
            int(again.sum()),
            header_line,
            ", ".join(map(str, numbers[again][:5])),
            ", …" if again.sum() > 5 else "",
        )
        raw, numbers = raw[~again].reset_index(drop=True), numbers[~again]

    missing = [col for col in names if column_name(col) not in header]
    if missing and first_line.lstrip().startswith(("{", "[")):
        raise DataError(
            f"{path}, line {header_line}: the file looks like JSON (as Amazon and Yelp review "
            "dumps are), which seqrec does not read. Convert it to CSV first, e.g. `python -c "
            f"\"import pandas as pd; pd.read_json('{path}', lines=True).to_csv('{path}.csv', "
            'index=False)"`, and pass the .csv file with the names of its user, item and time '
            "columns."
        )
    if missing and first_line.lstrip().startswith(("#", "%")):
        bare = [column_name(name) for name in _split_line(first_line.lstrip(" #%"), sep, quoted)]
        if all(column_name(col) in bare for col in names):  # "# user_id,item_id": a marked header
            raise DataError(
                f"{path}, line {header_line}: the header starts with "
                f"{first_line.lstrip()[0]!r}, so its first column is named {header[0]!r}. "
                f"Delete the {first_line.lstrip()[0]!r} at the start of line {header_line}."
            )
        raise DataError(
            f"{path}, line {header_line}: {first_line.strip()[:60]!r} looks like a comment line "
            "(as SNAP and Matrix Market files begin), but seqrec reads the first line as the "
            f"header naming the columns ({', '.join(names)}). Delete the comment lines above "
            f"the header, e.g. `grep -v '^[#%]' {path} > clean{''.join(path.suffixes)}`."
        )
    if missing:
        raise DataError(
            f"{path}: column(s) {', '.join(missing)} not found; the header (line "
            f"{header_line}) has {', '.join(header)}. "
            + _header_hint(
                path,
                first_line,
                header,
                [(option, col) for option, col in wanted if col in missing],
                sep,
            )
        )
    repeated = [col for col in names if header.count(column_name(col)) > 1]
    if repeated:
        raise DataError(
            f"{path}: the header (line {header_line}) names column '{repeated[0]}' more than "
            "once, so it is unclear which one to read. Rename or delete the duplicate column."
        )
    fields = _split_fields(raw, numbers, len(header), sep, quoted, path)
    return Table(
        columns={col: fields[header.index(column_name(col))] for col in names},
        types={col: typed[header.index(column_name(col))].partition(":")[2].strip() for col in names},
        lines=numbers,
        header_line=header_line,
    )


_SEPARATORS = {"\t": "'\\t'", ",": "','", ";": "';'", "|": "'|'", "::": "'::'", " ": "' '"}


def _header_hint(path: Path, line: str, header: list[str], missing: list[tuple[str, str]], sep: str) -> str:
    """How to fix a header without the wanted columns: the likely cause first."""
    if len(header) == 1:
        found = [shown for other, shown in _SEPARATORS.items() if other != sep and other in line]
        if found:
            return (
                f"Line {line!r} is one field with sep={sep!r}; the file seems to be "
                f"separated by {found[0]}: set dataset.sep={found[0]}."
            )
    if any(re.fullmatch(_DECIMAL_RE, name) for name in header):
        guess = {2: ["user_id", "item_id"], 3: ["user_id", "item_id", "timestamp"]}.get(
            len(header), ["user_id", "item_id", "rating", "timestamp"]
        )
        names = sep.join(guess[: len(header)] + [f"col{k}" for k in range(5, len(header) + 1)])
        return (
            "That line looks like data, not a header: the file has no header row (like "
            "MovieLens ratings.dat or Amazon's ratings-only CSVs). Add one naming the columns "
            f"as the first line, e.g. `sed -i '1i {names}' {path}`, then set user_col / "
            "item_col / time_col to those names."
        )
    close = []
    lower = {name.lower().replace("_", ""): name for name in header}
    for option, col in missing:
        match = lower.get(column_name(col).lower().replace("_", ""))
        match = match or next(iter(difflib.get_close_matches(column_name(col), header, 1)), None)
        if match:
            close.append(f"dataset.{option}={match}")
    guess = f" (closest: {' '.join(close)})" if close else ""
    options = " / ".join(f"dataset.{option}" for option, _ in missing)
    return (
        f"Set {options} to {'a name' if len(missing) == 1 else 'names'} from the header{guess}"
        + ("; time_col=null means the file order is the time order" if "time_col" in dict(missing) else "")
        + f". Or check the separator (sep={sep!r})."
    )


def column_name(name: str) -> str:
    """``user_id:token`` -> ``user_id`` (RecBole's typed header: token, token_seq, float,
    float_seq); stray spaces removed. Other colons are part of the name, so a whole
    ``user_id::item_id`` header read with the wrong separator is shown as it is."""
    match = re.fullmatch(r"(.*?):\s*(?:token|token_seq|float|float_seq)", name.strip())
    return (match.group(1) if match else name).strip()


def _join_quoted_lines(lines: list[str], sep: str, path: Path) -> tuple[pd.Series, np.ndarray]:
    """Join the lines of each CSV record whose quoted field spans line breaks (review texts).

    Returns:
        ``[R]`` record texts (line breaks inside quotes kept) and ``[R]`` int64 1-based number of
        the line each record starts on.

    Raises:
        DataError: a quoted field is never closed or is followed by text (line named).
    """
    # Only files with an odd number of quotes on some line come here: the csv module reads them
    # record by record, which is exact but slower than the vectorised split.
    reader = csv.reader(io.StringIO("\n".join(lines)), delimiter=sep, strict=True)
    records, starts, end = [], [], 0
    try:
        for _ in reader:
            start, end = end + 1, reader.line_num
            records.append("\n".join(lines[start - 1 : end]))
            starts.append(start)
    except csv.Error as err:
        raise DataError(
            f"{path}, line {end + 1}: broken quoting ({err}). A field that starts with a double "
            "quote must end with one (it may span lines), and a quote inside it is written "
            'twice (""); fix the quotes from this line on.'
        ) from err
    return pd.Series(records, dtype=object), np.array(starts, dtype=np.int64)


def _split_line(line: str, sep: str, quoted: bool) -> list[str]:
    """One line's fields: CSV quoting when ``quoted`` and ``sep`` is one character."""
    if quoted:
        return next(csv.reader([line], delimiter=sep)) if len(sep) == 1 else line.split(sep)
    return line.split(sep)


def _split_fields(
    raw: pd.Series, numbers: np.ndarray, n_fields: int, sep: str, quoted: bool, path: Path
) -> list[np.ndarray]:
    """Split data lines into ``n_fields`` stripped string columns, checking every field count."""
    is_quoted = np.zeros(len(raw), dtype=bool)
    if quoted:
        is_quoted = raw.str.contains('"', regex=False).to_numpy(dtype=bool)
    counts = raw.str.count(re.escape(sep)).to_numpy() + 1
    quoted_rows = np.flatnonzero(is_quoted)
    # Lines with quotes (rare) go through the csv module, which knows that "a,b" is one field.
    quoted_fields = [_split_line(raw[row], sep, True) for row in quoted_rows]
    counts[quoted_rows] = [len(f) for f in quoted_fields]
    bad = np.flatnonzero(counts != n_fields)
    if len(bad):
        row = int(bad[0])
        raise DataError(
            f"{path}, line {numbers[row]}: expected {n_fields} fields separated by {sep!r} (as in "
            f"the header), found {counts[row]}. Fix or delete the row; a field that contains the "
            "separator must be quoted (CSV) or the separator must be changed with `dataset.sep`."
        )
    table = np.empty((len(raw), n_fields), dtype=object)
    plain = ~is_quoted
    if plain.any():
        table[plain] = raw[plain].str.split(sep, expand=True, regex=False).to_numpy(dtype=object)
    for row, values in zip(quoted_rows, quoted_fields):
        table[row] = values
    return [pd.Series(table[:, j], dtype=object).str.strip().to_numpy(dtype=object) for j in range(n_fields)]


__all__ = ["Table", "column_name", "read_table"]
