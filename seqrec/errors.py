"""User-facing errors.

Every error a user can cause (a missing file, a malformed line, an unknown option, an empty
dataset) is raised as :class:`SeqrecError` with one paragraph that says what is wrong, where
(file, line, option) and how to fix it. ``train.py`` and the scripts print that paragraph
without a traceback and exit with status 1.
"""

from __future__ import annotations


class SeqrecError(Exception):
    """An error caused by the user's input or set-up, with a message that says how to fix it."""


class DataError(SeqrecError):
    """A data file is missing, unreadable, malformed, or empty after preprocessing."""


class ConfigError(SeqrecError):
    """A configuration value is unknown or inconsistent."""


class RunInterrupted(SeqrecError):
    """A run stopped by SIGTERM or Ctrl-C after saving its state; ``exit_code`` is 128 + signal.

    Args:
        signal: the signal number.
        run_dir: the run folder (its ``last.pt`` holds the state).
        pretraining: instead, the pre-training folder whose ``last.pt`` holds the state (the run
            stopped while pre-training; the same command continues it).
    """

    def __init__(self, signal: int, run_dir, pretraining=None):
        self.exit_code = 128 + int(signal)
        self.run_dir, self.pretraining = run_dir, pretraining
        if pretraining is not None:
            message = (
                f"stopped by signal {int(signal)} during pre-training; the state after the last finished batch "
                f"is saved in {pretraining}/last.pt. Run the same command again to continue the pre-training "
                "from there."
            )
        else:
            message = (
                f"stopped by signal {int(signal)}; the state after the last finished batch is saved in "
                f"{run_dir}/last.pt. Continue with: python train.py resume={run_dir}"
            )
        super().__init__(message)
