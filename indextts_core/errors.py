"""Exception types the engine raises for problems a user can act on.

Every message says what is wrong and what to do; the UI and CLI show them as they are.
"""

from __future__ import annotations


class IndexTTSError(Exception):
    """Base class of the engine's own errors."""


class ConfigError(IndexTTSError):
    """A configuration file is missing, unreadable or lacks a required field."""


class CheckpointError(IndexTTSError):
    """A weight file is missing, truncated, or does not have the expected keys and shapes."""


class ModelNotFoundError(CheckpointError):
    """Weights are not on disk and could not be downloaded."""


class AudioError(IndexTTSError):
    """An audio input is unreadable, empty, silent or otherwise unusable."""


class TextError(IndexTTSError):
    """A text input is empty, too long, or has invalid annotations."""


class InvalidOptionError(IndexTTSError):
    """An option is out of range or conflicts with another option."""
