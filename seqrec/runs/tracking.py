"""Experiment trackers beside a run's own files: the ``logger`` config group.

Without ``logger`` (the default) or with ``logger=[csv]`` a run writes its folder's files alone
(``epochs.csv``, ``metrics.json``; always written). ``logger=[csv,tensorboard]`` also writes
TensorBoard event files into ``<run folder>/tensorboard/``: per epoch (step = epoch) the
training loss, every validation metric and the epoch's seconds; at the end the final valid/test
metrics (step = the best epoch) and the resolved config (as text and as hyperparameters).
``logger=[csv,mlflow]`` records the same in an MLflow run (:class:`MLflowTracker`), with the
config as params, run tags and the run's files as artifacts.
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
import os
from pathlib import Path
from typing import Protocol

from seqrec.errors import ConfigError, SeqrecError
from seqrec.options import PositiveInt, check_options

# what each tracker needs beyond seqrec's own dependencies: (module to find, extra to install)
PACKAGES = {"tensorboard": ("tensorboard", "track"), "mlflow": ("mlflow", "track")}


class Tracker(Protocol):
    """What the run writer calls on every tracker."""

    def check(self) -> None:
        """Raise :class:`~seqrec.errors.SeqrecError` when the tracker cannot record (its store is
        unreachable), before the run writes anything; a no-op where nothing can fail early."""

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

    def __init__(self, log_dir: str = "tensorboard", flush_secs: PositiveInt = 30):
        self.log_dir = log_dir
        self.flush_secs = int(flush_secs)
        self.writer = None
        self.config: dict = {}

    def check(self) -> None:
        """Nothing to reach: the event files go into the run folder."""

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
        if not any(k.startswith("test/") for k in finals):  # a pre-training run: no test metrics
            return
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


def mlflow_key(key: str) -> str:
    """A metric name as MLflow stores it: ``@`` is not allowed there, so ``valid/ndcg@20`` is
    ``valid/ndcg_at_20``."""
    return key.replace("@", "_at_")


class MLflowTracker:
    """An MLflow run per seqrec run (``mlflow.MlflowClient``, no global MLflow state).

    Records: params, the resolved config flattened (``model.hidden_size``, …); per epoch (step =
    epoch) every number of the ``epochs.csv`` row (``train_loss``, ``valid/<metric>``, seconds);
    at the end ``final/valid/<metric>`` and ``final/test/<metric>`` (step = the best epoch), tags
    ``dataset``, ``model``, ``loss``, ``seed``, ``commit`` and ``run_dir``, and ``metrics.json`` and
    ``config.yaml`` as artifacts. Metric names have ``@`` spelt ``_at_`` (:func:`mlflow_key`).

    The run's id is kept in ``<run folder>/mlflow.json``: a resumed run continues the same MLflow
    run, and a step it already holds (logged by a process killed before it saved that epoch; resume
    is exact, so the value is the same) is not logged twice. A run that stops before its end is
    left ``KILLED`` (resumable), one that finished ``FINISHED``.

    Args:
        tracking_uri: an MLflow tracking URI (a server, ``sqlite:///…``, ``databricks``); None: the
            SQLite store ``outputs/mlflow/mlflow.db`` under the current folder. An SQLite store keeps
            a new experiment's artifacts in ``artifacts/`` beside its file (see it with ``mlflow ui
            --backend-store-uri sqlite:///outputs/mlflow/mlflow.db``).
        experiment: the MLflow experiment's name (created when missing).
        run_name: the MLflow run's name; None: the run folder's path relative to the current folder.
    """

    name = "mlflow"
    RECORD = "mlflow.json"

    def __init__(self, tracking_uri: str | None = None, experiment: str = "seqrec", run_name: str | None = None):
        self.tracking_uri, self.experiment, self.run_name = tracking_uri, experiment, run_name
        self.client = None
        self.run_id: str | None = None
        self.logged: set[int] = set()
        self.finished = False

    def _store(self) -> tuple[str, str | None]:
        """``(tracking URI, artifact location)``; an SQLite store's folder is created."""
        uri = self.tracking_uri or f"sqlite:///{Path('outputs', 'mlflow', 'mlflow.db').resolve()}"
        artifacts = None  # a server decides; an SQLite store keeps them beside its file (not ./mlruns)
        if uri.startswith("sqlite:///"):
            db = Path(uri.removeprefix("sqlite:///"))
            db.parent.mkdir(parents=True, exist_ok=True)
            artifacts = (db.parent / "artifacts").resolve().as_uri()
        return uri, artifacts

    def check(self) -> None:
        """Reach the tracking store once, without MLflow's minutes of retries.

        Raises:
            SeqrecError: the store cannot be reached or refuses the request (URI and cause named).
        """
        import os

        from mlflow import MlflowClient

        uri, _ = self._store()
        quick = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0", "MLFLOW_HTTP_REQUEST_TIMEOUT": "10"}
        before = {key: os.environ.get(key) for key in quick}
        os.environ.update({key: value for key, value in quick.items() if before[key] is None})
        try:
            MlflowClient(tracking_uri=uri).search_experiments(max_results=1)
        except Exception as err:  # noqa: BLE001 - MLflow, requests and SQLAlchemy errors share no base
            cause = " ".join(str(err).split())[:300]
            raise SeqrecError(
                f"logger=mlflow cannot use the tracking store {uri} ({type(err).__name__}: {cause}). Start "
                "the MLflow server or correct logger.mlflow.tracking_uri (http://host:5000, sqlite:///<path>), "
                "or leave it null for the local SQLite store outputs/mlflow/mlflow.db. Nothing was written."
            ) from None
        finally:
            for key, value in before.items():
                if value is None:
                    os.environ.pop(key, None)

    def start(self, run_dir: Path, config: dict, first_epoch: int) -> None:
        import json

        from mlflow import MlflowClient

        from seqrec.atomic import atomic_write

        self.run_dir = Path(run_dir)
        uri, artifacts = self._store()
        self.client = MlflowClient(tracking_uri=uri)
        record = self.run_dir / self.RECORD
        saved = json.loads(record.read_text()) if first_epoch > 1 and record.is_file() else {}
        if saved.get("tracking_uri") == uri:  # a resumed run: the same MLflow run
            self.run_id = saved["run_id"]
            self.client.update_run(self.run_id, status="RUNNING")
            self.logged = {
                m.step
                for key in ("train_loss", "pretrain/loss")
                for m in self.client.get_metric_history(self.run_id, key)
            }
        else:
            self.run_id = self._create(config, artifacts)
            atomic_write(record, json.dumps({"tracking_uri": uri, "run_id": self.run_id}, indent=2) + "\n")
        if first_epoch > 1:  # earlier epochs the MLflow run lacks (a new record, or a gap) from epochs.csv
            import pandas as pd

            epochs = self.run_dir / "epochs.csv"
            for row in pd.read_csv(epochs).to_dict("records") if epochs.is_file() else []:
                if row["epoch"] < first_epoch:
                    self.log_epoch(row)

    def _create(self, config: dict, artifacts: str | None) -> str:
        """A new MLflow run (and its experiment when missing) with the config as params; its id."""
        from mlflow.entities import Param

        experiment = self.client.get_experiment_by_name(self.experiment)
        experiment_id = (
            experiment.experiment_id
            if experiment is not None
            else self.client.create_experiment(self.experiment, artifact_location=artifacts)
        )
        try:
            name = self.run_name or str(self.run_dir.resolve().relative_to(Path.cwd().resolve()))
        except ValueError:  # a run folder outside the current folder
            name = str(self.run_dir)
        tags = {"run_dir": str(self.run_dir.resolve()), "seed": str(config.get("seed"))}
        if isinstance(config.get("dataset"), dict) and config["dataset"].get("name"):
            tags["dataset"] = str(config["dataset"]["name"])
        run_id = self.client.create_run(experiment_id, run_name=name, tags=tags).info.run_id
        params = [Param(k, str(v)[:6000]) for k, v in _flat(config).items() if k != "output_dir"]
        for i in range(0, len(params), 100):  # MLflow takes at most 100 params per batch
            self.client.log_batch(run_id, params=params[i : i + 100])
        return run_id

    def _metrics(self, values: dict[str, float], step: int) -> None:
        import time

        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        batch = [Metric(mlflow_key(k), v, now, step) for k, v in values.items()]
        self.client.log_batch(self.run_id, metrics=batch)

    def log_epoch(self, row: dict) -> None:
        step = int(row["epoch"])
        if step in self.logged:
            return
        self._metrics({k: v for k, v in _numbers(row).items() if k != "epoch"}, step)
        self.logged.add(step)

    def log_final(self, metrics: dict) -> None:
        finals = {f"final/{k}": v for k, v in _numbers(metrics).items() if k.startswith(("valid/", "test/"))}
        self._metrics(finals, int(metrics.get("best_epoch") or 0))
        for key, tag in (("dataset", "dataset"), ("model", "model"), ("loss", "loss"), ("seed", "seed")):
            if metrics.get(key) is not None:
                self.client.set_tag(self.run_id, tag, str(metrics[key]))
        if metrics.get("git_commit"):
            self.client.set_tag(self.run_id, "commit", str(metrics["git_commit"]))
        for name in ("metrics.json", "config.yaml"):  # both written by now (metrics.json just before)
            if (self.run_dir / name).is_file():
                self.client.log_artifact(self.run_id, str(self.run_dir / name))
        self.finished = True

    def close(self) -> None:
        if self.client is not None and self.run_id is not None:
            self.client.set_terminated(self.run_id, status="FINISHED" if self.finished else "KILLED")
            self.client = None


# the logger group's names; csv is the run folder's own files, always written
TRACKERS: dict[str, type | None] = {"csv": None, "tensorboard": TensorBoardTracker, "mlflow": MLflowTracker}


def check_loggers(node: dict | None) -> dict[str, dict]:
    """The checked ``logger`` node: tracker name → options.

    Raises:
        ConfigError: an unknown tracker (naming the valid ones), an option its constructor does
            not take, or a tracker whose package is not installed (naming the extra).
    """
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
        if name == "mlflow":
            _check_mlflow_options(dict(options or {}))
        module, extra = PACKAGES.get(name, (None, None))
        if module is not None and importlib.util.find_spec(module) is None:
            raise ConfigError(
                f"logger={name} needs the {module} package, which is not installed. Install seqrec's "
                f"'{extra}' extra: pip install -e '.[{extra}]' (or pip install {module}), or leave {name} "
                "out of logger=[...]."
            )
    return node


def _check_mlflow_options(options: dict) -> None:
    """Refuse MLflow settings MLflow itself only refuses with a traceback, mid-run.

    Raises:
        ConfigError: an empty experiment name, or a file store (a path, ``file:``), which MLflow 3
            keeps in maintenance mode and refuses new runs in.
    """
    experiment = options.get("experiment", "seqrec")
    if not str(experiment).strip():
        raise ConfigError(
            f"logger.mlflow.experiment={experiment!r} is not valid: MLflow needs a non-empty experiment "
            "name. Set one (e.g. logger.mlflow.experiment=seqrec)."
        )
    uri = options.get("tracking_uri")
    file_store = uri is not None and (str(uri).startswith("file:") or "://" not in str(uri) and uri != "databricks")
    if file_store and os.environ.get("MLFLOW_ALLOW_FILE_STORE", "").lower() not in ("1", "true"):
        folder = str(uri).removeprefix("file:")
        folder = (folder[2:] if folder.startswith("//") else folder).rstrip("/") or "."
        raise ConfigError(
            f"logger.mlflow.tracking_uri={uri!r} names a file store (a folder like ./mlruns), which MLflow 3 "
            "keeps in maintenance mode and refuses new runs in. Use an SQLite store instead, e.g. "
            f"logger.mlflow.tracking_uri=sqlite:///{folder}/mlflow.db, a server (http://host:5000), or null "
            "for outputs/mlflow/mlflow.db (or set MLFLOW_ALLOW_FILE_STORE=true, MLflow's own opt-in)."
        )


def check_trackers(trackers: list) -> None:
    """:meth:`Tracker.check` of each tracker that has one (a tracker written for an older seqrec
    may not).

    Raises:
        SeqrecError: a tracker cannot record.
    """
    for tracker in trackers:
        check = getattr(tracker, "check", None)
        if check is not None:
            check()


def build_trackers(node: dict | None) -> list:
    """Tracker objects for the checked ``logger`` node (``csv`` needs none)."""
    return [TRACKERS[name](**dict(options or {})) for name, options in (node or {}).items() if TRACKERS[name]]


__all__ = [
    "TRACKERS",
    "MLflowTracker",
    "TensorBoardTracker",
    "Tracker",
    "build_trackers",
    "check_loggers",
    "check_trackers",
    "mlflow_key",
]
