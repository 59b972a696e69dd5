"""One small exception hierarchy for the harness.

Every error a user can cause (bad file, bad setting, unfit model) is a
``HarnessError`` whose message is one line naming the file, line or setting.
The CLI turns these into a single ``ERROR`` line and a non-zero exit; anything
else is a bug and gets a traceback.
"""

from __future__ import annotations


class HarnessError(Exception):
    """Base of all errors the user can act on; the message is one line."""

    exit_code = 2


class ConfigError(HarnessError):
    """A profile, user.conf, model card or command-line value is wrong."""


class DatasetError(HarnessError):
    """The dataset directory, val_map, an image or a calibration list is wrong."""


class ModelError(HarnessError):
    """A model file does not fit its card or is not a classifier."""


class EngineError(HarnessError):
    """Inference failed while LoadGen was running."""

    exit_code = 3


class RunInterrupted(HarnessError):
    """The run was stopped by a signal; its directory is marked incomplete."""

    exit_code = 130


class SubmissionError(HarnessError):
    """A run or tree that must not be submitted; the message names the reason and the file."""


class SystemDescriptionError(ConfigError):
    """The system description lacks a required field or has a wrong value."""
