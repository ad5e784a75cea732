"""How every entry point reports user errors: one paragraph on stderr, exit status 1, no traceback.

``train.py`` wraps its run in :func:`report_errors`; the other command lines (``python -m
seqrec.report``, ``seqrec.analysis``, ``seqrec.data.fetch``) call :func:`run_main`, which goes
through the same context manager and returns the exit status.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

from hydra.core.hydra_config import HydraConfig
from hydra.experimental.callback import Callback
from omegaconf import DictConfig
from omegaconf.errors import MissingMandatoryValue
from rich.console import Console
from rich.markup import escape

from seqrec.data.spec import name_problem
from seqrec.errors import RunInterrupted, SeqrecError
from seqrec.runs.resume import resume_problem
from seqrec.runs.rundir import remove_unused_run_dir
from seqrec.training import distributed


# long: one branch per way a run ends (bad input, interruption, Ctrl-C, bug), each with its exit status
@contextlib.contextmanager
def report_errors(
    keep_going: bool = False,
    run_dir: Path | None = None,
    keep_run_dir: bool = False,
    sweep_job: str | None = None,
    search_dir: str | None = None,
):
    """Turn a :class:`SeqrecError`, an ``OSError`` (:func:`io_message`) or a missing ``???`` option
    into one paragraph on stderr and ``SystemExit(1)``; a run stopped by SIGTERM/Ctrl-C with its
    state saved into a one-line note on how to resume and ``SystemExit(128 + signal)``; any other
    Ctrl-C into ``SystemExit(130)``. Any other exception (a bug) keeps its traceback; the run
    folder is cleaned up the same way.

    Args:
        keep_going: in a sweep, print the message and re-raise the error as an ordinary
            exception instead, so Hydra marks this job failed, runs the others, and exits
            non-zero at the end.
        run_dir: the run folder Hydra made; on an error it is removed when it holds nothing but
            Hydra's own files (``.hydra/``, ``train.log``), so a failed run leaves no folder
            that looks like a run.
        keep_run_dir: keep ``run_dir`` itself whatever it holds (``resume=`` named it: it was
            there before this command); only this command's Hydra record goes.
        sweep_job: with ``keep_going``, the sweep job's number and overrides (``"#3 seed=44"``):
            the job's paragraph is recorded for :class:`SweepSummary` and the error not re-raised,
            so the sweep ends with one summary of its failed jobs instead of Hydra's traceback of
            the first one.
        search_dir: the search folder when the run is a trial of a hyper-parameter search: a
            stopped run's note says that running the search's command again with that folder
            continues it.
    """

    def clean_up(folder: Path | None) -> None:
        remove_unused_run_dir(folder, keep=keep_run_dir)

    try:
        yield
    except RunInterrupted as err:  # the whole sweep stops too: the job was asked to end
        if err.pretraining is not None:  # the run folder holds nothing to continue (pre-training's last.pt does)
            clean_up(run_dir)
        note = str(err)
        if search_dir is not None and err.pretraining is None:
            note += (
                f". In a search, run the search's command again with hydra.sweep.dir={search_dir} instead: it "
                "continues the search and this trial's run (as a new trial number, from this last.pt)"
            )
        _print(note)
        raise SystemExit(err.exit_code) from None
    except (SeqrecError, OSError) as err:  # OSError: a folder that is a file, read-only, full
        clean_up(run_dir)  # in a sweep too: a failed job leaves no folder that looks like a run
        message = str(err) if isinstance(err, SeqrecError) else io_message(err)
        if not keep_going:
            _fail(message)
        _print(message)
        if sweep_job is None:
            raise
        FAILED_JOBS.append((sweep_job, message))
    except MissingMandatoryValue as err:
        clean_up(run_dir)
        key = getattr(err, "full_key", None) or "a required option"
        _fail(
            f"{key} has no value (it is '???' in its config file). Set it on the command line, "
            f"e.g. `python train.py ... {key}=<value>`."
        )
    except KeyboardInterrupt:
        Console(stderr=True).print("interrupted: this run wrote no metrics.json, so it does not count as a result.")
        raise SystemExit(130) from None
    except Exception:  # a bug: its traceback is what a report needs, but no dead run folder
        clean_up(run_dir)
        raise


def positive_int(text: str) -> int | None:
    """``text`` as a whole number >= 1, or None when it is not one (for argparse types)."""
    try:
        value = int(text)
    except ValueError:
        return None
    return value if value >= 1 else None


def thread_count(text: str) -> int:
    """argparse type of ``--num-threads``: a whole number >= 1 (torch's thread count)."""
    value = positive_int(text)
    if value is None:
        raise argparse.ArgumentTypeError(f"{text!r} is not a thread count: give a whole number >= 1 (e.g. 4)")
    return value


def io_message(err: OSError) -> str:
    """One paragraph for a failed file operation: what failed, on which path, and the fix."""
    path = err.filename if err.filename is not None else "a file"
    other = f" (and '{err.filename2}')" if err.filename2 is not None else ""
    return (
        f"cannot use '{path}'{other}: {err.strerror or err}. Check that the path exists, that every part "
        "of it that should be a folder is one (not a file), that it is writable and that the disk has "
        "space, or pass another path."
    )


@contextlib.contextmanager
def stdout_pipe():
    """Write to standard output inside this block; a reader that stops early (``... | head -1``)
    ends the command quietly with exit status 141.

    141 is 128 + SIGPIPE, what the shell reports for ``cat`` or ``grep`` in the same place, so
    ``set -o pipefail`` scripts see this command like any other Unix tool, and a caller can tell
    that the output was cut short. Standard output is pointed at the null device, or Python's own
    flush at exit would print "Exception ignored ... BrokenPipeError" after all.

    Raises:
        SystemExit: 141, when the reader closed the pipe.
    """
    try:
        yield
        sys.stdout.flush()  # the last buffered rows meet a closed pipe here, not at interpreter exit
    except BrokenPipeError:
        with contextlib.suppress(OSError, ValueError):  # a stdout without a file descriptor (tests)
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
            os.close(devnull)
        raise SystemExit(128 + signal.SIGPIPE) from None


def run_main(body: Callable[[], object]) -> int:
    """Run a command line's ``body()``; returns 0, or the exit status :func:`report_errors` gives
    a user error (1, after printing its paragraph) or Ctrl-C (130)."""
    try:
        with report_errors():
            body()
    except SystemExit as exc:
        return int(exc.code or 0)
    return 0


def _print(message: str) -> None:
    if not distributed.is_main():  # DDP: one message, from rank 0 (every rank exits alike)
        return
    # escape: a message may contain [brackets] (paths, JSON examples) that rich would read as markup
    Console(stderr=True).print(f"[bold red]error:[/] {escape(message)}", highlight=False, soft_wrap=True)


def _fail(message: str) -> None:
    _print(message)
    raise SystemExit(1)


def check_override_syntax(argv: list[str]) -> None:
    """Refuse an override Hydra cannot parse with the fix for the usual cause, before Hydra's
    grammar error ("mismatched input '.' expecting <EOF>"), which names neither.

    Hydra reads spaces, parentheses, brackets, braces, commas, quotes and ``=`` in a value as
    syntax, so a file name such as ``ratings (1).csv`` must be quoted inside the argument.

    Raises:
        SystemExit: status 1 after one paragraph naming the override and the quoted form.
    """
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.errors import OverrideParseException

    parser = OverridesParser.create()
    for arg in argv:
        if arg.startswith("-") or "=" not in arg:
            continue  # flags (-m, --cfg job) and their values are argparse's
        try:
            parser.parse_overrides([arg])
        except OverrideParseException as err:
            key, _, value = arg.partition("=")
            reason = str(err).splitlines()[0]
            _fail(
                f"`{arg}`: Hydra cannot read this override ({reason}). In a value it reads spaces, "
                "( ) [ ] { } , = and quotes as syntax; quote the value inside the argument, e.g. "
                f"""'{key}="{value}"' (the outer quotes are the shell's)."""
            )


def check_group_overrides(argv: list[str], conf_dir: str | Path) -> None:
    """Refuse ``<group>=null`` on the command line before Hydra sees it.

    Hydra cannot compose a config group set to null (it stops with an internal ``ValueError`` and
    a traceback). For the required groups (dataset, model, loss, …) the fix is one of the options;
    the optional ones (null in ``config.yaml``'s defaults: experiment, hparams_search) are off
    when left out.

    Args:
        argv: the command-line arguments (``sys.argv[1:]``).
        conf_dir: the config folder; its sub-folders are the config groups.

    Raises:
        SystemExit: status 1 after one paragraph naming the override and the group's options.
    """
    import yaml

    conf_dir = Path(conf_dir)
    defaults = yaml.safe_load((conf_dir / "config.yaml").read_text()).get("defaults", [])
    optional = {k for entry in defaults if isinstance(entry, dict) for k, v in entry.items() if v is None}
    for arg in argv:
        key, sep, value = arg.partition("=")
        group = key.lstrip("+~")
        if (
            not sep
            or value.strip().lower() != "null"
            or "." in group
            or group.startswith("hydra")
            or not (conf_dir / group).is_dir()
        ):
            continue
        options = ", ".join(sorted(p.stem for p in (conf_dir / group).glob("*.yaml")))
        if group in optional:
            _fail(
                f"`{arg}`: `{group}` is off by default; leave it out of the command line instead of "
                f"setting it to null (Hydra cannot compose a null config group). Its options: {options}."
            )
        _fail(
            f"`{arg}`: the config group `{group}` takes one of its options ({options}), not null. "
            f"Pick one, e.g. `{group}={options.split(', ')[0]}`."
        )


# Hydra launcher plugins seqrec's launcher configs build on: (module, package to install)
LAUNCHER_PLUGINS = {
    "joblib": ("hydra_plugins.hydra_joblib_launcher", "hydra-joblib-launcher"),
    "submitit_slurm": ("hydra_plugins.hydra_submitit_launcher", "hydra-submitit-launcher"),
    "submitit_local": ("hydra_plugins.hydra_submitit_launcher", "hydra-submitit-launcher"),
}


def check_launcher(argv: list[str], conf_dir: str | Path) -> None:
    """Refuse ``hydra/launcher=<name>`` when the Hydra plugin it needs is not installed, with the
    install command (Hydra itself says only "Could not load 'hydra/launcher/joblib'").

    ``<name>`` is one of seqrec's launcher configs (``conf/hydra/launcher/local.yaml`` builds on
    ``joblib``, ``slurm.yaml`` on ``submitit_slurm``) or a plugin's own config name.

    Raises:
        SystemExit: status 1 after one paragraph naming the override, the package and the command.
    """
    import importlib.util

    import yaml

    for arg in argv:
        key, sep, name = arg.partition("=")
        if key.lstrip("+~") != "hydra/launcher" or not sep:
            continue
        own = Path(conf_dir) / "hydra" / "launcher" / f"{name}.yaml"
        bases = [name]
        if own.is_file():
            bases = [entry for entry in yaml.safe_load(own.read_text()).get("defaults", []) if isinstance(entry, str)]
        for module, package in (LAUNCHER_PLUGINS[base] for base in bases if base in LAUNCHER_PLUGINS):
            try:
                found = importlib.util.find_spec(module) is not None
            except ModuleNotFoundError:  # not even the hydra_plugins namespace
                found = False
            if not found:
                _fail(
                    f"`{arg}` needs the Hydra plugin {package}, which is not installed. Install the "
                    "launchers with `make install-sweep` (or `pip install -e '.[sweep]'`), or leave "
                    "hydra/launcher out to run the sweep's jobs one after another."
                )


def check_writable(folder: str | Path) -> None:
    """Create ``folder`` and write a probe file there, or stop with one paragraph and exit 1.

    Raises:
        SystemExit: (1) the folder cannot be created or written (a file in the path, a read-only
            or full disk, no permission).
    """
    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as err:
        _fail(
            f"cannot write into the output folder {folder}: {err.strerror or err}. Choose a writable "
            "folder with hydra.run.dir=<folder> (sweeps: hydra.sweep.dir=<folder>), or free disk space."
        )


# (job, paragraph) of each sweep job of this process that failed on bad input (report_errors)
FAILED_JOBS: list[tuple[str, str]] = []


class SweepSummary(Callback):
    """Hydra callback (``hydra.callbacks`` in ``conf/config.yaml``): at the end of a sweep of
    Hydra's basic sweeper, one line per job that failed on bad input (its paragraph was printed
    when it failed) and exit status 1, instead of Hydra's traceback of the first failed job alone.
    A search's sweeper records failed trials in its study and goes on, so it is left alone."""

    def on_multirun_start(self, config: DictConfig, **kwargs) -> None:
        FAILED_JOBS.clear()

    def on_multirun_end(self, config: DictConfig, **kwargs) -> None:
        if not FAILED_JOBS or "BasicSweeper" not in str(config.hydra.sweeper.get("_target_", "")):
            return
        lines = "; ".join(f"{job}: {message.split('. ')[0]}" for job, message in FAILED_JOBS)
        _fail(f"{len(FAILED_JOBS)} job(s) of the sweep failed (each one's paragraph is above): {lines}.")


class OutputFolderCheck(Callback):
    """Hydra callback (``hydra.callbacks`` in ``conf/config.yaml``): checks that the run or sweep
    folder can be written before Hydra creates it, so an unwritable output folder is one paragraph
    instead of a traceback from inside Hydra; for ``resume=`` it checks that the folder is a run
    folder before Hydra writes its log there; and that ``dataset.name``, part of the run folder's
    path, is a plain name (``../x`` would put the folder outside outputs/)."""

    def on_run_start(self, config: DictConfig, **kwargs) -> None:
        HydraConfig.instance().set_config(config)  # ${hydra:runtime.choices.*} in the folder name
        if config.get("resume") is not None:  # the folder resume= names: never create or write a wrong one
            problem = resume_problem(str(config.resume))
            if problem is not None:
                _fail(problem)
            if Path(config.hydra.run.dir).resolve() != Path(str(config.resume)).resolve():
                _fail(
                    f"resume={config.resume} continues the run in its own folder, but hydra.run.dir="
                    f"{config.hydra.run.dir} names another one. Drop hydra.run.dir; to train the same "
                    "config into a new folder, start a new run instead of resume=."
                )
        problem = name_problem(config.dataset.get("name"))  # the run folder's path holds the name
        if problem is not None:
            _fail(problem)
        check_writable(config.hydra.run.dir)

    def on_multirun_start(self, config: DictConfig, **kwargs) -> None:
        HydraConfig.instance().set_config(config)
        check_writable(config.hydra.sweep.dir)
