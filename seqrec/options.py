"""Check a config node against a signature: known keys, types, choices and ranges.

The schema of a config node is the signature of what it builds: a model, loss, optimizer or the
trainer (``_target_``), or a dataclass (the top level, ``eval``, ``dataset``, S3-Rec's
``model.pretrain``). Its parameters are the valid keys; their annotations give the types:

* ``bool``, ``int``, ``float`` (an int is a float too), ``str``, ``None``; a bool is never a
  number and a string is never a bool (``eval.mask_history=no`` is refused, not read as true);
* ``Literal["fp32", "bf16"]``: one of the listed values; ``X | Y`` and ``Optional[X]``;
* ``list[X]``, ``tuple[X, Y]``, ``tuple[X, ...]`` (a YAML list either way);
* ``Annotated[int, Range(ge=1)]`` (the aliases :data:`PositiveInt`, :data:`NonNegativeInt`,
  :data:`Probability`) and ``Annotated[str, Pattern(...)]``;
* a dataclass: a nested node, checked the same way (``model.pretrain``);
* anything else (``torch.Tensor``, protocols, unannotated): not checked.

So a new model or loss needs no schema registration: its constructor's annotations are the
schema. Nothing here converts or fills in a value; the config stays exactly as composed.

A layer-0 module (it imports only :mod:`seqrec.errors`): the constructors of every layer annotate
their options with its markers, and :mod:`seqrec.config` checks whole configs with it.
"""

from __future__ import annotations

import dataclasses
import difflib
import inspect
import re
import types
import typing
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Annotated, Any, Literal, Union

from omegaconf import OmegaConf
from omegaconf.errors import InterpolationResolutionError, MissingMandatoryValue

from seqrec.errors import ConfigError


@dataclass(frozen=True)
class Range:
    """``Annotated`` marker: bounds of a number option (``ge``/``le`` inclusive, ``gt``/``lt`` not)."""

    ge: float | None = None
    gt: float | None = None
    le: float | None = None
    lt: float | None = None

    def holds(self, value: float) -> bool:
        return (
            (self.ge is None or value >= self.ge)
            and (self.gt is None or value > self.gt)
            and (self.le is None or value <= self.le)
            and (self.lt is None or value < self.lt)
        )

    def __str__(self) -> str:
        parts = [
            f"{op} {bound:g}" if isinstance(bound, float) else f"{op} {bound}"
            for op, bound in ((">=", self.ge), (">", self.gt), ("<=", self.le), ("<", self.lt))
            if bound is not None
        ]
        return " and ".join(parts)


@dataclass(frozen=True)
class Pattern:
    """``Annotated`` marker: a string option that must match ``regex`` (whole string)."""

    regex: str
    description: str

    def holds(self, value: str) -> bool:
        return re.fullmatch(self.regex, value) is not None


PositiveInt = Annotated[int, Range(ge=1)]
NonNegativeInt = Annotated[int, Range(ge=0)]
Probability = Annotated[float, Range(gt=0, lt=1)]
PositiveFloat = Annotated[float, Range(gt=0)]
DropoutRate = Annotated[float, Range(ge=0, lt=1)]  # 1 would zero every input


def describe(tp: Any) -> str:
    """What ``tp`` accepts, in words: ``a whole number >= 1``, ``one of fp32, bf16``, …"""
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin is Annotated:
        base, marks = describe(args[0]), [m for m in args[1:] if isinstance(m, (Range, Pattern))]
        for mark in marks:
            base = mark.description if isinstance(mark, Pattern) else f"{base} {mark}"
        return base
    if origin is Literal:
        return _show(args[0]) if len(args) == 1 else "one of " + ", ".join(_show(a) for a in args)
    if origin in (Union, types.UnionType):
        # a member no config value can be (a tensor) is left out of the words
        shown = [a for a in args if _describable(a)] or list(args)
        return " or ".join(describe(a) for a in shown)
    if origin in (list, tuple) or tp in (list, tuple):
        if origin is tuple and args and args[-1] is not Ellipsis:
            return f"a list of {len(args)} ({', '.join(describe(a) for a in args)})"
        return f"a list of {describe(args[0])}s" if args else "a list"
    if dataclasses.is_dataclass(tp):
        return f"a group of options ({', '.join(f.name for f in dataclasses.fields(tp))})"
    return {
        bool: "true or false",
        int: "a whole number",
        float: "a number",
        str: "a string",
        type(None): "null",
        dict: "a group of options",
    }.get(tp, getattr(tp, "__name__", str(tp)))


def _describable(tp: Any) -> bool:
    return (
        tp in (bool, int, float, str, type(None), list, tuple, dict)
        or dataclasses.is_dataclass(tp)
        or typing.get_origin(tp) in (Annotated, Literal, Union, types.UnionType, list, tuple, dict)
    )


def _show(value: Any) -> str:
    """A value as it is written on the command line / in YAML."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return str(value).lower()
    return str(value)


def accepts(tp: Any, value: Any) -> bool:
    """Whether ``value`` (a plain Python value of a resolved config) fits annotation ``tp``."""
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if tp is Any or tp is inspect.Parameter.empty:
        return True
    if origin is Annotated:
        if not accepts(args[0], value):
            return False
        return all(mark.holds(value) for mark in args[1:] if isinstance(mark, (Range, Pattern)))
    if origin is Literal:
        return any(type(value) is type(a) and value == a for a in args)
    if origin in (Union, types.UnionType):
        # a member no plain config value can be (``float | Tensor``: torch's lr) must not let any
        # value through: check the members a config value can be, as describe() names them; a
        # node with a _target_ builds an object, which may be any member (a sampler)
        built = isinstance(value, Mapping) and "_target_" in value
        checked = [a for a in args if built or _describable(a)] or list(args)
        return any(accepts(a, value) for a in checked)
    if origin in (list, tuple, typing.Sequence) or tp in (list, tuple):
        if not isinstance(value, (list, tuple)):
            return False
        if origin is tuple and args and args[-1] is not Ellipsis:
            return len(value) == len(args) and all(accepts(a, v) for a, v in zip(args, value))
        return not args or all(accepts(args[0], v) for v in value)
    if dataclasses.is_dataclass(tp):
        return isinstance(value, Mapping)
    if tp is bool:
        return isinstance(value, bool)
    if tp is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if tp is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if tp is str:
        return isinstance(value, str)
    if tp is type(None):
        return value is None
    if tp in (dict, Mapping) or origin in (dict, Mapping):
        return isinstance(value, Mapping)
    return True  # an annotation no config value can be checked against (a tensor, a protocol)


def parameters(target: Callable) -> tuple[dict[str, inspect.Parameter], dict[str, Any], bool]:
    """The named parameters of ``target`` (a class: its ``__init__``), their resolved annotations
    (``include_extras``: ``Annotated`` kept; empty when they cannot be resolved) and whether it
    takes ``**kwargs``."""
    signature = inspect.signature(target)
    named = {name: p for name, p in signature.parameters.items() if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}
    takes_kwargs = any(p.kind is p.VAR_KEYWORD for p in signature.parameters.values())
    function = target.__init__ if inspect.isclass(target) else target
    try:
        hints = typing.get_type_hints(function, include_extras=True)
    except Exception:  # noqa: BLE001 - a name an annotation uses cannot be resolved
        if getattr(target, "__module__", "").startswith("seqrec"):
            raise  # seqrec's own schemas must resolve, or nothing would be checked
        hints = {}  # a third-party forward reference: check the keys only
    return named, hints, takes_kwargs


def nested_schema(tp: Any, value: Any) -> type | None:
    """The dataclass a mapping ``value`` of an option annotated ``tp`` (``Recipe`` or
    ``Recipe | None``) is checked and built as, or None."""
    if not isinstance(value, Mapping):
        return None
    members = typing.get_args(tp) if typing.get_origin(tp) in (Union, types.UnionType) else (tp,)
    return next((m for m in members if dataclasses.is_dataclass(m)), None)


def closest(key: str, candidates: Iterable[str]) -> str | None:
    """The candidate most like ``key`` (a misspelling), or None."""
    found = difflib.get_close_matches(key, list(candidates), n=1, cutoff=0.6)
    return found[0] if found else None


# long: one pass over the options with one error paragraph per kind of mistake; the branches read best together
def check_options(
    values: Mapping[str, Any],
    target: Callable,
    group: str,
    supplied: Iterable[str] = (),
    where: str = "",
    also_meant: Mapping[str, str] | None = None,
) -> None:
    """Check a resolved config node against ``target``'s signature (see the module docstring).

    Args:
        values: the node as plain Python values; keys starting with ``_`` (``_target_``) are Hydra's.
        target: the class or function the node configures.
        group: its option prefix, e.g. ``trainer`` (errors name ``trainer.<key>``); ``""`` = top level.
        supplied: parameters seqrec passes itself (``n_items``, ``model``, ``seed``, …): not options.
        where: where the node is written, for the hint (default ``conf/<group>/``).
        also_meant: extra names an unknown key may be a misspelling of (``max_epochs`` →
            ``trainer.max_epochs``), for the hint.

    Raises:
        ConfigError: one paragraph naming the first bad option, its value and what it accepts.
    """
    named, hints, takes_kwargs = parameters(target)
    supplied = set(supplied)
    valid = [name for name in named if name not in supplied]
    prefix = f"{group}." if group else ""
    where = where or (f"conf/{group.split('.')[0]}/" if group else "conf/config.yaml")
    for key, value in values.items():
        if key.startswith("_"):
            continue
        if key in supplied and key in named:
            raise ConfigError(
                f"{prefix}{key} cannot be set: seqrec passes {key} to {_name(target)} itself (from the "
                f"data or another option{', e.g. seed=7' if key == 'seed' else ''}). Remove "
                f"{prefix}{key} from the command line or from {where}."
            )
        if key not in named and not takes_kwargs:
            candidates = {name: prefix + name for name in valid} | dict(also_meant or {})
            match = closest(key, candidates)
            hint = f"Did you mean {candidates[match]}? " if match else ""
            raise ConfigError(
                f"unknown option {prefix}{key}: nothing in seqrec reads it, so it would be silently "
                f"ignored. {hint}Valid {group + ' ' if group else 'top-level '}options are: "
                f"{', '.join(sorted(valid))}."
            )
        if key in hints and not accepts(hints[key], value):
            raise ConfigError(
                f"{prefix}{key}={_quote(value)} is not valid: it must be {describe(hints[key])}. "
                f"Set it on the command line (e.g. {prefix}{key}=...) or in {where}."
            )
        nested = nested_schema(hints.get(key), value)
        if nested is not None:
            check_options(value, nested, prefix + key, where=where)
        elif isinstance(value, Mapping) and "_target_" in value:  # an object built with it (a sampler)
            check_options(value, _target(value["_target_"], prefix + key), prefix + key, where=where)
    missing = [name for name in valid if name not in values and named[name].default is named[name].empty]
    if missing:
        raise ConfigError(
            f"{prefix}{missing[0]} has no value: {_name(target)} needs it. Set it on the command line "
            f"({prefix}{missing[0]}=...) or in {where}."
        )


def _target(name: Any, option: str) -> Callable:
    """The class or function ``_target_`` names. Raises ConfigError when it cannot be imported."""
    from hydra.utils import get_object  # only for nested nodes

    try:
        return get_object(name)
    except Exception as err:  # noqa: BLE001 - ImportError, AttributeError, Hydra's own errors
        raise ConfigError(
            f"{option}._target_={name!r} cannot be imported ({err}). Name a class, e.g. "
            "seqrec.losses.samplers.UniformSampler."
        ) from None


def _quote(value: Any) -> str:
    return repr(value) if isinstance(value, str) else _show(value)


def _name(target: Callable) -> str:
    return f"{getattr(target, '__module__', '?')}.{getattr(target, '__qualname__', target)}"


def named_options(values: Mapping[str, Any], message: str, group: str, target: Callable | None = None) -> str:
    """``group.key=value`` for every option whose name appears in ``message`` (an error raised by
    ``target``, the class the node builds; a default shows where the node leaves it out),
    comma-separated; all options of the node when none is named."""
    options = {key: value for key, value in values.items() if not key.startswith("_")}
    if target is not None:
        named, _, _ = parameters(target)
        options = {**{k: p.default for k, p in named.items() if p.default is not p.empty}, **options}
    hits = [key for key in options if re.search(rf"\b{re.escape(key)}\b", message)]
    hits = hits or [key for key in values if not key.startswith("_")]
    return ", ".join(f"{group}.{key}={_quote(options[key])}" for key in hits)


def rejected(values: Mapping[str, Any], err: Exception, group: str, target: Callable, where: str = "") -> str:
    """The one-paragraph message for a ``ValueError`` that ``target`` raised on the options
    ``values`` of ``group``: the options it names, the reason, where to change them."""
    where = where or f"conf/{group.split('.')[0]}/"
    return (
        f"invalid {named_options(values, str(err), group, target)}: {str(err).rstrip('.')} "
        f"(refused by {_name(target)}). Change it on the command line or in {where}."
    )


def construct(
    target: Callable,
    values: Mapping[str, Any],
    group: str,
    where: str = "",
    also_meant: Mapping[str, str] | None = None,
    **supplied: Any,
):
    """:func:`check_options`, then ``target(**values, **supplied)``; nested dataclass options
    are built the same way. A ``ValueError`` of ``target`` becomes a :class:`ConfigError` naming
    the options (:func:`rejected`).

    Raises:
        ConfigError: see :func:`check_options` and :func:`rejected`.
    """
    check_options(values, target, group, supplied, where, also_meant)
    _, hints, _ = parameters(target)
    kwargs = {}
    for key, value in values.items():
        if key.startswith("_"):
            continue
        nested = nested_schema(hints.get(key), value)
        if nested is not None:
            value = construct(nested, value, f"{group}.{key}", where)
        kwargs[key] = value
    try:
        return target(**kwargs, **supplied)
    except ValueError as err:
        raise ConfigError(rejected(values, err, group, target, where)) from None


def plain(node: Any, group: str) -> dict:
    """A config node (``DictConfig`` or mapping) as plain Python values, interpolations resolved.

    Raises:
        ConfigError: a required value is missing (``???``) or an interpolation cannot be resolved.
    """
    if not OmegaConf.is_config(node):
        return dict(node)
    try:
        return OmegaConf.to_container(node, resolve=True, throw_on_missing=True)
    except MissingMandatoryValue as err:
        key = getattr(err, "full_key", None) or group
        raise ConfigError(
            f"{key} has no value (it is '???' in its config file). Set it on the command "
            f"line, e.g. `python train.py ... {key}=<value>`."
        ) from None
    except InterpolationResolutionError as err:
        raise ConfigError(f"a {group or 'top-level'} option cannot be resolved: {err}") from None
