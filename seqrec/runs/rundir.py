"""Run folders: the one reader of a finished one (recommend, the analyses, :func:`load_trained`), and
the clean-up of one that a failed run leaves with nothing in it (:func:`remove_unused_run_dir`).

A finished run folder (``train.py`` writes ``metrics.json`` last) holds ``config.yaml`` (the
resolved config), ``best.pt`` (the selected state with the model's data-derived constructor
arguments ``model_kwargs`` and the run's identity) and ``ids.npz`` (raw ids). :func:`read_run`
checks the files, reads them once and refuses a ``best.pt`` that another run wrote
(:func:`seqrec.runs.resume.check_identity`); :meth:`FinishedRun.build_model` rebuilds the model from
its saved constructor arguments, whatever its parameters are called.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from omegaconf import DictConfig, OmegaConf

from seqrec.data import LeaveOneOut, SequenceData
from seqrec.errors import DataError, SeqrecError
from seqrec.locks import RUN_LOCK, exclusive
from seqrec.options import plain
from seqrec.resolvers import hydra_subdir
from seqrec.runs.configs import upgrade_targets
from seqrec.runs.resume import check_identity
from seqrec.training import distributed as ddp
from seqrec.training.checkpoints import read_checkpoint

REQUIRED = ("config.yaml", "best.pt", "metrics.json")
# What a run folder holds before a run has saved anything to continue from: Hydra's record and log
# (``hydra.job.chdir: false``), the run's lock, and what a run writes before its first epoch ends.
UNUSED = {".hydra", "train.log", RUN_LOCK, "config.yaml", "ids.npz"}


@dataclass(frozen=True, eq=False)
class FinishedRun:
    """A finished run's files, read and checked (:func:`read_run`).

    Attributes:
        path: the run folder.
        cfg: its resolved ``config.yaml``.
        metrics: its ``metrics.json``.
        checkpoint: its ``best.pt`` (``model`` state dict, ``model_kwargs``, ``config``, …), on CPU.
    """

    path: Path
    cfg: DictConfig
    metrics: dict
    checkpoint: dict

    @property
    def state(self) -> dict:
        """The best model's state dict."""
        return self.checkpoint["model"]

    def model_kwargs(self) -> dict:
        """The model's data-derived constructor arguments (``n_items``, ``max_len``, …).

        ``best.pt`` records them; a ``best.pt`` from before that takes them from the shapes its
        shipped models used (item table ``[N + 1, d]``, S3-Rec's attribute table).

        Raises:
            SeqrecError: an old ``best.pt`` of a model without those tables.
        """
        saved = self.checkpoint.get("model_kwargs")
        if saved:
            return dict(saved)
        if "item_emb.weight" not in self.state:
            raise SeqrecError(
                f"best.pt in '{self.path}' records no model_kwargs (it predates them) and its model "
                "has no item_emb table to read the catalogue size from. Rerun it with the current code."
            )
        sizes = {"n_items": int(self.state["item_emb.weight"].shape[0]) - 1, "max_len": int(self.cfg.dataset.max_len)}
        if "attr_emb.weight" in self.state:
            sizes["n_attributes"] = int(self.state["attr_emb.weight"].shape[0]) - 1
        return sizes

    @property
    def n_items(self) -> int:
        """N, the catalogue size the model ranks."""
        return int(self.model_kwargs()["n_items"])

    def build_model(self, device: str | torch.device = "cpu") -> torch.nn.Module:
        """The run's model with its ``best.pt`` weights, in eval mode, without touching any data.

        Built on the meta device from the saved constructor arguments, then given the
        checkpoint's tensors as they are (``assign=True``): no random init, no second copy of a
        large item table.

        Raises:
            SeqrecError: the checkpoint does not fit the model its config describes.
        """
        from seqrec.config.schema import build_object, check_model

        options, _ = check_model(plain(self.cfg.model, "model"))  # constructor options, without stage keys
        with torch.device("meta"):
            model = build_object(options, "model", **self.model_kwargs())
        try:
            model.load_state_dict(self.state, assign=True)
            if any(t.is_meta for t in model.state_dict().values()):  # a buffer best.pt does not hold
                raise RuntimeError("parameters or buffers missing from the checkpoint")
        except RuntimeError as exc:
            raise SeqrecError(
                f"best.pt in '{self.path}' does not fit the model of its config.yaml ({exc}). "
                "The run was written by other code; rerun it."
            ) from exc
        set_tf32(bool(self.cfg.get("tf32", True)))  # re-evaluated on a GPU as it was trained
        return model.to(device).eval()

    def dataset(self, data_dir: str | os.PathLike | None = None):
        """The run's dataset (:func:`load_checked_dataset`) from ``data_dir``, default the run's."""
        return load_checked_dataset(
            self.cfg,
            Path(data_dir if data_dir is not None else self.cfg.data_dir),
            self.metrics.get("data_fingerprint"),
            self.path,
        )

    def item_tokens(self) -> np.ndarray | None:
        """Raw item id of each item index (``ids.npz``; ``[0]`` is padding), or None without the file.

        Raises:
            SeqrecError: the file is unreadable or lists another number of items than the model.
        """
        path = self.path / "ids.npz"
        if not path.is_file():
            return None
        try:
            with np.load(path, allow_pickle=False) as npz:
                tokens = npz["item_tokens"]
        except Exception as exc:  # zip, key and value errors
            raise SeqrecError(
                f"cannot read '{path}' ({type(exc).__name__}: {exc}); delete it "
                "to take the item ids from the run's dataset instead."
            ) from exc
        if len(tokens) != self.n_items + 1:
            raise SeqrecError(
                f"'{path}' lists {len(tokens) - 1} items but best.pt has {self.n_items}; "
                "the folder mixes files of two runs. Rerun it."
            )
        return tokens


# Hydra writes its record of a run (config.yaml, hydra.yaml, overrides.yaml) here, before the run
# decides whether it may use the folder; :func:`settle_hydra_record` moves it into place only then
INCOMING = ".hydra/incoming"


def set_tf32(enabled: bool) -> None:
    """CUDA matmuls and convolutions in TF32 or strict fp32 (the ``tf32`` option), set either way so
    an earlier run or evaluation in the same process leaves nothing behind; no effect on CPU."""
    torch.backends.cuda.matmul.allow_tf32 = enabled
    torch.backends.cudnn.allow_tf32 = enabled


def settle_hydra_record(run_dir: str | Path, resume, accepted: bool) -> None:
    """Move Hydra's record from :data:`INCOMING` to :func:`hydra_subdir` when the run was
    accepted, or delete it when the run was refused or found the folder finished, so a refused
    run leaves the folder's record of its own run as it was. No-op without an incoming record
    (a run started without Hydra)."""
    incoming = Path(run_dir) / INCOMING
    if not incoming.is_dir():
        return
    if accepted:
        target = Path(run_dir) / hydra_subdir(resume)
        target.mkdir(parents=True, exist_ok=True)
        for path in incoming.iterdir():
            os.replace(path, target / path.name)
    shutil.rmtree(incoming, ignore_errors=True)


def load_checked_dataset(cfg: DictConfig, data_dir: Path, fingerprint: str | None, run_dir: Path | None):
    """A run's dataset from ``data_dir``: the processed cache with the run's fingerprint when it is
    there (the source file is then not needed), else the source, refused when its fingerprint
    differs from the run's (``metrics.json``), so a model is never evaluated on data it was not
    trained on.

    Raises:
        DataError: missing or changed data.
    """
    from seqrec.data import load_dataset  # the data layer, only needed here
    from seqrec.data.cache import cached_dataset

    # the processed data the run was trained on, when data_dir still holds it: the source file
    # (a custom log) may have moved or changed since, and hashing it is the slow part
    if fingerprint is not None:
        data = cached_dataset(str(cfg.dataset.name), fingerprint, Path(data_dir))
        if data is not None:
            return data
    data = load_dataset(cfg.dataset, Path(data_dir))
    if fingerprint is not None and data.fingerprint != fingerprint:
        raise DataError(
            f"the run in '{run_dir}' was trained on {data.name} with data_fingerprint {fingerprint}, "
            f"but the data in '{data_dir}' now gives {data.fingerprint} (its source file or "
            "preprocessing changed). Pass --data-dir the data it was trained on, or retrain the run."
        )
    return data


def read_run(path: str | os.PathLike) -> FinishedRun:
    """Read and check a finished run folder.

    Raises:
        SeqrecError: the path is no folder or no run folder (no ``config.yaml``), the run is not
            finished (no ``best.pt`` or ``metrics.json``), a file is unreadable, or ``best.pt``
            was written by another run or on other data.
    """
    run_dir = Path(path)
    if not run_dir.is_dir():
        raise SeqrecError(
            f"'{run_dir}' is not a folder. Pass the folder of a finished run "
            "(it holds config.yaml, best.pt and metrics.json; train.py prints it at the end)."
        )
    missing = [name for name in REQUIRED if not (run_dir / name).is_file()]
    if "config.yaml" in missing:
        raise SeqrecError(
            f"'{run_dir}' has no config.yaml, so it is not a run folder. Pass the folder of a "
            "finished run (train.py prints it at the end: results in outputs/runs/...)."
        )
    if "best.pt" in missing and (run_dir / "result.json").is_file():  # seqrec.report.archive's marker
        raise SeqrecError(
            f"'{run_dir}' is an exported result folder (seqrec.report.export): it keeps a run's config, "
            "metrics and per-user ranks, not its model weights. Pass the run folder it was exported "
            "from (under outputs/), or train the run again from its config.yaml."
        )
    if missing:
        raise SeqrecError(
            f"'{run_dir}' has no {' and no '.join(missing)}: it is not a finished run (train.py writes "
            "metrics.json last; a run still training or interrupted has none, and its best.pt may be "
            f"from an early epoch). Wait for it to finish, continue it with `python train.py "
            f"resume={run_dir}`, or pass a finished run."
        )
    try:
        cfg = upgrade_targets(OmegaConf.load(run_dir / "config.yaml"))
        metrics = json.loads((run_dir / "metrics.json").read_text())
        checkpoint = read_checkpoint(run_dir / "best.pt")
        checkpoint["model"]
    except Exception as exc:  # yaml, json, zip and pickle errors share no base class
        raise SeqrecError(
            f"cannot read the run in '{run_dir}' ({type(exc).__name__}: {exc}). "
            "Its files are damaged or from other code; rerun it."
        ) from exc
    check_identity(
        checkpoint, OmegaConf.to_container(cfg, resolve=True), run_dir / "best.pt", metrics.get("data_fingerprint")
    )
    return FinishedRun(run_dir, cfg, metrics, checkpoint)


def remove_unused_run_dir(run_dir: Path | None, keep: bool = False) -> None:
    """Delete ``run_dir`` if it holds nothing a run could continue from or report (only Hydra's
    record and log, the lock, ``config.yaml`` and ``ids.npz``: a run that failed before its first
    epoch ended), then its empty parents up to the working directory. This command's unsettled
    Hydra record (:data:`INCOMING`) is always removed. Anything else in the folder (a
    checkpoint, a result, a user's file), or another live run holding its lock, keeps it; so does
    ``keep`` (a folder the user named with ``resume=``, which this command did not make)."""
    if run_dir is None or not Path(run_dir).is_dir():
        return
    run_dir, cwd = Path(run_dir).resolve(), Path.cwd().resolve()
    if run_dir == cwd or run_dir in cwd.parents:
        return
    shutil.rmtree(run_dir / INCOMING, ignore_errors=True)  # this command's record, never settled
    with contextlib.suppress(OSError):
        (run_dir / INCOMING).parent.rmdir()  # .hydra/ when the record was all it held
    if keep or any(entry.name not in UNUSED for entry in run_dir.iterdir()):
        return
    try:
        with exclusive(run_dir / RUN_LOCK):  # never the folder of a run that is still going
            shutil.rmtree(run_dir)
        for parent in run_dir.parents:
            if parent == cwd or cwd not in parent.parents:
                break
            parent.rmdir()  # OSError once a parent holds anything else
    except (OSError, SeqrecError):
        pass


def share_run_dir(cfg: DictConfig) -> DictConfig:
    """DDP (torchrun): every rank uses rank 0's run folder; a non-zero rank deletes the folder its own Hydra made
    (it holds only Hydra's files: each torchrun process gets its own timestamp), and in a sweep
    (``-m``) the sweep folder around it when that holds nothing else (Hydra's ``multirun.yaml``);
    it logs only warnings and writes nothing. The config is returned with ``output_dir`` set."""
    if not ddp.active():
        return cfg
    own = str(cfg.output_dir)
    shared = ddp.broadcast_object(own)
    if ddp.is_main():
        return cfg
    root = logging.getLogger()
    for handler in [h for h in root.handlers if isinstance(h, logging.FileHandler)]:
        root.removeHandler(handler)
        handler.close()
    root.setLevel(logging.WARNING)
    if Path(own).resolve() != Path(shared).resolve():
        remove_unused_run_dir(Path(own))
        _remove_own_sweep_dir(Path(own).parent, Path(shared))
    cfg = cfg.copy()
    OmegaConf.update(cfg, "output_dir", shared)
    return cfg


def _remove_own_sweep_dir(folder: Path, shared: Path) -> None:
    """Remove ``folder`` and the folders above it that hold nothing but Hydra's ``multirun.yaml``,
    up to the first one that also holds rank 0's run folder ``shared``."""
    keep = {p.resolve() for p in shared.parents}
    while folder.is_dir() and folder.resolve() not in keep:
        if any(p.name != "multirun.yaml" for p in folder.iterdir()):
            return
        (folder / "multirun.yaml").unlink(missing_ok=True)
        folder.rmdir()
        folder = folder.parent


@dataclass(frozen=True, eq=False)
class TrainedRun:
    """A finished run rebuilt from its folder (:func:`load_trained`): the config it recorded, its
    data and split (on the requested device) and its best model, in eval mode."""

    cfg: DictConfig
    data: SequenceData
    split: LeaveOneOut
    model: torch.nn.Module


def load_trained(
    run_dir: str | Path, data_dir: str | Path | None = None, device: str | torch.device = "cpu"
) -> TrainedRun:
    """Rebuild the data and the best model of a finished run, for re-evaluation or analysis.

    The folder is read by :func:`seqrec.runs.rundir.read_run` (files checked, ``best.pt`` refused when
    another run wrote it); the model is rebuilt from the constructor arguments ``best.pt`` saved,
    and the dataset is read from ``data_dir`` (default: the run's ``data_dir``, relative to the
    current directory) and refused when its fingerprint differs from the run's. Nothing of a
    pre-training stage is built.

    Raises:
        SeqrecError: a file is missing or unreadable, the data changed since training, or the
            checkpoint does not fit the model its config describes.
    """
    run = read_run(run_dir)
    cfg = run.cfg
    data_dir = Path(data_dir if data_dir is not None else cfg.data_dir)
    cfg.data_dir = str(data_dir)
    data = run.dataset(data_dir)
    split = LeaveOneOut.build(data, max_len=int(cfg.dataset.max_len)).to(device)
    model = run.build_model(device)
    return TrainedRun(cfg=cfg, data=data, split=split, model=model)
