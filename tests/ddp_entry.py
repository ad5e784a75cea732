"""``train.py`` for the torchrun tests, where one rank can be sent SIGTERM at its n-th training batch.

Environment: ``SEQREC_TEST_SIGTERM="<rank>:<batch>"`` (unset = plain ``train.py``). Only the named
rank gets the signal, so the test also checks that every rank stops after the same batch.
"""

import os
import runpy
import signal
from pathlib import Path

from seqrec.training.trainer import Trainer

if os.environ.get("SEQREC_TEST_SIGTERM"):
    who, at = map(int, os.environ["SEQREC_TEST_SIGTERM"].split(":"))
    if int(os.environ["RANK"]) == who:
        calls = {"n": 0}
        original = Trainer._autocast

        def counting(self):  # runs once per training batch in fp32
            calls["n"] += 1
            if calls["n"] == at:
                os.kill(os.getpid(), signal.SIGTERM)
            return original(self)

        Trainer._autocast = counting

runpy.run_path(str(Path(__file__).resolve().parents[1] / "train.py"), run_name="__main__")
