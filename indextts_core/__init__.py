"""IndexTTS Studio's engine: IndexTTS-2 inference in plain PyTorch."""

from .errors import (
    AudioError,
    CheckpointError,
    ConfigError,
    IndexTTSError,
    InvalidOptionError,
    ModelNotFoundError,
    TextError,
)

__version__ = "0.1.0"

__all__ = [
    "AudioError",
    "CheckpointError",
    "ConfigError",
    "IndexTTSError",
    "InvalidOptionError",
    "ModelNotFoundError",
    "TextError",
    "__version__",
]
