"""Whether two configs compute the same run: the one rule behind resuming a run, skipping a
finished one, refusing a checkpoint of another run (:mod:`seqrec.runs.resume`) and averaging the
seeds of one cell (:mod:`seqrec.report.protocol`).

Configs are compared leaf by leaf (:func:`flatten`). Options that change nothing computed
(:data:`RUNTIME_KEYS`) are not compared; an option a config saved by an older seqrec lacks is
compared with the value that run computed with (:data:`ADDED_OPTIONS`, :func:`with_legacy_options`);
an option that cannot change a run's numbers on its data (:func:`irrelevant_options`) is left out;
class paths that moved are read as where the class lives now (:data:`MOVED_TARGETS`).
"""

from __future__ import annotations

from collections.abc import Collection

from omegaconf import DictConfig

# keys that may change between a run and its resumption: they do not change what is computed
# (``seeds`` is how many seeds a sweep expands to; each run has its own ``seed``), except ``device``:
# a run may move between CPU and GPU to continue, but other kernels (and a CUDA generator a CPU
# last.pt does not hold) make its later epochs differ in the last digits; exact resume is on one device
RUNTIME_KEYS = ("resume", "output_dir", "data_dir", "num_threads", "device", "trainer.progress", "logger", "seeds")

# Options added to seqrec after runs were saved, each with the value that computes what a run saved
# without it computed: a saved config that lacks one is compared against this value, so a re-run
# that sets it otherwise is not handed the old run's metrics. (A missing option that is null now,
# such as ``dataset.rating_col``, is off, and matches too.) ``eval.rank_repeats`` had no one value
# before it existed; :func:`with_legacy_options` reads it from the run's metrics.json.
ADDED_OPTIONS: dict[str, object] = {
    "trainer.samples": "sequences",
    "model.random_padding_row": False,
    "model.padding_class": False,
    "tf32": True,  # CUDA runs had TF32 matmuls before it was an option (a no-op on CPU)
}


def legacy_rank_repeats(metrics: dict) -> bool:
    """What a run saved before ``eval.rank_repeats`` existed did with a target that repeats a
    history item: ranked it when its ``metrics.json`` has ``test/repeat_share`` (only the code that
    ranked repeats wrote that share), masked it with the history before that."""
    return "test/repeat_share" in metrics


def irrelevant_options(metrics: dict | None) -> set[str]:
    """Options that cannot change a finished run's numbers, from its ``metrics.json``:
    ``eval.rank_repeats`` (and the trainer's copy) when none of its validation and test targets
    repeats a history item (both repeat shares 0, as on every benchmark file but Yelp)."""
    if metrics and metrics.get("valid/repeat_share") == 0 and metrics.get("test/repeat_share") == 0:
        return {"eval.rank_repeats", "trainer.rank_repeats"}
    return set()


def with_legacy_options(config: dict, metrics: dict | None) -> dict:
    """``config`` (nested, as saved) with ``eval.rank_repeats`` and ``trainer.rank_repeats`` filled
    in from ``metrics`` (:func:`legacy_rank_repeats`) when the run predates them; unchanged
    without metrics or when they are there."""
    if metrics is None:
        return config
    out = {**config}
    for group in ("eval", "trainer"):
        node = out.get(group) if isinstance(out.get(group), dict) else {}
        if "rank_repeats" not in node:
            out[group] = {**node, "rank_repeats": legacy_rank_repeats(metrics)}
    return out


# Classes a saved config names by ``_target_`` whose modules moved when the package was split into
# layers (seqrec/training/, seqrec/runs/): the ``config.yaml`` and ``last.pt`` of runs made before
# name the old paths, and are read with the new ones (the classes themselves did not change).
MOVED_TARGETS = {
    "seqrec.trainer.": "seqrec.training.trainer.",
    "seqrec.samplers.": "seqrec.losses.samplers.",
    "seqrec.samplers_extra.": "seqrec.losses.samplers_extra.",
    "seqrec.cli.": "seqrec.runs.cli.",
    "seqrec.tracking.": "seqrec.runs.tracking.",
}


def current_target(target: object) -> object:
    """``target`` (a ``_target_`` value) with a module path of :data:`MOVED_TARGETS` replaced by
    where the class lives now; anything else unchanged."""
    if isinstance(target, str):
        for old, new in MOVED_TARGETS.items():
            if target.startswith(old):
                return new + target[len(old) :]
    return target


def upgrade_targets(cfg: DictConfig) -> DictConfig:
    """A saved config with every ``_target_`` of :data:`MOVED_TARGETS` renamed (in place; returned)."""
    for key, value in list(cfg.items()):
        if isinstance(value, DictConfig):
            upgrade_targets(value)
        elif key == "_target_" and current_target(value) != value:
            cfg[key] = current_target(value)
    return cfg


def with_added_options(flat: dict, other: dict) -> dict:
    """``flat`` (:func:`flatten`) with the :data:`ADDED_OPTIONS` that only ``other`` has, at the value
    the run of ``flat`` computed with."""
    return {**{n: v for n, v in ADDED_OPTIONS.items() if n in other and n not in flat}, **flat}


def flatten(node, prefix: str = "") -> dict[str, object]:
    """A nested config as ``{"trainer.max_epochs": 150, ...}``; moved ``_target_`` paths renamed."""
    if isinstance(node, dict):
        out = {}
        for key, value in node.items():
            out.update(flatten(value, f"{prefix}{key}."))
        return out if out or not prefix else {prefix[:-1]: {}}
    return {prefix[:-1]: current_target(node) if prefix.endswith("_target_.") else node}


def config_differences(
    saved: dict, current: dict, keys: list[str] | None = None, ignore: Collection[str] = ()
) -> list[str]:
    """``"key: saved → current"`` for every leaf that differs (only under ``keys`` when given),
    ignoring :data:`RUNTIME_KEYS` and ``ignore`` (:func:`irrelevant_options`). An option the saved
    config lacks (added to seqrec since the run started) is compared against its
    :data:`ADDED_OPTIONS` value, or matches when it is null now, so a run of an older version still
    continues unless the option changes what it computes."""
    a, b = flatten(saved), flatten(current)
    a, b = ({n: v for n, v in d.items() if n not in ignore} for d in (a, b))
    a = with_added_options(a, b)
    names = sorted(set(a) | {n for n, value in b.items() if n in a or value is not None})
    if keys is not None:
        names = [n for n in names if any(n == k or n.startswith(k + ".") for k in keys)]
    runtime = lambda n: any(n == k or n.startswith(k + ".") for k in RUNTIME_KEYS)  # noqa: E731
    missing = "(not set)"
    return [
        f"{n}: {a.get(n, missing)!r} → {b.get(n, missing)!r}"
        for n in names
        if not runtime(n) and a.get(n, missing) != b.get(n, missing)
    ]
