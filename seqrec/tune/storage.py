"""The search's Optuna study on disk: Optuna imported with the extra named when missing, the
``study.db`` checked to be a storage of the installed Optuna's schema (an optuna-2 study named with
the command that upgrades it), and the search's signature (space and fixed settings) kept in the
study so a continued search in the same folder is the same search.
"""

from __future__ import annotations

import json
import logging
import sqlite3
from pathlib import Path
from typing import Any

from seqrec.errors import ConfigError

log = logging.getLogger(__name__)

MISSING = (
    "Searches (hparams_search=…) and their report (python -m seqrec.tune) need Optuna, which is not "
    "installed. Install the tune extra with `make install-tune` (or `pip install -e '.[tune]'`) and run "
    "the command again."
)

SIGNATURE_ATTR = "seqrec_search"  # the study's user attribute holding :func:`search_signature`


def import_optuna():
    """Optuna (quiet: warnings only), or :class:`ConfigError` naming the extra to install."""
    try:
        import optuna
    except ImportError:
        raise ConfigError(MISSING) from None
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    # the SQL storage imports alembic, whose INFO records ("setup plugin …") Hydra would print
    logging.getLogger("alembic").setLevel(logging.WARNING)
    return optuna


def check_optuna_storage(db: Path, fix: str | None = None) -> None:
    """Raise ConfigError unless ``db`` is an SQLite file with Optuna's tables at the schema the
    installed Optuna reads. The file is opened read-only, so a wrong file is left as it was
    (Optuna would add its tables to a foreign file, or stop with an SQL traceback).

    Args:
        db: the ``study.db`` path.
        fix: the sentence that ends the message (what to do instead).
    """
    fix = fix or (
        "The search writes it (`python train.py hparams_search=<name>`); pass that search's "
        "folder, or delete the file and run the search again."
    )
    with db.open("rb") as f:
        header = f.read(16)
    if header != b"SQLite format 3\x00":
        what = "is empty" if not header else "is not an SQLite database"
        raise ConfigError(f"'{db}' {what}, so it holds no Optuna study. {fix}")
    try:
        con = sqlite3.connect(f"{db.resolve().as_uri()}?mode=ro", uri=True)
        try:
            tables = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type='table'")}
            version = None
            if "alembic_version" in tables:
                row = con.execute("SELECT version_num FROM alembic_version").fetchone()
                version = row[0] if row else None
        finally:
            con.close()
    except sqlite3.Error as exc:
        raise ConfigError(f"'{db}' cannot be read as an SQLite database ({exc}). {fix}") from exc
    if "studies" not in tables:
        raise ConfigError(
            f"'{db}' is an SQLite database but not an Optuna study storage (no "
            f"'studies' table; it has {', '.join(sorted(tables)) or 'no tables'}). {fix}"
        )
    head = _schema_head()
    if version is not None and head is not None and version != head:
        raise ConfigError(
            f"'{db}' was written by an older Optuna (storage schema {version}; the installed Optuna "
            f"reads {head}): the search before seqrec's own sweeper used optuna 2.x. Upgrade the file "
            f"in place with `optuna storage upgrade --storage sqlite:///{db.resolve()}` (copy it first "
            "to keep the old one), then run the command again."
        )


def _schema_head() -> str | None:
    """The storage schema version the installed Optuna writes (its alembic head), read from a
    throw-away in-memory storage; None without Optuna."""
    try:
        optuna = import_optuna()
    except ConfigError:
        return None
    return optuna.storages.RDBStorage("sqlite:///:memory:").get_current_version()


def check_storage(storage: str | None) -> None:
    """:func:`check_optuna_storage` for an existing, non-empty SQLite storage URL of a search."""
    prefix = "sqlite:///"
    if storage and storage.startswith(prefix):
        path = Path(storage[len(prefix) :])
        if path.is_file() and path.stat().st_size > 0:
            check_optuna_storage(
                path,
                "Run the search in another folder (hydra.sweep.dir=…), or move that "
                "file away; the search creates its own study.db.",
            )


def search_signature(space: dict, fixed: dict) -> dict:
    """What makes a search the same search: its space (parameter → its Optuna distribution as text)
    and its fixed settings (``key → value`` overrides; the runtime options of
    :data:`seqrec.runs.configs.RUNTIME_KEYS` such as threads, which do not change a trial's result, left
    out). Stored in the study when it is created and compared when it continues."""
    from optuna.distributions import distribution_to_json

    from seqrec.runs.configs import RUNTIME_KEYS

    def text(dist: Any) -> str:  # e.g. CategoricalDistribution(choices=[32, 64, 128])
        attrs = json.loads(distribution_to_json(dist))["attributes"]
        return f"{type(dist).__name__}({', '.join(f'{k}={v}' for k, v in sorted(attrs.items()))})"

    return {
        "space": {k: text(d) for k, d in sorted(space.items())},
        "fixed": {
            k: str(v)
            for k, v in sorted(fixed.items())
            if k.lstrip("+~") not in RUNTIME_KEYS and not k.startswith("hydra")
        },
    }


def signature_differences(old: dict, new: dict) -> list[str]:
    """``"<part> <key>: old → new"`` for each parameter or fixed setting that differs."""
    out = []
    for part in ("space", "fixed"):
        a, b = old.get(part, {}), new.get(part, {})
        for key in sorted(set(a) | set(b)):
            if a.get(key) != b.get(key):
                out.append(
                    f"{'parameter' if part == 'space' else 'setting'} {key}: "
                    f"{a.get(key, '(not set)')} → {b.get(key, '(not set)')}"
                )
    return out
