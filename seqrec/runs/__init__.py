"""One run of ``train.py``: the pipeline (:mod:`seqrec.runs.pipeline`), the run folder it writes
(:mod:`seqrec.runs.outputs`) and reads back (:mod:`seqrec.runs.rundir`), resume, trackers, sweeps and the
command line's error handling (:mod:`seqrec.runs.cli`).

Layers 3–4: built on :mod:`seqrec.training`; reports, recommend, tuning and analysis build on it.
"""
