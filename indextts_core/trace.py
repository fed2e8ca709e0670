"""Looking inside a synthesis: stage tensors for the parity tests, wall time per stage.

The pipeline reports every intermediate tensor to a :class:`Recorder` under the names of the
golden bundles (``A_*``, see ``tests/golden.py``). :class:`NullRecorder` (the default) drops
them without converting anything; :class:`GoldenRecorder` keeps them as NumPy arrays, with a
``__segN`` suffix when the take has several segments, as the bundles store them.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator, Mapping
from typing import Protocol, runtime_checkable

import numpy as np
import torch
from torch import Tensor

TraceValue = Tensor | np.ndarray | list


@runtime_checkable
class Recorder(Protocol):
    """Receives a synthesis's stage tensors. ``enabled`` False lets the pipeline skip the extra
    work some values need (they are computed only to be recorded)."""

    enabled: bool

    def begin(self, num_segments: int) -> None:
        """Called once, before any segment, with the number of text segments."""

    def put(self, name: str, value: TraceValue, segment: int | None = None) -> None:
        """One stage tensor; ``segment`` is its text segment, ``None`` for per-take values."""


class NullRecorder:
    """Records nothing."""

    enabled = False

    def begin(self, num_segments: int) -> None:
        pass

    def put(self, name: str, value: TraceValue, segment: int | None = None) -> None:
        pass


class GoldenRecorder:
    """Keeps every stage tensor under its golden name, as float32/int NumPy arrays on the CPU."""

    enabled = True

    def __init__(self) -> None:
        self.tensors: dict[str, np.ndarray] = {}
        self._multi = False

    def begin(self, num_segments: int) -> None:
        self._multi = num_segments > 1

    def put(self, name: str, value: TraceValue, segment: int | None = None) -> None:
        if isinstance(value, Tensor):
            value = value.detach().float().cpu().numpy() if value.is_floating_point() else value.cpu().numpy()
        key = f"{name}__seg{segment}" if self._multi and segment is not None else name
        self.tensors[key] = np.asarray(value)


def record_all(recorder: Recorder, tensors: Mapping[str, TraceValue], segment: int | None = None) -> None:
    for name, value in tensors.items():
        recorder.put(name, value, segment)


class StageTimer:
    """Per-stage wall time, synchronised with the device so GPU work is counted where it runs."""

    def __init__(self, device: torch.device):
        self.device = device
        self.seconds: dict[str, float] = {}

    def _sync(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        elif self.device.type == "mps":
            torch.mps.synchronize()

    @contextlib.contextmanager
    def __call__(self, name: str) -> Iterator[None]:
        self._sync()
        start = time.perf_counter()
        try:
            yield
        finally:
            self._sync()
            self.seconds[name] = self.seconds.get(name, 0.0) + time.perf_counter() - start
