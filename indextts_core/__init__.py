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
from .options import (
    EMOTIONS,
    SAMPLE_RATE,
    Duration,
    Emotion,
    Sampling,
    SegmentAudio,
    SegmentInfo,
    SynthesisOptions,
    SynthesisResult,
)
from .pipeline import IndexTTS2, Synthesis
from .progress import SynthesisProgress
from .trace import GoldenRecorder, NullRecorder, Recorder

__version__ = "0.1.0"

__all__ = [
    "EMOTIONS",
    "SAMPLE_RATE",
    "AudioError",
    "CheckpointError",
    "ConfigError",
    "Duration",
    "Emotion",
    "GoldenRecorder",
    "IndexTTS2",
    "IndexTTSError",
    "InvalidOptionError",
    "ModelNotFoundError",
    "NullRecorder",
    "Recorder",
    "Sampling",
    "SegmentAudio",
    "SegmentInfo",
    "Synthesis",
    "SynthesisOptions",
    "SynthesisProgress",
    "SynthesisResult",
    "TextError",
    "__version__",
]
