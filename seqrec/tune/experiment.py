"""The best trial's configuration as ``conf/experiment/<name>.yaml`` (``experiment=<name>``)."""

from __future__ import annotations

import re
from datetime import datetime, timezone
from pathlib import Path

import pandas as pd
import yaml

from seqrec.atomic import atomic_write
from seqrec.errors import SeqrecError

# overrides of a trial that do not change its result, left out of the best configuration
NOT_RESULT_KEYS = ("hparams_search", "num_threads", "trainer.progress", "device", "seed", "seeds")
# config groups of a trial written into the best configuration (as `override /group: choice`)
CHOICE_GROUPS = ("dataset", "model", "loss", "optimizer")


def trial_overrides(run_dir: str | Path) -> tuple[dict, dict]:
    """``(choices, overrides)`` of a trial run: its config-group choices (dataset, model, loss,
    optimizer) and its command-line ``key=value`` overrides that change results (the searched
    parameters and fixed settings; not ``NOT_RESULT_KEYS``).

    Reads ``<run_dir>/.hydra/hydra.yaml``. Raises SeqrecError when it is missing or unreadable.
    """
    path = Path(run_dir) / ".hydra" / "hydra.yaml"
    try:
        hydra_cfg = yaml.safe_load(path.read_text())["hydra"]
    except (OSError, yaml.YAMLError, KeyError, TypeError) as exc:
        raise SeqrecError(
            f"Cannot read the trial's Hydra record '{path}': {exc}. The trial folder "
            "is incomplete; pick another search folder or rerun the search."
        ) from exc
    recorded = hydra_cfg["runtime"]["choices"]
    choices = {k: recorded[k] for k in CHOICE_GROUPS if recorded.get(k)}
    overrides = {}
    for item in hydra_cfg["overrides"]["task"]:
        key, _, value = item.partition("=")
        if key.lstrip("+~") in NOT_RESULT_KEYS or key.startswith(("hydra.", "hydra/")) or "/" in key:
            continue
        if key in choices:  # a config group chosen on the command line
            continue
        overrides[key] = parse_value(value)
    return choices, overrides


_NUMBER = re.compile(r"[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?")


def parse_value(text: str):
    """A command-line override's value as Hydra reads it: numbers (``1e-06`` too, which YAML 1.1
    would keep as a string) as int/float, else YAML (``true``, ``null``, lists, strings)."""
    if _NUMBER.fullmatch(text):
        number = float(text)
        return int(text) if re.fullmatch(r"[-+]?\d+", text) else number
    return yaml.safe_load(text)


def experiment_yaml(choices: dict, overrides: dict, header: str) -> str:
    """The text of ``conf/experiment/<name>.yaml``: group choices as ``override /group: choice``
    defaults and the overrides as nested keys (``model.dropout: 0.3`` → ``model: {dropout: 0.3}``)."""
    nested: dict = {}
    for key, value in sorted(overrides.items()):
        node = nested
        *parents, leaf = key.split(".")
        for p in parents:
            node = node.setdefault(p, {})
        node[leaf] = value
    lines = ["# @package _global_"]  # Hydra reads it only as the file's first line
    lines += [f"# {line}".rstrip() for line in header.splitlines()]
    lines += ["defaults:"]
    lines += [f"  - override /{group}: {choice}" for group, choice in choices.items()]
    body = yaml.safe_dump(nested, sort_keys=True, default_flow_style=False)
    return "\n".join(lines) + "\n\n" + body


def write_best_experiment(
    best: pd.Series,
    trials: pd.DataFrame,
    study_name: str,
    search_dir: Path,
    monitor: str,
    conf_dir: Path,
    name: str,
    top: pd.DataFrame | None = None,
) -> Path:
    """Write the best trial's configuration as ``<conf_dir>/<name>.yaml``; returns the path.
    ``top``: the table of :func:`seqrec.tune.top.rerun_top` when the choice was on a mean over seeds."""
    choices, overrides = trial_overrides(best["run_dir"])
    n_done = int((trials["state"] == "COMPLETE").sum())
    chosen = f"trial {int(best['number'])}, {monitor} = {best['value']:.6f} (validation)"
    if top is not None:
        first = top.iloc[0]
        chosen = (
            f"trial {int(best['number'])}, the best mean {monitor} of the {len(top)} best trials rerun with "
            f"seeds {first['seeds']}: {first['mean']:.6f} ± {first['std']:.6f} (validation; its search run "
            f"{best['value']:.6f})"
        )
    header = (
        f"Best of {n_done} complete trials ({len(trials)} in all) of the search {study_name!r} "
        f"({search_dir}): {chosen}.\n"
        f"Written by `python -m seqrec.tune` on {datetime.now(timezone.utc):%Y-%m-%d}. Rerun it:\n"
        f"  python train.py -m experiment={name} seed=42,43,44,45,46"
    )
    path = conf_dir / f"{name}.yaml"
    conf_dir.mkdir(parents=True, exist_ok=True)
    return atomic_write(path, experiment_yaml(choices, overrides, header))
