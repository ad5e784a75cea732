"""Timestamps of interaction logs as an exact int64 sort key (used by :mod:`seqrec.data.readers`).

Integers, decimals (``978300760.0``, ``9.78e8``, negative) and ISO date-times (with or without a
UTC offset, never mixed) become int64 keys whose order is the exact chronological order: never
float64, which cannot tell 1609459200.1234567891 from 1609459200.1234567892. A bad value is a
:class:`~seqrec.errors.DataError` naming the file and the 1-based line.
"""

from __future__ import annotations

import logging
import re
from decimal import Decimal
from pathlib import Path

import numpy as np
import pandas as pd

from seqrec.errors import DataError

log = logging.getLogger(__name__)

_INT_RE = r"[+-]?[0-9]+"
# 03/01/2014 or 3/1/14: US (month first) or European (day first), which no parser can tell apart
_SLASH_DATE_RE = r"[0-9]{1,2}[/.-][0-9]{1,2}[/.-][0-9]{2,4}\b"
NO_TIME = "set time_col: null"
# a digit outside 0-9 (full-width １, Arabic-Indic ٣, ...): Python's \d matches them, pandas cannot read them
_FOREIGN_DIGIT_RE = r"(?![0-9])\d"
# 978300760,5: a decimal comma (European exports with sep=';')
_DECIMAL_COMMA_RE = r"[+-]?[0-9]+,[0-9]+"
_DECIMAL_RE = r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?"
# UTC or GMT written as a word after a clock time; and any other zone name (CET, PST, ...).
_UTC_WORD_RE = r"(?<=[0-9])\s*(?:UTC|GMT)$"
_ZONE_NAME_RE = r"[0-9]\s*(?!AM$|PM$)([A-Z]{2,5})$"
# A date-time that ends in a time zone: a clock time, then Z or a UTC offset (+02, +0200, +02:00).
_TZ_RE = r"[0-9]:[0-9][0-9](?::[0-9][0-9](?:[.,][0-9]+)?)?\s*(?:[Zz]|UTC|[+-][0-9][0-9](?::?[0-9][0-9])?)$"


def parse_times(
    values: np.ndarray, lines: np.ndarray, path: Path, column: str = "timestamp", no_time: str = NO_TIME
) -> np.ndarray:
    """Turn timestamp strings into an exact int64 sort key ``[M]``.

    Integers are kept as they are; decimals are scaled by 10^(most fraction digits) when that
    fits in int64, else ranked exactly with :class:`decimal.Decimal`; other strings are parsed as
    ISO date-times (nanoseconds since 1970; microseconds when a date lies outside 1677-2262).
    Numbers of which some look like Unix seconds and others like milliseconds are logged in a
    warning (see :func:`_warn_mixed_units`). Date-times with a UTC offset are compared in UTC, as
    are bare dates (midnight); a trailing ``UTC`` or ``GMT`` (BigQuery's
    ``2015-05-20 21:34:02 UTC``) is the offset +00:00.

    ``no_time`` is the fix, in the messages, that drops the timestamps: how the caller's user
    says "use the file order" (the training config's ``time_col: null`` by default).

    Raises:
        DataError: a value is empty or cannot be parsed (a zone name such as CET gets its own
            message), or some date-times have a time zone and others none (file, line, column
            and value named).
    """
    series = pd.Series(values, dtype=object)
    if len(series) == 0:
        return np.zeros(0, dtype=np.int64)
    _refuse_unreadable(series, lines, path, column, no_time)
    is_int = series.str.fullmatch(_INT_RE).to_numpy(dtype=bool)
    if is_int.all():
        try:
            times = series.to_numpy(dtype=str).astype(np.int64)
        except OverflowError:
            return _decimal_rank(series)
        _warn_mixed_units(series, lines, path, column)
        return times
    is_number = is_int | series.str.fullmatch(_DECIMAL_RE).to_numpy(dtype=bool)
    if is_number.any():
        if not is_number.all():
            _refuse_mixed_numbers(series, is_number, lines, path, column, no_time)
        _warn_mixed_units(series, lines, path, column)
        return _decimal_key(series)
    return _datetime_key(series, lines, path, column, no_time)


def _refuse_unreadable(series: pd.Series, lines: np.ndarray, path: Path, column: str, no_time: str) -> None:
    """DataError for an empty value or one written with digits other than 0-9 (which Python's
    ``\\d`` matches and pandas cannot convert)."""
    empty = (series == "").to_numpy(dtype=bool)
    if empty.any():
        raise DataError(
            f"{path}, line {lines[int(np.flatnonzero(empty)[0])]}: the '{column}' field is empty "
            f"({int(empty.sum())} row(s) have no time). Fill it in or delete those rows, or "
            f"{no_time} to use the file order."
        )
    foreign = series.str.contains(_FOREIGN_DIGIT_RE).to_numpy(dtype=bool)
    if foreign.any():
        row = int(np.flatnonzero(foreign)[0])
        raise DataError(
            f"{path}, line {lines[row]}: {column} {series[row]!r} is written with digits other "
            "than 0-9 (full-width or another script's), which are not read as numbers or dates. "
            f"Write the {int(foreign.sum())} such value(s) with 0-9 (Python: "
            f"unicodedata.normalize('NFKC', value) for full-width digits), or {no_time} to use "
            "the file order."
        )


def _refuse_mixed_numbers(
    series: pd.Series, is_number: np.ndarray, lines: np.ndarray, path: Path, column: str, no_time: str
) -> None:
    """DataError for numbers mixed with other values, blaming the rarer kind's first row."""
    if is_number.sum() * 2 < len(series):  # mostly not numbers: the numbers are the odd rows
        row, other = int(np.flatnonzero(is_number)[0]), int(np.flatnonzero(~is_number)[0])
        raise DataError(
            f"{path}, line {lines[row]}: {column} {series[row]!r} is a number, but most rows are "
            f"not (e.g. line {lines[other]}: {series[other]!r}). Write every time the same way "
            "(ISO date-times like 2014-03-02 or 2014-03-02 10:00:00, or all numbers), or "
            f"{no_time} to use the file order."
        )
    _bad_time(path, lines, series, int(np.flatnonzero(~is_number)[0]), "a number", column, no_time)


def _datetime_key(series: pd.Series, lines: np.ndarray, path: Path, column: str, no_time: str) -> np.ndarray:
    """``[M]`` int64 key of ISO date-times (see :func:`parse_times`); raises DataError as it does."""
    # BigQuery and many SQL exports write UTC as a word ("2015-05-20 21:34:02 UTC"), which ISO 8601
    # and pandas do not accept: it is the offset +00:00.
    series = series.str.replace(_UTC_WORD_RE, "+00:00", regex=True)
    parsed = pd.to_datetime(series, errors="coerce", format="ISO8601", utc=True)
    if parsed.isna().any():
        row = int(np.flatnonzero(parsed.isna().to_numpy())[0])
        zone = re.search(_ZONE_NAME_RE, series[row])
        if zone:
            raise DataError(
                f"{path}, line {lines[row]}: {column} {series[row]!r} ends in the time zone name "
                f"{zone.group(1)!r}, which seqrec does not interpret (names such as CST or IST "
                "stand for several zones). Write the zone as a UTC offset (e.g. +01:00; UTC, GMT "
                f"and Z are understood), or {no_time} to use the file order."
            )
        _bad_time(path, lines, series, row, "a date-time", column, no_time)
    # A clock time without a zone beside one with a zone is ambiguous (a bare date is UTC midnight).
    aware = series.str.contains(_TZ_RE).to_numpy(dtype=bool)
    naive = ~aware & series.str.contains(r"[0-9]:[0-9][0-9]").to_numpy(dtype=bool)
    if aware.any() and naive.any():
        naive_row, aware_row = int(np.flatnonzero(naive)[0]), int(np.flatnonzero(aware)[0])
        raise DataError(
            f"{path}, line {lines[naive_row]}: date-time {series[naive_row]!r} has no time zone, "
            f"but line {lines[aware_row]} ({series[aware_row]!r}) has one, so their order is a "
            f"guess. Give every value in '{column}' a UTC offset (e.g. +00:00 or Z) or none."
        )
    utc = parsed.dt.tz_convert(None)
    try:
        return utc.dt.as_unit("ns").astype("int64").to_numpy()
    except pd.errors.OutOfBoundsDatetime:  # before 1677 or after 2262: microseconds are exact
        return utc.dt.as_unit("us").astype("int64").to_numpy()


# Unix times of the years 2001-2286 in seconds and in milliseconds: two ranges far apart.
_SECONDS = (10**9, 10**10)
_MILLISECONDS = (10**12, 10**13)


def _warn_mixed_units(series: pd.Series, lines: np.ndarray, path: Path, column: str) -> None:
    """Log a warning when some numeric times look like Unix seconds and others like milliseconds.

    Logs joined from two sources (Amazon's 2018 reviews carry seconds, its 2023 dump
    milliseconds) then sort every millisecond row after every second row, whatever the dates.
    Only a warning: a counter that happens to span both ranges is not a time in two units.
    """
    times = pd.to_numeric(series).to_numpy(dtype=np.float64)  # ranges only: float64 is enough
    seconds = (times >= _SECONDS[0]) & (times < _SECONDS[1])
    millis = (times >= _MILLISECONDS[0]) & (times < _MILLISECONDS[1])
    if seconds.any() and millis.any():
        s_row, ms_row = int(np.flatnonzero(seconds)[0]), int(np.flatnonzero(millis)[0])
        log.warning(
            "%s: %s looks like Unix time in seconds on %d row(s) (e.g. line %d: %s) and in "
            "milliseconds on %d row(s) (e.g. line %d: %s); they are compared as they are, so every "
            "millisecond row sorts after every second row. Convert the column to one unit if it "
            "mixes two sources.",
            path,
            column,
            int(seconds.sum()),
            lines[s_row],
            series[s_row],
            int(millis.sum()),
            lines[ms_row],
            series[ms_row],
        )


def _decimal_key(series: pd.Series) -> np.ndarray:
    """Exact int64 key of decimal strings: sign * (integer part * 10^d + fraction digits)."""
    if series.str.contains("[eE]").any():
        return _decimal_rank(series)
    sign = np.where(series.str.startswith("-").to_numpy(dtype=bool), -1, 1)
    parts = series.str.lstrip("+-").str.split(".", n=1, expand=True, regex=False)
    whole = parts[0].replace("", "0")
    frac = parts[1].fillna("") if parts.shape[1] > 1 else pd.Series([""] * len(series))
    digits = int(frac.str.len().max())
    whole_digits = int(whole.str.lstrip("0").str.len().max())
    if whole_digits + digits > 18:  # 10^18 < int64 max: every such key fits
        return _decimal_rank(series)
    frac = frac.str.ljust(digits, "0").replace("", "0")
    whole_int = whole.to_numpy(dtype=str).astype(np.int64)
    frac_int = frac.to_numpy(dtype=str).astype(np.int64)
    return sign * (whole_int * 10**digits + frac_int)


def _decimal_rank(series: pd.Series) -> np.ndarray:
    """Fallback for numbers too long for int64: their exact rank among the distinct values."""
    # One Decimal per row: only for values beyond int64 precision, which real logs rarely have.
    exact = np.array([Decimal(v) for v in series], dtype=object)
    return np.unique(exact, return_inverse=True)[1].astype(np.int64).reshape(-1)


def _bad_time(path: Path, lines: np.ndarray, series: pd.Series, row: int, kind: str, column: str, no_time: str) -> None:
    value = series[row]
    if kind == "a date-time" and re.match(_SLASH_DATE_RE, value):
        problem = f"is a date written day/month or month/day ({value[:10]!r} could be either)"
    elif re.fullmatch(_DECIMAL_COMMA_RE, value):
        problem = f"is a number with a decimal comma; write it with a point ({value.replace(',', '.')!r})"
    else:
        problem = f"is not {kind} like the other rows"
    raise DataError(
        f"{path}, line {lines[row]}: {column} {value!r} {problem}. Timestamps must all be integers, "
        "all decimals or all ISO date-times (like 2014-03-01 10:00:00, year first: 03/01/2014 is "
        f"ambiguous); fix the value, or {no_time} to use the file order."
    )
