"""The ``seqrec.*`` OmegaConf resolvers that ``conf/`` uses (folder names, sweeps over seeds, threads).

Registered when ``seqrec`` is imported (``train.py`` imports it before Hydra composes; so does any
notebook that composes ``conf/`` with Hydra's ``compose``). A layer-0 module: it imports nothing of
seqrec, so importing any part of the package does not pull in the run machinery:

* ``${seqrec.seeds:<first>,<count>}`` → ``"42,43,44"`` for ``42,3``: the comma list the basic
  sweeper expands into one job per seed, so ``python train.py -m experiment=table2 seeds=3``
  sweeps three seeds. An explicit ``seed=1,7`` on the command line replaces the list (Hydra
  applies command-line sweep overrides after ``hydra.sweeper.params``).
* ``${seqrec.or:<value>,<default>}`` → ``value`` unless it is null or empty (``resume=<folder>``
  makes Hydra's run folder the resumed run's own); ``${seqrec.hydra_subdir:${resume}}`` names
  where Hydra's record of a run goes (:func:`seqrec.runs.rundir.settle_hydra_record`): ``.hydra/``, or
  ``.hydra/resume/`` for a resuming command, so the first command's record is kept.
* ``${seqrec.loss_name:${loss},${hydra:runtime.choices.loss}}`` → the run's loss name
  (:func:`run_loss_name`) in run and sweep folder names.
* ``${seqrec.threads_per_job:<n_jobs>}`` → torch CPU threads for one of ``n_jobs`` parallel jobs:
  ``max(1, cores // n_jobs)``, with joblib's meaning of a negative ``n_jobs`` (-1 = one job per
  core); ``None`` (no parallel launcher) → ``None``, i.e. torch's default. Cores are those this
  process may run on (``os.sched_getaffinity``), not the machine's total.
"""

from __future__ import annotations

import os

from omegaconf import OmegaConf


def seed_list(first: int, count: int) -> str:
    """``"first,first+1,…"`` with ``count`` seeds (``count`` >= 1)."""
    count = int(count)
    if count < 1:
        raise ValueError(f"seeds must be >= 1, got {count} (e.g. `seeds=3` for seeds 42, 43, 44)")
    return ",".join(str(int(first) + i) for i in range(count))


def available_cores() -> int:
    """CPU cores this process may use (its affinity mask where the OS has one)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        return os.cpu_count() or 1


def threads_per_job(n_jobs: int | None, cores: int | None = None) -> int | None:
    """Torch threads for each of ``n_jobs`` concurrent jobs sharing ``cores`` cores, or None."""
    if n_jobs is None:
        return None
    cores = cores or available_cores()
    n_jobs = int(n_jobs)
    if n_jobs < 0:  # joblib: -1 = all cores, -2 = all but one, …
        n_jobs = max(1, cores + 1 + n_jobs)
    return max(1, cores // max(1, n_jobs))


def first_set(value, default):
    """``value`` unless it is empty or null, else ``default`` (``${seqrec.or:${resume},<pattern>}``:
    a resumed run writes into its own folder, any other into a new one)."""
    return value if value not in (None, "") else default


def hydra_subdir(resume) -> str:
    """Hydra's record folder in a run folder: ``.hydra``, or ``.hydra/resume`` for a resumed run,
    so resuming never overwrites the record of the command that started the run."""
    return ".hydra/resume" if resume not in (None, "") else ".hydra"


def run_loss_name(loss_cfg, choice: str) -> str:
    """The run's loss name (``bce``, ``bce-last``, ``bce-k256-popularity``; the ``name`` the loss
    puts in ``metrics.json``) for folder names, so two variants of one config-group choice never
    share a folder. Falls back to the group ``choice`` when the loss cannot be built: the config
    check then names the bad option."""
    try:
        from hydra.utils import instantiate

        return str(instantiate(loss_cfg).name)
    except Exception:  # noqa: BLE001 - any bad option: validate_config reports it properly
        return str(choice)


def register_resolvers() -> None:
    """Register the ``seqrec.*`` resolvers once (idempotent)."""
    for name, fn in (
        ("seqrec.seeds", seed_list),
        ("seqrec.threads_per_job", threads_per_job),
        ("seqrec.or", first_set),
        ("seqrec.hydra_subdir", hydra_subdir),
        ("seqrec.loss_name", run_loss_name),
    ):
        if not OmegaConf.has_resolver(name):
            OmegaConf.register_new_resolver(name, fn)
