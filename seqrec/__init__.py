"""seqrec: training and comparing sequential recommenders with BCE, CE and CCE losses.

Reproduces Li, Yu, Zeng, Yang, "Effective and Efficient Training for Sequential
Recommendation Using Cumulative Cross-Entropy Loss" (AAAI 2023).
"""

__version__ = "0.1.0"

# ${seqrec.seeds:…} and ${seqrec.threads_per_job:…} used by conf/experiment/table2.yaml
from seqrec.runs.sweep import register_resolvers as _register_resolvers  # noqa: E402

_register_resolvers()


def __getattr__(name: str):
    """``seqrec.load_run`` (imported on first use: it needs torch and the models)."""
    if name == "load_run":
        from seqrec.recommend import load_run

        return load_run
    raise AttributeError(f"module 'seqrec' has no attribute {name!r}")
