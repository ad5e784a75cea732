"""Resuming runs: which folder a run writes to, whether it is finished, and its saved state.

A run folder without ``metrics.json`` but with ``last.pt`` is an unfinished run. It is continued

* with ``python train.py resume=<run folder>`` (the config saved in the folder is used; an
  option given on the command line must equal the saved value), or
* by re-running into the same fixed folder (a sweep such as ``experiment=table2``), where the
  composed config must equal the saved one.

A finished run (``metrics.json`` exists) is skipped with a message, never retrained; a finished run
of another config (its ``config.yaml`` differs) is refused, not returned as this config's. Options that
do not change what a run computes (:data:`RUNTIME_KEYS`: threads, progress bars, paths) may differ
on resume; so may the device, at the cost of bit-exactness (a resumed run is exact on the device it
started on).
"""

from __future__ import annotations

import contextlib
import json
import logging
import signal
import threading
from dataclasses import dataclass
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from seqrec.data.cache import current_fingerprint
from seqrec.errors import ConfigError, DataError, SeqrecError
from seqrec.runs.configs import (
    RUNTIME_KEYS,
    config_differences,
    irrelevant_options,
    upgrade_targets,
    with_legacy_options,
)
from seqrec.training.checkpoints import DamagedCheckpoint, StopRequest, read_checkpoint

log = logging.getLogger(__name__)


@dataclass
class RunStart:
    """How a run starts: ``cfg`` to run with, and ``state`` (``last.pt``) or ``finished`` metrics."""

    cfg: DictConfig
    out_dir: Path
    state: dict | None = None
    finished: dict | None = None


def override_keys(overrides: list[str]) -> list[str]:
    """The config keys named by Hydra command-line overrides (``+a.b=1`` → ``a.b``; groups too)."""
    keys = []
    for text in overrides:
        key = text.split("=", 1)[0].lstrip("+~")
        if key and not key.startswith("hydra") and key != "experiment":
            keys.append(key)
    return keys


_EMPTY_RESUME = (
    "resume= is empty (an unset shell variable?), so there is no run to continue. Pass the run "
    "folder (resume=outputs/runs/...), or leave resume out to start a new run."
)
_RETRAIN = "delete the folder {folder} and train the run again (the same command, without resume=)."


def load_state(path: Path) -> dict:
    """Read a run's checkpoint (``last.pt``, ``best.pt``).

    Raises:
        SeqrecError: the file is damaged (e.g. cut short by a crash of an older version).
    """
    try:
        return read_checkpoint(path)
    except DamagedCheckpoint as err:
        raise SeqrecError(f"{err}. The run cannot go on from it: {_RETRAIN.format(folder=path.parent)}") from None


def check_best(path: Path, state: dict, config: dict, data_fingerprint: str | None = None) -> None:
    """Before an unfinished run continues: its ``best.pt`` is there once an epoch was validated,
    readable, this run's (:func:`check_identity`) and of the best epoch ``last.pt`` records. The
    run's reported metrics are computed with it at the end, so a missing or foreign ``best.pt``
    would report the last epoch's or another run's model under this run's name.

    Args:
        path: the run's ``best.pt``.
        state: its ``last.pt`` (``state["loop"]``: ``best_epoch``, 0 before the first
            validation, and ``epoch``, the epochs finished).
        config, data_fingerprint: as for :func:`check_identity`.

    Raises:
        SeqrecError: naming the file, what is wrong and the fix.
    """
    loop = state.get("loop", {})
    best_epoch = int(loop.get("best_epoch", 0))
    if best_epoch < 1:
        return
    if not path.is_file():
        raise SeqrecError(
            f"{path} is missing, but the run's last.pt records epoch {best_epoch} as its best: the "
            f"weights its results must come from are gone. Put best.pt back, or {_RETRAIN.format(folder=path.parent)}"
        )
    best = load_state(path)
    check_identity(best, config, path, data_fingerprint)
    # a best.pt of a later epoch than last.pt has finished was written in the epoch the stop cut
    # short (best.pt is saved before last.pt); the resumed run redoes that epoch and writes it again
    written_since = "epoch" in best and int(best["epoch"]) > int(loop.get("epoch", 0))
    if "epoch" in best and int(best["epoch"]) != best_epoch and not written_since:
        raise SeqrecError(
            f"{path} holds epoch {int(best['epoch'])}, but the run's last.pt records epoch {best_epoch} "
            f"as its best, so the two files are not of one run. Put the run's own best.pt back, or "
            f"{_RETRAIN.format(folder=path.parent)}"
        )


# long: the decision table of a run folder's states (new, finished, unfinished, another config) in one place
def resume_problem(resume: str) -> str | None:
    """Why ``resume=<resume>`` names no run folder (one paragraph), or None when it names one
    (a folder holding ``config.yaml``). Checked before Hydra creates or writes anything there
    (:class:`seqrec.runs.cli.OutputFolderCheck`), so a wrong path is left as it was."""
    if not str(resume).strip():
        return _EMPTY_RESUME
    path = Path(resume).expanduser()
    example = "e.g. resume=outputs/runs/lastfm/sasrec-cce/seed42-<time>"
    if path.is_file():
        return (
            f"resume={resume} names a file, not a run folder. Pass the folder that holds the run's config.yaml "
            f"(resume={path.parent} if this file is in it), {example}."
        )
    if not path.is_dir():
        return f"resume={resume}: there is no folder {path}. Pass the folder a run printed ('results in …'), {example}."
    if not (path / "config.yaml").is_file():
        return (
            f"resume={resume}: {path} is not a run folder (it has no config.yaml). Pass the folder a run "
            f"printed ('results in …'), {example}."
        )
    try:
        _saved_config(path / "config.yaml")
    except ConfigError as err:
        return str(err)
    return None


def prepare(cfg: DictConfig, overrides: list[str] | None = None) -> RunStart:
    """Decide where and how the run starts (see the module docstring).

    Args:
        cfg: the composed config; ``cfg.resume`` (a run folder) or ``cfg.output_dir``.
        overrides: the command-line overrides (``resume=`` checks only the options they name).

    Raises:
        ConfigError: ``resume`` names no run folder, or the config differs from the saved one of
            the unfinished or finished run in the folder (each differing key with both values).
    """
    resume = cfg.get("resume")
    if resume is not None and not str(resume).strip():
        raise ConfigError(_EMPTY_RESUME)
    return _resume_named(cfg, str(resume), overrides) if resume is not None else _start_in_output_dir(cfg)


def _start_in_output_dir(cfg: DictConfig) -> RunStart:
    """:func:`prepare` without ``resume=``: a new run, or the finished or unfinished run of the
    same config already in ``output_dir`` (a sweep re-run into fixed folders)."""
    out_dir = Path(cfg.output_dir)
    if (out_dir / "metrics.json").is_file():
        _check_finished_config(cfg, out_dir)
        return RunStart(cfg, out_dir, finished=json.loads((out_dir / "metrics.json").read_text()))
    if not (out_dir / "last.pt").is_file():
        return RunStart(cfg, out_dir)
    state = load_state(out_dir / "last.pt")
    changed = config_differences(state["config"], OmegaConf.to_container(cfg, resolve=True))
    if changed:
        raise ConfigError(
            f"the folder {out_dir} holds an unfinished run with another config, so it cannot be "
            f"continued: {'; '.join(changed)}. Give the run another folder (hydra.run.dir or "
            "hydra.sweep.dir), or delete the old one to start over."
        )
    log.info("continuing the unfinished run in %s after epoch %d", out_dir, state["loop"]["epoch"])
    return RunStart(cfg, out_dir, state=state)


def _resume_named(cfg: DictConfig, resume: str, overrides: list[str] | None) -> RunStart:
    """:func:`prepare` with ``resume=<folder>``: the folder's saved config, with the runtime
    options of the command line (:data:`RUNTIME_KEYS`) and no other changes."""
    out_dir = Path(resume).expanduser()
    problem = resume_problem(str(resume))
    if problem is not None:
        raise ConfigError(problem)
    saved = _saved_config(out_dir / "config.yaml")
    runtime = {key: OmegaConf.select(cfg, key) for key in RUNTIME_KEYS if OmegaConf.select(cfg, key) is not None}
    given = override_keys(overrides or [])
    changed = config_differences(
        OmegaConf.to_container(saved, resolve=True), OmegaConf.to_container(cfg, resolve=True), given
    )
    if changed:
        raise ConfigError(
            f"resume={resume}: the command line changes the saved config of that run: "
            f"{'; '.join(changed)}. A resumed run keeps its config; drop these options, or start a "
            "new run without resume=."
        )
    for key, value in runtime.items():
        if key not in ("resume", "output_dir"):
            OmegaConf.update(saved, key, value, force_add=True)
    OmegaConf.update(saved, "output_dir", str(out_dir), force_add=True)
    if (out_dir / "metrics.json").is_file():
        return RunStart(saved, out_dir, finished=json.loads((out_dir / "metrics.json").read_text()))
    if not (out_dir / "last.pt").is_file():
        raise ConfigError(
            f"resume={resume}: the run in {out_dir} saved no last.pt (it stopped before its first "
            "epoch ended, or an older seqrec wrote it), so there is nothing to continue; start it anew."
        )
    state = load_state(out_dir / "last.pt")
    check_identity(state, OmegaConf.to_container(saved, resolve=True), out_dir / "last.pt")
    log.info("resuming %s after epoch %d", out_dir, state["loop"]["epoch"])
    return RunStart(saved, out_dir, state=state)


def _saved_config(path: Path) -> DictConfig:
    """A run folder's ``config.yaml``.

    Raises:
        ConfigError: the file is not YAML or holds no mapping (edited by hand, damaged).
    """
    try:
        saved = OmegaConf.load(path)
    except Exception as err:  # noqa: BLE001 - yaml and omegaconf errors share no base class
        saved = err
    if not isinstance(saved, DictConfig) or not saved:
        problem = (
            f"{type(saved).__name__}: {' '.join(str(saved).split())}"  # yaml's message spans lines
            if isinstance(saved, Exception)
            else "it holds no settings"
        )
        raise ConfigError(
            f"{path} cannot be read as the run's config ({problem}), so the run cannot be continued "
            f"with the settings it was trained with. Restore the file, or {_RETRAIN.format(folder=path.parent)}"
        )
    return upgrade_targets(saved)


def check_identity(checkpoint: dict, config: dict, path: Path, data_fingerprint: str | None = None) -> None:
    """Refuse a checkpoint (``last.pt``, ``best.pt``) that another run wrote: the resolved config it
    carries (when it carries one) must equal ``config`` (the folder's ``config.yaml``; :data:`RUNTIME_KEYS` aside) and,
    when both are known, its data fingerprint must equal ``data_fingerprint``.

    Raises:
        SeqrecError: naming the file, each differing key with both values, and the fix.
        DataError: the config matches but the data does not: the dataset changed under the run.
    """
    saved = checkpoint.get("config")
    # a checkpoint without a config (written outside train.py, e.g. by a benchmark) cannot be checked
    changed = config_differences(saved, config) if isinstance(saved, dict) and saved else []
    theirs = checkpoint.get("data_fingerprint")
    if data_fingerprint is not None and theirs is not None and theirs != data_fingerprint:
        if not changed:  # the folder's own checkpoint: what changed is the data under it
            raise DataError(data_changed(path.parent, theirs, data_fingerprint, config))
        changed.append(f"data_fingerprint: {theirs!r} → {data_fingerprint!r}")
    if changed:
        raise SeqrecError(
            f"{path} was written by another run than the one of its folder ({'; '.join(changed)}; "
            f"checkpoint value → the folder's config.yaml), so continuing or evaluating it would report "
            f"that run's model as this one's. Put the folder's own checkpoint back, or "
            f"{_RETRAIN.format(folder=path.parent)}"
        )


def data_changed(run_dir: Path, trained_on: str, now: str, config: dict) -> str:
    """The paragraph for a run whose dataset changed since it was trained or started: the
    fingerprints, where the data comes from, and the two ways on."""
    dataset = config.get("dataset") or {}
    source = dataset.get("path") or f"the {dataset.get('name', 'dataset')} files in {config.get('data_dir', 'data')}"
    return (
        f"the run in {run_dir} was trained on data with data_fingerprint {trained_on}, but {source} now "
        f"gives {now} (the source file or its preprocessing changed since), so its model and metrics are "
        "not this data's. Restore the data the run used, or give the run another folder (hydra.run.dir "
        "or hydra.sweep.dir) to train it on the current data."
    )


def check_finished_data(cfg: DictConfig, out_dir: Path, metrics: dict) -> None:
    """Refuse the finished run in ``out_dir`` when the data ``cfg`` names now gives another
    fingerprint than the one it recorded (``metrics.json``): a re-run of its command would otherwise
    return metrics of other data. Only the source file is hashed (nothing is fetched or
    preprocessed); a run whose data is not here, or that recorded no fingerprint, is taken as it
    is, the former with a warning.

    Raises:
        DataError: :func:`data_changed`'s paragraph.
    """
    theirs = metrics.get("data_fingerprint")
    now = current_fingerprint(cfg.dataset, Path(cfg.data_dir))
    if now is None:
        log.warning("%s: the dataset's source file is not in %s, so the finished run is not checked against it",
                    out_dir, cfg.data_dir)  # fmt: skip
    elif theirs is not None and theirs != now:
        raise DataError(data_changed(out_dir, theirs, now, OmegaConf.to_container(cfg, resolve=True)))


def _check_finished_config(cfg: DictConfig, out_dir: Path) -> None:
    """Raise ConfigError when the finished run in ``out_dir`` was trained with another config than
    ``cfg``: its metrics would otherwise be returned as this config's (e.g. a report's rerun folder
    after the search's best trial changed). Compared as :func:`config_differences` compares (options
    added to seqrec since against :data:`ADDED_OPTIONS`); a folder without ``config.yaml`` cannot be
    checked and is taken as it is."""
    path = out_dir / "config.yaml"
    if not path.is_file():
        return
    saved = OmegaConf.to_container(OmegaConf.load(path), resolve=True)
    metrics = json.loads((out_dir / "metrics.json").read_text())
    current = OmegaConf.to_container(cfg, resolve=True)
    changed = config_differences(with_legacy_options(saved, metrics), current, ignore=irrelevant_options(metrics))
    if changed:
        raise ConfigError(
            f"the folder {out_dir} holds a finished run of another config, so its metrics are not this "
            f"run's: {'; '.join(changed)}. Give the run another folder (hydra.run.dir or hydra.sweep.dir), "
            "or delete the old one to train this config."
        )


@contextlib.contextmanager
def stop_on_signals():
    """Yield a :class:`StopRequest` that SIGTERM and SIGINT (Ctrl-C) set; the trainer then stops at
    the end of the running batch. A second Ctrl-C interrupts at once. Handlers are restored after.
    Outside the main thread (no signal handlers there) the request is never set."""
    stop = StopRequest()
    if threading.current_thread() is not threading.main_thread():
        yield stop
        return
    previous = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGINT)}

    def handler(signum, frame):
        if stop.signal is not None and signum == signal.SIGINT:
            raise KeyboardInterrupt
        stop(signum, frame)
        log.warning("received %s: stopping after the running batch and saving last.pt", signal.Signals(signum).name)

    for sig in previous:
        signal.signal(sig, handler)
    try:
        yield stop
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)
