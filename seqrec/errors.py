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
