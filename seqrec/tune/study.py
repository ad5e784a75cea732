"""The stored study of a search folder and its trials (``<search>/study.db``, ``trial<N>/``)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pandas as pd

from seqrec.errors import SeqrecError
from seqrec.tune.storage import check_optuna_storage, import_optuna

STUDY_FILE = "study.db"


def load_study(search_dir: str | Path, study_name: str | None = None):
    """The Optuna study of a search folder (``<search_dir>/study.db``). The file is checked
    read-only first: Optuna would otherwise add its tables to an empty or foreign SQLite file.

    Raises:
        SeqrecError: the folder or its ``study.db`` is missing, the file is not an Optuna SQLite
            storage of the installed Optuna's schema, it holds no study, or it holds several and
            ``study_name`` does not pick one.
    """
    optuna = import_optuna()
    search_dir = Path(search_dir)
    db = search_dir / STUDY_FILE
    if search_dir.is_file() and search_dir.name == STUDY_FILE:
        raise SeqrecError(f"'{search_dir}' is the study file; pass its folder ('{search_dir.parent}').")
    if not db.is_file():
        raise SeqrecError(
            f"No search study at '{db}'. Pass the folder a search wrote (`python train.py "
            "hparams_search=<name>` writes outputs/search/<name>/study.db)."
        )
    check_optuna_storage(db)
    storage = f"sqlite:///{db.resolve()}"
    names = [s.study_name for s in optuna.get_all_study_summaries(storage)]
    if not names:
        raise SeqrecError(
            f"'{db}' holds no study: its search stopped before it began. Run the search "
            "(`python train.py hparams_search=<name>`) before the report."
        )
    if study_name is None:
        if len(names) != 1:
            raise SeqrecError(f"'{db}' holds {len(names)} studies ({', '.join(names)}); pick one with --study NAME.")
        study_name = names[0]
    elif study_name not in names:
        raise SeqrecError(f"'{db}' has no study named {study_name!r}; it has {', '.join(names)}.")
    return optuna.load_study(study_name=study_name, storage=storage)


def trial_metrics(run_dir: Path) -> dict:
    """A trial run's ``metrics.json`` as a dict, ``{}`` while it has none (unfinished or failed)."""
    path = run_dir / "metrics.json"
    if not path.is_file():
        return {}
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}


def trials_table(study, search_dir: str | Path) -> pd.DataFrame:
    """One row per trial: ``number``, ``state``, ``value`` (the objective, NaN unless complete), one
    column per searched parameter, ``duration_s`` (seconds), ``best_epoch``, ``epochs_run`` and
    ``run_dir`` (``<search_dir>/trial<number>``), sorted by number."""
    rows = []
    for t in study.get_trials(deepcopy=False):
        run_dir = Path(search_dir) / f"trial{t.number}"
        m = trial_metrics(run_dir)
        duration = (
            (t.datetime_complete - t.datetime_start).total_seconds()
            if t.datetime_complete and t.datetime_start
            else math.nan
        )
        rows.append(
            {
                "number": t.number,
                "state": t.state.name,
                "value": t.value if t.state.name == "COMPLETE" and t.value is not None else math.nan,
                **t.params,
                "duration_s": duration,
                "best_epoch": m.get("best_epoch"),
                "epochs_run": m.get("epochs_run"),
                "run_dir": str(run_dir),
            }
        )
    if not rows:  # a search stopped before its first trial was recorded
        return pd.DataFrame(columns=["number", "state", "value", "duration_s", "best_epoch", "epochs_run", "run_dir"])
    return pd.DataFrame(rows).sort_values("number").reset_index(drop=True)


def best_trial(trials: pd.DataFrame) -> pd.Series:
    """The complete trial with the highest objective (the first such trial on a tie).

    Raises:
        SeqrecError: no trial is complete.
    """
    done = trials[(trials["state"] == "COMPLETE") & trials["value"].notna()]
    if done.empty:
        raise SeqrecError(
            f"No complete trial in this search ({len(trials)} trials: "
            f"{', '.join(f'{n} {s}' for s, n in trials['state'].value_counts().items()) or 'none'}). "
            "Run or continue the search first (the same `python train.py hparams_search=…` command)."
        )
    return done.loc[done["value"].idxmax()]
