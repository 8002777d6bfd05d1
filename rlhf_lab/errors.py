"""Every error a person can fix. The UI, the CLI and the notebook show the message and nothing else.

Anything that is not a LabError is a bug: it keeps its traceback in the log.
"""
from __future__ import annotations


class LabError(Exception):
    """An operation cannot run as asked; the message says what was wrong and what to do."""


class ConfigError(LabError, ValueError):
    """A configuration value is out of range; the message says which and why."""


class SessionError(LabError, ValueError):
    """A session operation got bad input; nothing was written."""


class RankingInputError(LabError, ValueError):
    """A ranking typed or clicked by a person does not parse; the message says how to fix it."""


class ModelLoadError(LabError, RuntimeError):
    """The model could not be loaded; the message says what to do."""


class JudgeError(LabError, ValueError):
    """A judge name or module:function could not be used."""


class NotEnoughPairs(LabError, ValueError):
    """Training needs more preference pairs than the session has."""


class LabBusy(LabError, RuntimeError):
    """Another job is running; the message names it."""


class Stopped(LabError):
    """A cooperative stop was requested while a job ran."""


class TrainingDiverged(LabError, FloatingPointError):
    """A loss became NaN or inf; the last good weights were kept."""


class StorageError(LabError, RuntimeError):
    """Writing to the session folder failed (read-only disk, I/O error); nothing of that write was kept."""


class DiskFull(StorageError):
    """The disk (or quota) is full; nothing of that write was kept."""


class BrokenAdapter(LabError, RuntimeError):
    """A saved adapter folder is missing a file or holds one that cannot be read; the message names it."""


class ExportError(LabError, RuntimeError):
    """An export cannot be written as asked (a folder in the way, an adapter that does not fit its base);
    nothing was written."""


class NoDemonstrations(LabError, ValueError):
    """SFT needs demonstrations (answers a person wrote) and the session has none."""
