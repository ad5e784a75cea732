"""Interaction files as text, whatever they arrived as: UTF-8 with or without a BOM, UTF-16 with
its BOM, gzip/bzip2/xz compressed (recognised by their first bytes, not their names), any line
ends. What is no text (a zip archive, a directory, a binary file, another encoding) is a
:class:`~seqrec.errors.DataError` naming the file, the line where it can, and the fix.
"""

from __future__ import annotations

import bz2
import gzip
import lzma
import zipfile
import zlib
from pathlib import Path

from seqrec.errors import DataError

# Compressed files are recognised by their first bytes, whatever their name ends with.
_COMPRESSIONS = (
    (b"\x1f\x8b", "gzip", gzip.decompress),
    (b"BZh", "bzip2", bz2.decompress),
    (b"\xfd7zXZ\x00", "xz", lzma.decompress),
)


def read_text(path: Path) -> str:
    """The file as text: UTF-8 with an optional BOM, or UTF-16 with its BOM; gzip, bzip2 and xz
    files are decompressed first. CRLF and CR line ends become LF.

    Raises:
        DataError: the file cannot be read, is a zip archive, a corrupt compressed file, binary
            (NUL bytes), or not valid UTF-8 (the message names the line and the fix).
    """
    try:
        data = path.read_bytes()
    except IsADirectoryError as err:
        raise DataError(directory_message(path)) from err
    except OSError as err:
        raise DataError(
            f"cannot read {path}: {err.strerror}. Check that the file exists and is "
            "readable, or run `make data` to fetch it."
        ) from err
    for magic, name, decompress in _COMPRESSIONS:
        if data.startswith(magic):
            try:
                data = decompress(data)
            except (OSError, EOFError, ValueError, zlib.error, lzma.LZMAError) as err:
                raise DataError(
                    f"{path} is a truncated or corrupt {name} file ({err}). Download "
                    f"or compress it again, or give the uncompressed file."
                ) from err
            break
    if data.startswith(b"PK\x03\x04"):
        raise DataError(_zip_message(path))
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):  # UTF-16 with BOM (Excel's "Unicode text")
        try:
            return _normalise_newlines(data.decode("utf-16"))
        except UnicodeDecodeError as err:
            raise DataError(
                f"{path}: the file starts like UTF-16 but is not valid UTF-16 ({err.reason}). Save it as UTF-8."
            ) from err
    nul = data.find(b"\x00")
    if nul >= 0:
        line = data[:nul].count(b"\n") + 1
        raise DataError(
            f"{path}, line {line}: the file contains NUL bytes, so it is no text file "
            "(a binary format such as parquet, npz or a spreadsheet?). Export the "
            "interactions as a CSV or tab-separated text file."
        )
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        line = data[: err.start].count(b"\n") + 1
        raise DataError(
            f"{path}, line {line}: the file is not valid UTF-8 ({err.reason}). Save "
            "it as UTF-8 (e.g. `iconv -f latin1 -t utf-8`)."
        ) from err
    return _normalise_newlines(text)


def _normalise_newlines(text: str) -> str:
    """LF line ends; a BOM at the start of a later line (files with BOMs joined by ``cat``) goes,
    else it would stick to the first id of that line."""
    return text.replace("\r\n", "\n").replace("\r", "\n").replace("\n\ufeff", "\n")


def directory_message(path: Path) -> str:
    """The error text for a directory given where an interaction file is expected."""
    try:
        names = sorted(p.name for p in path.iterdir() if p.is_file())[:10]
    except OSError:  # e.g. no permission to list it
        names = []
    held = f" (it holds {', '.join(names)})" if names else " (it holds no files)"
    return (
        f"{path} is a directory{held}; dataset.path must name the interaction file itself, "
        f"e.g. dataset.path={path / (names[0] if names else 'ratings.csv')}."
    )


def _zip_message(path: Path) -> str:
    try:
        with zipfile.ZipFile(path) as archive:
            names = [n for n in archive.namelist() if not n.endswith("/")]
    except (zipfile.BadZipFile, OSError):
        names = []
    held = f" holding {', '.join(names[:10])}" if names else ""
    return (
        f"{path} is a zip archive{held} (an .xlsx workbook is one too). Unzip it and set "
        "dataset.path to the interaction file inside (export a spreadsheet as CSV first)."
    )
