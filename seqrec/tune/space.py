"""The search space of ``hparams_search=<name>``: Hydra sweep overrides (``interval(…)``,
``range(…)``, ``choice(…)``, ``tag(log, …)``) as Optuna distributions, and the checks of a search
before anything is written (every range sampleable, every parameter and value one the config has,
the fixed settings valid, the sampler and pruner constructible).
"""

from __future__ import annotations

import logging
from typing import Any

from seqrec.errors import ConfigError

log = logging.getLogger(__name__)


def distribution(override: Any) -> Any:
    """The Optuna distribution of one parsed sweep override (Hydra's override grammar).

    * ``choice(a, b, …)`` → ``CategoricalDistribution`` (values as Hydra parses them);
    * ``interval(lo, hi)`` → ``FloatDistribution(lo, hi)``; ``int(interval(lo, hi))`` →
      ``IntDistribution``; ``tag(log, …)`` makes either log-uniform;
    * ``range(start, stop, step)`` → the values Hydra's range gives (``stop`` excluded, as in
      Python): ``IntDistribution``/``FloatDistribution`` with that ``step``; ``shuffle(range(…))``
      → categorical.

    Raises:
        ValueError: a range Optuna cannot sample (low > high, log with low ≤ 0, an empty range),
            or a sweep kind Optuna has no distribution for.
    """
    from hydra.core.override_parser.types import ChoiceSweep, IntervalSweep, RangeSweep, Transformer
    from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

    value = override.value()
    if isinstance(value, ChoiceSweep) or (isinstance(value, RangeSweep) and value.shuffle):
        return CategoricalDistribution(list(override.sweep_iterator(transformer=Transformer.encode)))
    if isinstance(value, RangeSweep):
        values = list(override.sweep_iterator())
        if not values:
            raise ValueError("the range holds no value (Hydra's range excludes its stop, as Python's does)")
        if all(isinstance(v, int) for v in values):
            return IntDistribution(min(values), max(values), step=int(value.step))
        return FloatDistribution(float(min(values)), float(max(values)), step=float(value.step))
    if isinstance(value, IntervalSweep):
        log_scale = "log" in value.tags
        if isinstance(value.start, int) and isinstance(value.end, int):
            return IntDistribution(value.start, value.end, log=log_scale)
        return FloatDistribution(float(value.start), float(value.end), log=log_scale)
    raise ValueError(f"{type(value).__name__} has no Optuna distribution")


def parse_space(texts: list[str]) -> tuple[dict, dict]:
    """Split overrides into the searched space and the fixed settings.

    Args:
        texts: override strings, the sweeper's ``params`` (``key=expression``) then the command
            line's; a later one replaces an earlier one of the same key.

    Returns:
        ``(space, fixed)``: key → Optuna distribution, and key (with its ``+``/``~`` prefix) → the
        override's value as text.

    Raises:
        ConfigError: an override that does not parse or whose range Optuna cannot sample, naming it.
    """
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.errors import HydraException

    parser = OverridesParser.create()
    space, fixed = {}, {}
    for text in texts:
        try:
            (override,) = parser.parse_overrides([text])
            key = override.get_key_element()
            if override.is_sweep_override():
                space[key], _ = distribution(override), fixed.pop(key, None)
            else:
                fixed[key], _ = override.get_value_element_as_str(), space.pop(key, None)
        except (ValueError, HydraException) as exc:
            raise ConfigError(
                f"search parameter `{text}`: {str(exc).rstrip('.')}. Give it a range Optuna can sample, e.g. "
                "`interval(0.0, 0.7)`, `tag(log, interval(0.0001, 0.01))` (low > 0) or "
                "`choice(32, 64, 128)`."
            ) from None
    return space, fixed


def override_value(value: Any) -> str:
    """A trial's parameter value as the text of a Hydra override (``1e-05``, ``true``, ``sasrec``)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value)
    return str(value)


def _edges(dist: Any) -> list:
    """The values of a distribution a trial can get at its edges: every choice, or low and high."""
    if hasattr(dist, "choices"):
        return list(dist.choices)
    return [dist.low, dist.high]


def check_search(sweeper: Any, config: Any, config_loader: Any, arguments: list[str]) -> tuple[dict, dict]:
    """Check a search before its study is opened (see the module docstring, step 1).

    Args:
        sweeper: the sweeper's options (``n_trials``, ``n_jobs``, ``direction``, ``params``).
        config: the whole composed config (``hydra`` included).
        config_loader: Hydra's config loader, which composes a trial's config from overrides.
        arguments: the command line's task overrides.

    Returns:
        ``(space, fixed)``: the searched parameters' distributions and the fixed overrides.

    Raises:
        ConfigError: a check fails; the message names the option and the fix.
    """
    from hydra.errors import HydraException
    from omegaconf import open_dict
    from omegaconf.errors import OmegaConfBaseException

    from seqrec.runs.pipeline import validate_config

    for name in ("n_trials", "n_jobs"):
        value = sweeper[name]
        if not isinstance(value, int) or value < 1:
            raise ConfigError(
                f"hydra.sweeper.{name}={value}: it must be a whole number ≥ 1 ("
                f"{'the size of the whole search' if name == 'n_trials' else 'trials run at once'})."
            )
    if str(sweeper.direction) != "maximize":
        raise ConfigError(
            f"hydra.sweeper.direction={sweeper.direction}: train.py returns the run's "
            "trainer.monitor validation metric (HR@k or NDCG@k), where higher is better, so a "
            "search must maximize it; leave hydra.sweeper.direction out."
        )
    params = dict(sweeper.params or {})
    space, fixed = parse_space([f"{k}={v}" for k, v in params.items()] + list(arguments))
    fixed_overrides = [f"{k}={v}" for k, v in fixed.items()]

    def compose(overrides: list[str], what: str):
        try:
            return config_loader.load_sweep_config(config, overrides)
        except (HydraException, OmegaConfBaseException) as exc:
            first = str(exc).strip().splitlines()[0].rstrip(".")
            raise ConfigError(
                f"{what}: the config cannot be composed with it ({first}). Check the key's "
                "spelling and its values against conf/: `python train.py --cfg job` prints the "
                "config, and a config group's options are the files in conf/<group>/."
            ) from None

    base = compose(fixed_overrides, "the search's fixed settings")
    with open_dict(base):  # a trial's config, as the launcher hands it to train.py
        del base["hydra"]
    try:
        validate_config(base)
    except ConfigError as exc:
        raise ConfigError(f"the search's fixed settings: {exc}") from None
    for key, dist in space.items():
        for value in _edges(dist):
            compose([*fixed_overrides, f"{key}={override_value(value)}"], f"search parameter {key}={value}")
    return space, fixed


def build_part(node: Any, what: str, default: Any = None) -> Any:
    """Instantiate a sampler or pruner node (``{_target_: optuna.samplers.TPESampler, seed: 42}``);
    ``default`` when the node is null.

    Raises:
        ConfigError: the class cannot be imported or does not take the given options.
    """
    from hydra.utils import instantiate

    if node is None:
        return default
    try:
        return instantiate(node)
    except Exception as exc:  # noqa: BLE001 - an import error, a wrong keyword: the user's option
        cause = exc.__cause__ or exc
        raise ConfigError(
            f"hydra.sweeper.{what}: {' '.join(str(cause).split())[:300].rstrip('.')}. Give the class of an Optuna "
            f"{what} and its constructor's options, e.g. "
            + (
                "{_target_: optuna.samplers.TPESampler, seed: 42, n_startup_trials: 10}."
                if what == "sampler"
                else "{_target_: optuna.pruners.MedianPruner, n_startup_trials: 5, n_warmup_steps: 5}, or null."
            )
        ) from None
