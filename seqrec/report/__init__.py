"""Reports built from finished run folders: Table 2 (RQ1), significance tests, RQ2 curves.

Li, Yu, Zeng, Yang, "Effective and Efficient Training for Sequential Recommendation Using
Cumulative Cross-Entropy Loss" (AAAI 2023). Everything here reads only the files a run writes
(``metrics.json``, ``per_user_test.csv``, ``epochs.csv``); ``python -m seqrec.report`` writes
all outputs. Table 2 and the t-tests compare any proposed loss with any baselines (default: the
paper's CCE vs BCE and CE); the paper's names, numbers and layout are in :mod:`seqrec.report.paper`.
"""

from seqrec.report.curves import rq2_figures, write_rq2
from seqrec.report.paper import load_paper
from seqrec.report.runs import collect_runs, read_epochs, read_per_user, resolve_runs
from seqrec.report.stats import paired_ttest, significance_table
from seqrec.report.table2 import Table2, build_table2, write_table2

__all__ = [
    "Table2",
    "build_table2",
    "collect_runs",
    "load_paper",
    "paired_ttest",
    "read_epochs",
    "read_per_user",
    "resolve_runs",
    "rq2_figures",
    "significance_table",
    "write_rq2",
    "write_table2",
]
