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
from .options import EMOTIONS, SAMPLE_RATE, Duration, Emotion, Sampling, SegmentAudio, SegmentInfo, SynthesisResult
from .pipeline import IndexTTS2, Synthesis

__version__ = "0.1.0"

__all__ = [
    "EMOTIONS",
    "SAMPLE_RATE",
    "AudioError",
    "CheckpointError",
    "ConfigError",
    "Duration",
    "Emotion",
    "IndexTTS2",
    "IndexTTSError",
    "InvalidOptionError",
    "ModelNotFoundError",
    "Sampling",
    "SegmentAudio",
    "SegmentInfo",
    "Synthesis",
    "SynthesisResult",
    "TextError",
    "__version__",
]
