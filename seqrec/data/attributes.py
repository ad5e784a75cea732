"""Item attributes for S3-Rec's pre-training (Zhou et al., CIKM 2020, Sec. 3: AAP and MAP).

Two sources, named in the dataset config:

* ``attributes_path``: the S3-Rec authors' ``<Name>_item2attributes.json``, one JSON object
  ``{"item_id": [attribute_id, ...]}`` with string keys (raw item tokens) and attribute ids
  >= 1 (Amazon: categories and brand; Yelp: business categories; LastFM: tags). Lists may repeat
  an attribute (LastFM's do, heavily); an attribute counts once per item.
* ``item_path`` + ``item_attribute_col``: a RecBole atomic item file (tab separated, typed
  header) whose ``token_seq`` column (e.g. ml-100k's ``class`` genres, space separated) holds the
  attributes; attribute tokens get ids 1..A by first appearance in the file.

Items are matched through the dataset's raw item tokens, so re-indexed raw logs work as well as
the S3-Rec files (whose item ids are kept). Items without attributes get none; items of the file
that are not in the dataset are ignored. The attribute count A comes from the data: the largest
attribute id of the JSON file (as in S3-Rec's ``get_item2attribute_json``), or the number of
distinct tokens of the item file.

JSON attribute ids are kept as they are, not renumbered: they index the attribute embedding, and
the S3-Rec authors' published checkpoints index it by the ids of their files (which are exactly
1..A). Ids far sparser than that (raw category ids in the millions) would size the embedding and
the multi-hot table by the largest id, so such a file is refused with the way out: renumber it,
or give the attributes as an item file, whose tokens are numbered densely.
"""

from __future__ import annotations

import csv
import hashlib
import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from seqrec.data.fetch import ensure_file
from seqrec.data.spec import DatasetSpec
from seqrec.errors import DataError

log = logging.getLogger(__name__)

# JSON attribute ids may leave this many unused ids below the largest (plus as many as are used)
# before the file is refused: a few gaps (attributes of dropped items) cost nothing, raw ids cost
# tables sized by the largest id.
_UNUSED_ID_SLACK = 1000


@dataclass(frozen=True, eq=False)  # arrays: no field-wise ==
class ItemAttributes:
    """Attributes of items 1..n_items in CSR form (attribute ids 1..n_attributes, 0 unused).

    Attributes:
        attrs: ``[M]`` int64 attribute ids, unique within an item, sorted.
        offsets: ``[n_items + 2]`` int64; item ``i`` has ``attrs[offsets[i]:offsets[i + 1]]``
            (row 0, the padding item, has none).
        n_items: catalogue size N of the dataset.
        n_attributes: A, the largest attribute id.
        source: the file they were read from.
    """

    attrs: np.ndarray
    offsets: np.ndarray
    n_items: int
    n_attributes: int
    source: Path

    @property
    def fingerprint(self) -> str:
        """16 hex digits of sha256 over the item → attribute table (enters pre-training keys)."""
        digest = hashlib.sha256(f"{self.n_items} {self.n_attributes}\n".encode())
        digest.update(self.offsets.tobytes())
        digest.update(self.attrs.tobytes())
        return digest.hexdigest()[:16]

    def multi_hot(self, n_rows: int | None = None) -> torch.Tensor:
        """Dense ``[n_rows, A + 1]`` bool table, row = item id, column = attribute id.

        ``n_rows`` defaults to ``n_items + 1``; extra rows (e.g. S3-Rec's mask token N+1) and
        row 0 (padding) are all False, as is column 0 (no attribute has id 0).
        """
        n_rows = self.n_items + 1 if n_rows is None else n_rows
        table = torch.zeros(n_rows, self.n_attributes + 1, dtype=torch.bool)
        rows = np.repeat(np.arange(self.n_items + 1), np.diff(self.offsets))
        table[torch.from_numpy(rows), torch.from_numpy(self.attrs)] = True
        return table


def load_attributes(
    cfg: Mapping[str, Any] | DatasetSpec, data_dir: Path, item_tokens: np.ndarray, required: bool = True
) -> ItemAttributes | None:
    """The item attributes named by the dataset config, fetched into ``data_dir`` if missing.

    Args:
        cfg: the ``dataset`` config group (or its :class:`DatasetSpec`).
        data_dir: the data directory (attribute files are relative to it).
        item_tokens: ``[N + 1]`` raw item token of each item index (``SequenceData.item_tokens``).
        required: raise when the dataset has no attribute source (else return None).

    Raises:
        DataError: no attribute source while ``required``; a missing, unfetchable or malformed
            file (the message says how to fix it).
    """
    spec = cfg if isinstance(cfg, DatasetSpec) else DatasetSpec.from_mapping(cfg)
    data_dir = Path(data_dir)
    if spec.attributes_path:
        path = ensure_file(data_dir, spec.attributes_path, spec.attributes_url)
        pairs, n_attributes = _read_json(path)
    elif spec.item_path and spec.item_attribute_col:
        path = ensure_file(data_dir, spec.item_path, spec.item_url, spec.item_archive_member)
        pairs, n_attributes = _read_item_file(path, spec.item_col, spec.item_attribute_col)
    else:
        if not required:
            return None
        raise DataError(
            f"dataset '{spec.name}' has no item attributes, which S3-Rec's pre-training needs "
            "(the AAP and MAP objectives). Either fine-tune without pre-training "
            "(model.pretrained=false), or provide attributes: set dataset.attributes_path to a "
            'JSON file {"item_id": [attribute_id, ...]} (attribute ids >= 1), or '
            "dataset.item_path + dataset.item_attribute_col for a RecBole atomic item file "
            "with a token_seq column."
        )
    return _to_csr(pairs, item_tokens, n_attributes, path)


def _read_json(path: Path) -> tuple[tuple[np.ndarray, np.ndarray], int]:
    """(item tokens [M], attribute ids [M]) pairs and A of an ``item2attributes.json`` file."""
    try:
        table = json.loads(path.read_text(encoding="utf-8-sig"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise DataError(
            f"cannot read the item attributes {path}: {err}. It must be one JSON "
            'object {"item_id": [attribute_id, ...]}; fetch it again (`make data`) '
            "or fix the file."
        ) from err
    if not isinstance(table, dict):
        raise DataError(
            f'{path}: expected one JSON object {{"item_id": [attribute_id, ...]}}, found a {type(table).__name__}.'
        )
    items, attrs = [], []
    for item, values in table.items():
        if not isinstance(values, list) or not all(
            isinstance(a, int) and not isinstance(a, bool) and a >= 1 for a in values
        ):
            raise DataError(
                f"{path}: item {item!r} has attributes {str(values)[:80]}; every "
                "value must be a list of integer attribute ids >= 1 (0 is padding)."
            )
        items.extend([str(item)] * len(values))
        attrs.extend(values)
    n_attributes = max(attrs, default=0)
    _check_dense(path, n_attributes, len(set(attrs)))
    return (np.array(items, dtype=str), np.array(attrs, dtype=np.int64)), n_attributes


def _check_dense(path: Path, largest: int, distinct: int) -> None:
    """Refuse ids so sparse that tables sized by the largest id would be mostly empty."""
    if largest <= 2 * distinct + _UNUSED_ID_SLACK:
        return
    raise DataError(
        f"{path}: attribute ids go up to {largest}, but only {distinct} distinct ids are used. The ids "
        "index S3-Rec's attribute embedding and multi-hot item table directly (as in the S3-Rec "
        f"authors' code and checkpoints), so these would need {largest + 1} rows. Renumber the "
        f"attributes densely as 1..{distinct} in the file, or give them as a RecBole atomic item file "
        "(dataset.item_path + dataset.item_attribute_col naming a token_seq column), whose attribute "
        "tokens are numbered 1..A by first appearance."
    )


def _read_item_file(path: Path, item_col: str, attribute_col: str) -> tuple[tuple[np.ndarray, np.ndarray], int]:
    """Pairs and A of an atomic item file's token_seq column (tokens → ids by first appearance)."""
    try:
        frame = pd.read_csv(
            path, sep="\t", dtype=str, keep_default_na=False, quoting=csv.QUOTE_NONE, encoding="utf-8-sig"
        )
    except (OSError, UnicodeDecodeError, pd.errors.ParserError) as err:
        raise DataError(
            f"cannot read the item file {path}: {err}. It must be a tab separated "
            "RecBole atomic file with a typed header (item_id:token ...)."
        ) from err
    frame.columns = [str(c).split(":", 1)[0].strip() for c in frame.columns]
    missing = [c for c in (item_col, attribute_col) if c not in frame.columns]
    if missing:
        raise DataError(
            f"{path}: column(s) {', '.join(missing)} not found; the header has "
            f"{', '.join(frame.columns)}. Set dataset.item_col / "
            "dataset.item_attribute_col to these names."
        )
    tokens = frame[attribute_col].str.split()  # one list of attribute tokens per item row
    counts = tokens.str.len().to_numpy()
    flat = np.array([t for row in tokens for t in row], dtype=str)
    codes, uniques = pd.factorize(flat)
    items = np.repeat(frame[item_col].str.strip().to_numpy(dtype=str), counts)
    return (items, codes.astype(np.int64) + 1), len(uniques)


def _few(tokens: np.ndarray) -> str:
    return ", ".join(repr(str(t)) for t in tokens[:3])


def _to_csr(
    pairs: tuple[np.ndarray, np.ndarray], item_tokens: np.ndarray, n_attributes: int, path: Path
) -> ItemAttributes:
    """Map item tokens to the dataset's item indices and build the deduplicated CSR."""
    tokens, attrs = pairs
    n_items = len(item_tokens) - 1
    index = pd.Index(np.asarray(item_tokens[1:], dtype=str))
    item_ids = index.get_indexer(tokens) + 1  # 0 where the token is not a dataset item
    keep = item_ids > 0
    if not keep.any():
        raise DataError(
            f"{path}: none of its {len(np.unique(tokens))} item ids (e.g. {_few(tokens)}) "
            f"is an item of the interaction data (e.g. {_few(item_tokens[1:])}), so "
            "S3-Rec would pre-train on no attributes. Key the attributes by the raw item ids of the "
            "interaction file."
        )
    covered = len(np.unique(item_ids[keep]))
    if covered * 2 < n_items:
        log.warning(
            "%s: only %d of the dataset's %d items have attributes (%d of the file's item ids are "
            "not dataset items, e.g. %s); S3-Rec's AAP and MAP learn nothing about the others",
            path,
            covered,
            n_items,
            len(np.unique(tokens[~keep])),
            _few(np.unique(tokens[~keep])),
        )
    keys = np.unique(item_ids[keep] * (n_attributes + 1) + attrs[keep])  # sorted, deduplicated
    items, attrs = keys // (n_attributes + 1), keys % (n_attributes + 1)
    offsets = np.zeros(n_items + 2, dtype=np.int64)
    np.cumsum(np.bincount(items, minlength=n_items + 1), out=offsets[1:])
    return ItemAttributes(
        attrs=attrs.astype(np.int64), offsets=offsets, n_items=n_items, n_attributes=int(n_attributes), source=path
    )


__all__ = ["ItemAttributes", "load_attributes"]
