"""Experiment trackers beside a run's own files: the ``logger`` config group.

Without ``logger`` (the default) or with ``logger=[csv]`` a run writes its folder's files alone
(``epochs.csv``, ``metrics.json``; always written). ``logger=[csv,tensorboard]`` also writes
TensorBoard event files into ``<run folder>/tensorboard/``: per epoch (step = epoch) the
training loss, every validation metric and the epoch's seconds; at the end the final valid/test
metrics (step = the best epoch) and the resolved config (as text and as hyperparameters).
Several trackers can be on at once; each is a key of the ``logger`` node
(``conf/logger/<name>.yaml``) whose options are its constructor's.

A tracker follows the run's life: :meth:`Tracker.start` with the epoch the run starts at (1, or
the epoch after ``last.pt`` when resumed: a resumed run continues the same event files and drops
anything an interrupted process logged after its last saved epoch, so no step appears twice),
:meth:`Tracker.log_epoch` after each epoch, :meth:`Tracker.log_final` with ``metrics.json``'s
content, :meth:`Tracker.close` whatever happens. Only the process that writes the run folder
(rank 0 under DDP) tracks. An optional tracker whose package is missing is one paragraph naming
the extra to install, before any data is read.
"""

from __future__ import annotations

import importlib.util
import math
from pathlib import Path
from typing import Protocol

from seqrec.errors import ConfigError

# what each tracker needs beyond seqrec's own dependencies: (module to find, extra to install)
PACKAGES = {"tensorboard": ("tensorboard", "track")}


class Tracker(Protocol):
    """What the run writer calls on every tracker."""

    def start(self, run_dir: Path, config: dict, first_epoch: int) -> None:
        """Open the run's record; ``first_epoch`` > 1 when a resumed run continues it."""

    def log_epoch(self, row: dict) -> None:
        """One ``epochs.csv`` row (``epoch`` is the step)."""

    def log_final(self, metrics: dict) -> None:
        """The content of ``metrics.json``."""

    def close(self) -> None:
        """Flush and close; safe to call twice."""


def _numbers(row: dict) -> dict[str, float]:
    """The finite numeric entries of a row or metrics dict (bools and text left out)."""
    out = {}
    for key, value in row.items():
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            continue
        if math.isfinite(float(value)):
            out[key] = float(value)
    return out


def _flat(node: dict, prefix: str = "") -> dict[str, object]:
    out = {}
    for key, value in node.items():
        if isinstance(value, dict):
            out.update(_flat(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


class TensorBoardTracker:
    """TensorBoard event files in ``<run folder>/<log_dir>`` (``torch.utils.tensorboard``).

    Scalars: ``train/loss``, ``valid/<metric>``, ``test/ndcg@10`` when logged per epoch, and
    ``time/<column>`` for the seconds, per epoch; ``final/valid/<metric>``, ``final/test/<metric>``
    at the best epoch. Text: ``config`` (the resolved config as YAML). Hyperparameters: the
    config's scalar options with the final test metrics (TensorBoard's HParams tab).

    Args:
        log_dir: folder inside the run folder (an absolute path is used as it is).
        flush_secs: how often pending events are written.
    """

    name = "tensorboard"

    def __init__(self, log_dir: str = "tensorboard", flush_secs: int = 30):
        self.log_dir = log_dir
        self.flush_secs = int(flush_secs)
        self.writer = None
        self.config: dict = {}

    def start(self, run_dir: Path, config: dict, first_epoch: int) -> None:
        from torch.utils.tensorboard import SummaryWriter

        self.config = config
        # purge_step: events at steps >= first_epoch, logged by a process killed before it saved
        # that epoch, are dropped when the resumed run logs that step again
        self.writer = SummaryWriter(
            log_dir=str(Path(run_dir) / self.log_dir),
            flush_secs=self.flush_secs,
            purge_step=first_epoch if first_epoch > 1 else None,
        )
        if first_epoch == 1:
            import yaml

            self.writer.add_text("config", "```yaml\n" + yaml.safe_dump(config, sort_keys=False) + "```", 0)

    def log_epoch(self, row: dict) -> None:
        step = int(row["epoch"])
        for key, value in _numbers(row).items():
            if key == "epoch":
                continue
            name = "train/loss" if key == "train_loss" else key if "/" in key else f"time/{key}"
            self.writer.add_scalar(name, value, step)

    def log_final(self, metrics: dict) -> None:
        step = int(metrics.get("best_epoch") or 0)
        finals = {k: v for k, v in _numbers(metrics).items() if k.startswith(("valid/", "test/"))}
        for key, value in finals.items():
            self.writer.add_scalar(f"final/{key}", value, step)
        hparams = {
            k: v for k, v in _flat(self.config).items() if isinstance(v, (int, float, str, bool)) and k != "output_dir"
        }
        self.writer.add_hparams(
            hparams, {f"hparam/{k}": v for k, v in finals.items() if k.startswith("test/")}, run_name="hparams"
        )

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            self.writer = None


# the logger group's names; csv is the run folder's own files, always written
TRACKERS: dict[str, type | None] = {"csv": None, "tensorboard": TensorBoardTracker}


def check_loggers(node: dict | None) -> dict[str, dict]:
    """The checked ``logger`` node: tracker name → options.

    Raises:
        ConfigError: an unknown tracker (naming the valid ones), an option its constructor does
            not take, or a tracker whose package is not installed (naming the extra).
    """
    from seqrec.config.check import check_options

    node = dict(node or {})
    for name, options in node.items():
        if name not in TRACKERS:
            raise ConfigError(
                f"logger: unknown tracker {name!r}; choose from {', '.join(TRACKERS)} "
                f"(e.g. logger=[csv,tensorboard]), or add conf/logger/<name>.yaml for one of them."
            )
        if TRACKERS[name] is None:
            continue
        check_options(dict(options or {}), TRACKERS[name], f"logger.{name}")
        module, extra = PACKAGES.get(name, (None, None))
        if module is not None and importlib.util.find_spec(module) is None:
            raise ConfigError(
                f"logger={name} needs the {module} package, which is not installed. Install seqrec's "
                f"'{extra}' extra: pip install -e '.[{extra}]' (or pip install {module}), or leave {name} "
                "out of logger=[...]."
            )
    return node


def build_trackers(node: dict | None) -> list:
    """Tracker objects for the checked ``logger`` node (``csv`` needs none)."""
    return [TRACKERS[name](**dict(options or {})) for name, options in (node or {}).items() if TRACKERS[name]]


__all__ = ["TRACKERS", "TensorBoardTracker", "Tracker", "build_trackers", "check_loggers"]
