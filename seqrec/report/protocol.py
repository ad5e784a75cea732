"""Which runs may be compared: the seeds of one configuration, and the runs a result page claims.

Two rules, checked on the runs' saved ``config.yaml`` before any number is averaged or compared:

* **Seeds agree.** The runs averaged into one cell (a dataset × model × loss of Table 2, a
  configuration of the leaderboard) differ in nothing but the seed and the settings that do not
  change a number (:data:`SETUP_KEYS`: paths, threads, device, progress bars, test logging). A
  1-epoch smoke run or a run with another learning rate exported as "seed 43" is refused, naming
  both folders and the keys that differ. A key that only one config has is an option added after
  the other run was made: it is compared with the value that run computed with
  (:data:`seqrec.runs.configs.ADDED_OPTIONS`), or matches when it is null (off).
* **The protocol a page claims.** The Table 2 page compares with the paper, so its runs follow
  :data:`TABLE2_PROTOCOL` (all users, ``max_len`` 50, at most 150 epochs with patience 10 on
  validation NDCG@20, history masked); the leaderboard's runs beyond Table 2 follow
  :data:`PAPER_PROTOCOL` (the same, any ``max_len``, model or samples). A run on a user subset
  (``dataset.max_users``) or a shortened schedule is refused by name.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pandas as pd
from omegaconf import OmegaConf

from seqrec.errors import SeqrecError
from seqrec.runs.configs import current_target, irrelevant_options, with_added_options, with_legacy_options

# settings that change no reported number (and differ between machines and sessions)
SETUP_KEYS = (
    "seed",
    "seeds",
    "output_dir",
    "num_threads",
    "device",
    "data_dir",
    "resume",
    "stage",
    "trainer.progress",
    "trainer.log_test_every_epoch",
    "trainer.eval_batch_size",
    "eval.batch_size",
)
SETUP_PREFIXES = ("logger.", "hydra.")
# the CCE paper's training and evaluation protocol (Sec. 5.1; conf/trainer/default.yaml)
PAPER_PROTOCOL = {
    "dataset.max_users": None,
    "trainer.max_epochs": 150,
    "trainer.patience": 10,
    "trainer.monitor": "valid/ndcg@20",
    "eval.mask_history": True,
}
TABLE2_PROTOCOL = {**PAPER_PROTOCOL, "dataset.max_len": 50, "trainer.samples": "sequences"}


def flat_config(run_dir: str | os.PathLike) -> dict:
    """A run's ``config.yaml`` as ``{"trainer.max_epochs": 150, ...}`` (lists kept whole, moved
    ``_target_`` paths renamed to where the class lives now; ``eval.rank_repeats`` of a run that
    predates it read from its ``metrics.json``, :func:`seqrec.runs.configs.with_legacy_options`).

    Raises:
        SeqrecError: the file is missing or not YAML.
    """
    path = Path(run_dir) / "config.yaml"
    try:
        container = OmegaConf.to_container(OmegaConf.load(path))
        metrics = _metrics(run_dir)
    except (OSError, ValueError) as exc:
        raise SeqrecError(f"Cannot read '{path}' ({exc}); rebuild that result folder.") from exc
    container = with_legacy_options(container, metrics)  # options older runs lack, from what they wrote
    flat: dict = {}

    def walk(node, prefix: str) -> None:
        for key, value in node.items():
            if isinstance(value, dict):
                walk(value, f"{prefix}{key}.")
            else:
                flat[f"{prefix}{key}"] = current_target(value) if key == "_target_" else value

    walk(container, "")
    return flat


def _compared(key: str) -> bool:
    return key not in SETUP_KEYS and not key.startswith(SETUP_PREFIXES)


def _metrics(run_dir: str | os.PathLike) -> dict | None:
    path = Path(run_dir) / "metrics.json"
    return json.loads(path.read_text()) if path.is_file() else None


def check_seeds_agree(runs: pd.DataFrame, by: tuple[str, ...]) -> None:
    """Raise when two runs of one ``by`` group (the seeds of one cell) differ in a setting that
    changes a number (module docstring).

    Args:
        runs: ``collect_runs``-like rows with ``run_dir`` and the ``by`` columns.
    Raises:
        SeqrecError: naming both folders and up to three differing keys with their values.
    """
    for _, group in runs.groupby(list(by), sort=False):
        if len(group) < 2:
            continue
        first = group.iloc[0]
        base = flat_config(first.run_dir)
        same_anyway = irrelevant_options(_metrics(first.run_dir))
        for run in group.iloc[1:].itertuples():
            other = flat_config(run.run_dir)
            a, b = with_added_options(base, other), with_added_options(other, base)
            ignored = same_anyway & irrelevant_options(_metrics(run.run_dir))  # e.g. rank_repeats without repeats
            keys = [k for k in dict.fromkeys([*a, *b]) if _compared(k) and k not in ignored]
            diff = [k for k in keys if a.get(k) != b.get(k)]  # a missing key compares as null
            if diff:
                shown = ", ".join(f"{k}: {a.get(k, '(not set)')!r} vs {b.get(k, '(not set)')!r}" for k in diff[:3])
                raise SeqrecError(
                    f"'{first.run_dir}' and '{run.run_dir}' are averaged as seeds of one configuration, "
                    f"but they differ in more than the seed ({shown}{', …' if len(diff) > 3 else ''}). "
                    "Retrain the odd one with the other's settings, or move it out of this folder "
                    "(a configuration of its own goes under another name)."
                )


def protocol_departures(runs: pd.DataFrame, protocol: dict) -> list[tuple[str, str, object, object]]:
    """``(run folder, key, its value, the protocol's)`` for every setting of ``protocol`` (config
    key → required value) a run departs from; a key the run's config lacks predates the option,
    whose default was the protocol's."""
    found = []
    for run in runs.itertuples():
        config = flat_config(run.run_dir)
        found += [(str(run.run_dir), k, config[k], v) for k, v in protocol.items() if k in config and config[k] != v]
    return found


def check_protocol(runs: pd.DataFrame, protocol: dict, page: str) -> None:
    """Raise when a run departs from ``protocol`` (:func:`protocol_departures`).

    Raises:
        SeqrecError: naming the folder, the key, its value and the protocol's.
    """
    for run_dir, key, value, wanted in protocol_departures(runs, protocol)[:1]:
        raise SeqrecError(
            f"'{run_dir}' was trained with {key}={value!r}, but {page} compares runs of the paper's "
            f"protocol ({key}={wanted!r}), so its numbers would be compared with numbers they do not "
            "match. Delete that result folder, or retrain it under the protocol (experiment=table2 or "
            "experiment=leaderboard)."
        )
