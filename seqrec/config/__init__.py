"""The typed config: every option of a run is checked once, before anything is built or written.

* :mod:`seqrec.options`: the checker. A config node's schema is the signature of what it
  builds (its ``_target_`` class: model, loss, optimizer, trainer) or a dataclass (top level,
  ``eval``, ``dataset``, ``model.pretrain``): parameter names are the valid keys, annotations
  the types, ``Literal`` the choices, ``Annotated[..., Range(...)]`` the ranges.
* :mod:`seqrec.config.schema`: the top-level and ``eval`` schemas and
  :func:`~seqrec.config.schema.validate_config`, which checks a whole composed config.

Values live in ``conf/`` (what ``python train.py --cfg job`` prints); Python defaults exist for
library use and a test keeps them equal to ``conf/``'s. Library classes raise plain
``ValueError``; only this layer speaks in option names (:class:`seqrec.errors.ConfigError`).
"""

from seqrec.options import NonNegativeInt, Pattern, PositiveInt, Probability, Range, check_options, construct

__all__ = ["NonNegativeInt", "Pattern", "PositiveInt", "Probability", "Range", "check_options", "construct"]
