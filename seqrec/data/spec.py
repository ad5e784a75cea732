"""The dataset options of ``conf/dataset/<name>.yaml``, read once and checked.

The dataset config is a plain mapping (a Hydra ``DictConfig`` or a ``dict``); this module turns
it into a frozen :class:`DatasetSpec` so that readers, preprocessing, the cache and the fetcher
see the same checked values and defaults.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

from omegaconf import OmegaConf

from seqrec.errors import DataError

FORMATS = ("s3rec", "atomic", "csv")


@dataclass(frozen=True)
class DatasetSpec:
    """Checked dataset options (keys of ``conf/dataset/<name>.yaml``).

    ``path``/``attributes_path``/``item_path`` are relative to the data directory. ``time_col``
    None means "file order is the chronological order". ``kcore`` <= 1 disables the k-core
    filter; ``max_users`` None keeps every user.
    """

    name: str
    format: str
    path: str
    url: str | None = None
    archive_member: str | None = None
    attributes_path: str | None = None
    attributes_url: str | None = None
    item_path: str | None = None
    item_url: str | None = None
    item_archive_member: str | None = None
    item_attribute_col: str | None = None
    user_col: str = "user_id"
    item_col: str = "item_id"
    time_col: str | None = "timestamp"
    sep: str = "\t"
    kcore: int = 5
    min_user_interactions: int = 3
    max_users: int | None = None
    max_len: int = 50
    # hex sha256 of the published source file (the five benchmark files): checked on every use
    sha256: str | None = None

    @classmethod
    def from_mapping(cls, cfg: Mapping[str, Any]) -> DatasetSpec:
        """Read and check a dataset config mapping.

        Raises:
            DataError: an unknown key (e.g. ``+dataset.user_column=...``, a typo Hydra lets through
                with ``+``), a required key (``name``, ``format``, ``path``) is missing, ``format`` is
                not one of :data:`FORMATS`, a number option has a wrong type or range, the
                separator is unusable, or two of user/item/time column name the same column.
        """
        name = cfg.get("name")
        where = f"dataset config '{name}' (conf/dataset/{name}.yaml)" if name else "dataset config"
        if OmegaConf.is_config(cfg) and OmegaConf.is_missing(cfg, "path"):
            raise DataError(
                f"{where} needs the path of your interaction log: add dataset.path=/path/to/log.csv "
                "to the command line (and dataset.user_col / item_col / time_col if your columns "
                "have other names)."
            )
        for key in ("name", "format", "path"):
            if not cfg.get(key):
                raise DataError(
                    f"{where} has no '{key}'. Every dataset config needs 'name', 'format' "
                    f"({'|'.join(FORMATS)}) and 'path' (the source file, relative to the data "
                    "directory); copy one of conf/dataset/*.yaml as a template."
                )
        unknown = sorted(set(map(str, cfg.keys())) - _KNOWN_KEYS)
        if unknown:
            key = unknown[0]
            close = difflib.get_close_matches(key, sorted(_KNOWN_KEYS), n=1)
            hint = f"did you mean dataset.{close[0]}? " if close else ""
            raise DataError(
                f"{where}: unknown option dataset.{key} ({hint}a key added with '+' is not read "
                f"by seqrec and would be silently ignored). Valid dataset options are: "
                f"{', '.join(sorted(_KNOWN_KEYS))}."
            )
        fmt = str(cfg["format"])
        if fmt not in FORMATS:
            raise DataError(
                f"{where}: unknown format '{fmt}'. Valid formats are {', '.join(FORMATS)} "
                "(s3rec = one user per line 'user item item ...'; atomic = RecBole .inter file "
                "with a typed header; csv = a delimited file with a header row)."
            )
        values: dict[str, Any] = {"name": str(name), "format": fmt, "path": str(cfg["path"])}
        for key in ("url", "archive_member", "attributes_path", "attributes_url", "item_path",
                    "item_url", "item_archive_member", "item_attribute_col", "user_col",
                    "item_col", "sha256"):
            if cfg.get(key) is not None:
                values[key] = str(cfg[key])
        if "time_col" in cfg:
            values["time_col"] = None if cfg["time_col"] is None else str(cfg["time_col"])
        values["sep"] = _separator(cfg.get("sep"), fmt, where)
        values["kcore"] = _int_option(cfg, "kcore", 0 if fmt == "s3rec" else 5, 0, where)
        # leave-one-out needs a training, a validation and a test item per user
        values["min_user_interactions"] = _int_option(cfg, "min_user_interactions", 3, 3, where)
        values["max_len"] = _int_option(cfg, "max_len", 50, 1, where)
        if cfg.get("max_users") is not None:
            values["max_users"] = _int_option(cfg, "max_users", None, 1, where)
        spec = cls(**values)
        columns = {"user_col": spec.user_col, "item_col": spec.item_col, "time_col": spec.time_col}
        named = [(key, col) for key, col in columns.items() if col is not None]
        for key, col in named:
            others = [other for other, name in named if name == col and other != key]
            if fmt != "s3rec" and others:
                raise DataError(
                    f"{where}: options '{key}' and '{others[0]}' both name column '{col}'; the "
                    "user, item and time columns must be different columns of the file. Set "
                    f"dataset.{others[0]}=<its column> (dataset.time_col=null: file order)."
                )
        return spec

    def preprocessing_settings(self) -> dict[str, Any]:
        """The options that change the processed data (they enter the cache key)."""
        settings = {"name": self.name, "format": self.format, "kcore": self.kcore,
                    "min_user_interactions": self.min_user_interactions,
                    "max_users": self.max_users}
        if self.format != "s3rec":
            settings.update(user_col=self.user_col, item_col=self.item_col,
                            time_col=self.time_col, sep=self.sep)
        return settings


# every key a dataset config may hold: the spec's fields and the S3-Rec pre-training length
_KNOWN_KEYS = frozenset(f.name for f in fields(DatasetSpec)) | {"pretrain_epochs"}

# What a shell and Hydra pass for a tab: `dataset.sep='\t'` arrives as backslash + "t".
_SEP_ESCAPES = {"\\t": "\t", "tab": "\t", "TAB": "\t"}


def _separator(value: Any, fmt: str, where: str) -> str:
    """The field separator: empty/None = "," for csv and a tab otherwise; "\\t" or "tab" = tab.

    Raises:
        DataError: the separator contains a line break or a double quote.
    """
    if value is None or str(value) == "":
        return "," if fmt == "csv" else "\t"
    sep = _SEP_ESCAPES.get(str(value), str(value))
    if "\n" in sep or "\r" in sep or '"' in sep:
        raise DataError(
            f"{where}: option 'sep' is {sep!r}; a field separator cannot contain a line break or "
            "a double quote. Use e.g. dataset.sep=',' or dataset.sep='\\t' (tab)."
        )
    return sep


def _int_option(cfg: Mapping[str, Any], key: str, default: int | None, minimum: int,
                where: str) -> int:
    value = cfg.get(key, default)
    if value is None:
        value = default
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise DataError(
            f"{where}: option '{key}' must be an integer >= {minimum}, got {value!r}. "
            f"Fix it in the YAML file or override it on the command line "
            f"(e.g. dataset.{key}={max(minimum, default or minimum)})."
        )
    return value
