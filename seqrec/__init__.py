"""seqrec: training and comparing sequential recommenders with BCE, CE and CCE losses.

Reproduces Li, Yu, Zeng, Yang, "Effective and Efficient Training for Sequential
Recommendation Using Cumulative Cross-Entropy Loss" (AAAI 2023).
"""

__version__ = "0.1.0"

# ${seqrec.seeds:…} and ${seqrec.threads_per_job:…} used by conf/experiment/table2.yaml
from seqrec.sweep import register_resolvers as _register_resolvers  # noqa: E402

_register_resolvers()
