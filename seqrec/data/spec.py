"""The dataset options of ``conf/dataset/<name>.yaml``: :class:`DatasetSpec` is their schema.

The dataset config is a plain mapping (a Hydra ``DictConfig`` or a ``dict``);
:meth:`DatasetSpec.from_mapping` checks it once (keys, types, ranges: see
:mod:`seqrec.options`) and turns it into a frozen :class:`DatasetSpec`, so that readers,
preprocessing, the cache and the fetcher see the same checked values and defaults.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from seqrec.options import NonNegativeInt, Pattern, PositiveInt, Range, accepts, construct, describe, plain

FORMATS = ("s3rec", "atomic", "csv")

# The name becomes a folder (outputs/runs/<name>/) and a file name (data/processed/<name>-<key>.npz):
# no "/" or leading "." that would nest folders or climb out of outputs/ and data/, and not empty.
DatasetName = Annotated[
    str,
    Pattern(
        r"[A-Za-z0-9][A-Za-z0-9_.-]*",
        "a name of letters, digits, '_', '.' and '-' that starts with a letter or digit (it names the "
        "run folder outputs/runs/<name>/ and the cache file data/processed/<name>-<key>.npz, so no '/', "
        "no leading '.', not empty), e.g. dataset.name=my_log",
    ),
]


def name_problem(name: Any) -> str | None:
    """The paragraph refusing ``dataset.name=name``, or None for a good name.

    :meth:`DatasetSpec.from_mapping` refuses a bad name too, but only once Hydra has made the run
    folder, whose path contains the name; the Hydra callback asks here first.
    """
    if isinstance(name, str) and accepts(DatasetName, name):
        return None
    return (
        f"dataset.name={name!r} is not valid: it must be {describe(DatasetName)}. Set it on the command "
        "line (e.g. dataset.name=...) or in conf/dataset/."
    )


# What a shell and Hydra pass for a tab: `dataset.sep='\t'` arrives as backslash + "t".
_SEP_ESCAPES = {"\\t": "\t", "tab": "\t", "TAB": "\t"}


@dataclass(frozen=True)
class DatasetSpec:
    """Checked dataset options (keys of ``conf/dataset/<name>.yaml``); the defaults below are the
    only ones (a dataset YAML sets what differs).

    Args:
        name: the dataset's name (run folders, cache files: a plain file name, see ``DatasetName``).
        format: ``s3rec`` (one user per line ``user item item ...``), ``atomic`` (RecBole
            ``.inter`` with a typed header) or ``csv`` (a delimited file with a header row).
        path: the source file, relative to the data directory (or absolute).
        url, archive_member: where :mod:`seqrec.data.fetch` gets a missing source file.
        attributes_path, attributes_url: S3-Rec's ``item2attributes.json`` (item attributes).
        item_path, item_url, item_archive_member, item_attribute_col: a RecBole ``.item`` file
            and its token_seq column, the other source of item attributes.
        user_col, item_col, time_col: column names (raw logs); ``time_col`` None = the file order
            is the chronological order.
        sep: field separator; None = ``","`` for csv and a tab otherwise; ``\\t`` or ``tab`` = tab.
        rating_col, min_rating: keep only the rows whose number in column ``rating_col`` is at
            least ``min_rating`` (raw logs; e.g. ratings of 4 and 5 as the positives); both None
            = every row is an interaction.
        kcore: iterative k-core filter (<= 1: none); None = 0 for ``s3rec`` files (already
            5-core; item ids are kept so the attributes still match) and 5 for raw logs.
        min_user_interactions: users with fewer are dropped (>= 3: leave-one-out needs a
            training, a validation and a test item).
        max_users: keep only the first users (smoke tests); None = all.
        max_len: most recent items per input sequence (paper: 50).
        pretrain_epochs: S3-Rec's pre-training epochs for this dataset (read by
            ``model.pretrain.epochs``); None = that option's own fallback.

    Raises:
        ValueError: the separator contains a line break or a double quote, or two of
            user/item/time column name the same column.
    """

    name: DatasetName
    format: Literal["s3rec", "atomic", "csv"]
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
    sep: str | None = None
    rating_col: str | None = None
    min_rating: float | None = None
    kcore: NonNegativeInt | None = None
    min_user_interactions: Annotated[int, Range(ge=3)] = 3
    max_users: PositiveInt | None = None
    max_len: PositiveInt = 50
    pretrain_epochs: PositiveInt | None = None
    sha256: Annotated[str, Pattern(r"[0-9a-f]{64}", "64 lowercase hex digits")] | None = None

    def __post_init__(self) -> None:
        if self.sep in (None, ""):
            sep = "," if self.format == "csv" else "\t"
        else:
            sep = _SEP_ESCAPES.get(self.sep, self.sep)
        if "\n" in sep or "\r" in sep or '"' in sep:
            raise ValueError(
                f"sep is {sep!r}; a field separator cannot contain a line break or a double "
                "quote (use e.g. ',' or '\\t' for a tab)"
            )
        object.__setattr__(self, "sep", sep)
        if self.kcore is None:
            object.__setattr__(self, "kcore", 0 if self.format == "s3rec" else 5)
        if (self.rating_col is None) != (self.min_rating is None):
            given, missing = ("rating_col", "min_rating") if self.min_rating is None else ("min_rating", "rating_col")
            raise ValueError(
                f"{given} is set but {missing} is not; keeping rows by rating needs both (e.g. "
                "dataset.rating_col=rating dataset.min_rating=4), or neither to keep every row"
            )
        if self.min_rating is not None:  # 4 and 4.0 are one setting (and one cache key)
            object.__setattr__(self, "min_rating", float(self.min_rating))
        if self.rating_col is not None and self.format == "s3rec":
            raise ValueError("rating_col: an S3-Rec file has no columns; filter ratings in a csv or atomic file")
        named = [
            (key, getattr(self, key))
            for key in ("user_col", "item_col", "time_col", "rating_col")
            if getattr(self, key) is not None
        ]
        for key, col in named:
            others = [other for other, name in named if name == col and other != key]
            if self.format != "s3rec" and others:
                raise ValueError(
                    f"{key} and {others[0]} are both column '{col}'; the user, item, time and rating "
                    "columns must be different columns of the file"
                )

    @classmethod
    def from_mapping(cls, cfg: Mapping[str, Any]) -> DatasetSpec:
        """Check a dataset config mapping (the ``dataset`` group) and build the spec.

        Raises:
            ConfigError: an unknown key (e.g. ``+dataset.user_column=...``, with the closest
                valid one), a missing required key (``name``, ``format``, ``path``; ``???``), a
                value of the wrong type or range, or one :meth:`__post_init__` refuses.
        """
        return construct(cls, plain(cfg, "dataset"), "dataset")

    def preprocessing_settings(self) -> dict[str, Any]:
        """The options that change the processed data (they enter the cache key)."""
        settings = {
            "name": self.name,
            "format": self.format,
            "kcore": self.kcore,
            "min_user_interactions": self.min_user_interactions,
            "max_users": self.max_users,
        }
        if self.format != "s3rec":
            settings.update(user_col=self.user_col, item_col=self.item_col, time_col=self.time_col, sep=self.sep)
        if self.rating_col is not None:  # only when set: the keys of every other dataset stay as they were
            settings.update(rating_col=self.rating_col, min_rating=self.min_rating)
        return settings
