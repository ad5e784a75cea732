"""seqrec: training and comparing sequential recommenders with BCE, CE and CCE losses.

Reproduces Li, Yu, Zeng, Yang, "Effective and Efficient Training for Sequential
Recommendation Using Cumulative Cross-Entropy Loss" (AAAI 2023).
"""

__version__ = "0.1.0"

# the ${seqrec.*} resolvers conf/ uses (folder names, seeds, threads); seqrec.resolvers imports no
# other part of the package
from seqrec.resolvers import register_resolvers as _register_resolvers  # noqa: E402

_register_resolvers()


def __getattr__(name: str):
    """``seqrec.load_run`` (imported on first use: it needs torch and the models)."""
    if name == "load_run":
        from seqrec.recommend import load_run

        return load_run
    raise AttributeError(f"module 'seqrec' has no attribute {name!r}")
