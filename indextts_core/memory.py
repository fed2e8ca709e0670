"""Giving resident weight pages back to the system between the phases of a take (Linux, CPU).

The weights are memory-mapped from their files (:mod:`indextts_core.checkpoint`), so a page
counts towards the process's memory only once read, and a page that was only read can be
dropped and read again from the page cache, unchanged. A take has two phases that touch
different weights: the voice features (w2v-BERT, CAMPPlus and the GPT's two conditioners,
about 2.8 GB at full size) once per new clip, and the segments (the GPT decoder, s2mel, the
codec's codebook and the vocoder) for every take. Dropping one phase's pages before the other
runs keeps the process's peak near the larger phase instead of their sum; the cost is
re-reading the pages from the page cache (minor faults) when a new voice comes.

Only pages of private file mappings are dropped: ``MADV_DONTNEED`` on such a page brings back
the file's bytes on the next read, whereas on anonymous memory (a weight converted or folded
at load) it would zero the data, so those ranges are never touched. Nor is a weight with a page
that was written after loading (copy-on-write made it anonymous: ``/proc/self/pagemap`` says
so), whose change the file's bytes would silently undo. Giving pages back only saves memory:
any failure leaves them resident and the take goes on.
"""

from __future__ import annotations

import bisect
import ctypes
import logging
import mmap
import sys
from collections.abc import Iterable

import numpy as np
import torch
from torch import nn

log = logging.getLogger(__name__)

_MADV_DONTNEED = getattr(mmap, "MADV_DONTNEED", 4)
_PAGE = mmap.PAGESIZE
_PRESENT = np.uint64(1 << 63)
_FILE_PAGE = np.uint64(1 << 61)  # a page cache page (or shared memory): not written privately

Span = tuple[int, int]


class _FileMappings:
    """This process's private mappings of regular files, sorted, for containment lookups."""

    def __init__(self) -> None:
        spans = []
        with open("/proc/self/maps") as f:
            for line in f:
                parts = line.split(maxsplit=5)
                if len(parts) < 6 or not parts[5].startswith("/") or parts[1][3] != "p":
                    continue
                if parts[5].rstrip().endswith("(deleted)"):
                    continue
                start, end = (int(x, 16) for x in parts[0].split("-"))
                spans.append((start, end))
        spans.sort()
        self._starts = [a for a, _ in spans]
        self._spans = spans

    def contain(self, span: Span) -> bool:
        i = bisect.bisect_right(self._starts, span[0]) - 1
        return i >= 0 and span[1] <= self._spans[i][1]


def _tensor_span(t: torch.Tensor) -> Span:
    """The bytes from a tensor's first to its last element (a strided view's gaps included)."""
    extent = 1 + sum((n - 1) * s for n, s in zip(t.shape, t.stride(), strict=True)) if t.numel() else 0
    start = t.data_ptr()
    return start, start + extent * t.element_size()


def _whole_pages(span: Span) -> tuple[int, int]:
    """First and end page number of the pages lying wholly inside ``span``."""
    return -(-span[0] // _PAGE), span[1] // _PAGE


def _file_spans(tensors: Iterable[torch.Tensor]) -> list[Span]:
    spans = {_tensor_span(t) for t in tensors if t.device.type == "cpu" and t.numel()}
    if not spans:
        return []
    mappings = _FileMappings()
    return sorted(span for span in spans if mappings.contain(span))


def _page_flags(pagemap, first: int, end: int) -> np.ndarray:
    pagemap.seek(first * 8)
    return np.frombuffer(pagemap.read((end - first) * 8), dtype=np.uint64)


def release_weight_pages(modules: Iterable[nn.Module]) -> int:
    """:func:`release_pages` of ``modules``' parameters and buffers; returns the bytes given back."""
    return release_pages(t for m in modules for t in (*m.parameters(), *m.buffers()))


def release_pages(tensors: Iterable[torch.Tensor]) -> int:
    """Drop the resident pages of the file-backed CPU ``tensors``; returns the bytes given back.

    Whole pages inside each tensor only (a page shared with a neighbour is kept). A no-op
    (returning 0) off Linux, for tensors on a GPU, for tensors not mapped from a file and for
    a tensor with a page written since it was mapped.
    """
    if not sys.platform.startswith("linux"):
        return 0
    try:
        spans = _file_spans(tensors)
        if not spans:
            return 0
        libc = ctypes.CDLL(None, use_errno=True)
        libc.madvise.argtypes = (ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int)
        given = 0
        with open("/proc/self/pagemap", "rb") as pagemap:
            for span in spans:
                first, end = _whole_pages(span)
                if end <= first:
                    continue
                flags = _page_flags(pagemap, first, end)
                present = (flags & _PRESENT) != 0
                if not present.any():
                    continue
                if (present & ((flags & _FILE_PAGE) == 0)).any():
                    log.warning("a memory-mapped weight was written after loading; its pages stay resident")
                    continue
                if libc.madvise(first * _PAGE, (end - first) * _PAGE, _MADV_DONTNEED) != 0:
                    log.debug("madvise failed (errno %d); these pages stay resident", ctypes.get_errno())
                    continue
                given += int(present.sum()) * _PAGE
        return given
    except OSError as e:  # no /proc, no libc: keep the pages
        log.debug("cannot give weight pages back (%s)", e)
        return 0


def resident_file_pages(tensors: Iterable[torch.Tensor]) -> int:
    """Bytes of the whole pages inside the file-backed ``tensors`` that are resident in this
    process: what :func:`release_pages` would give back (``/proc/self/pagemap``'s present bit;
    0 off Linux). Duplicate spans count once."""
    if not sys.platform.startswith("linux"):
        return 0
    total = 0
    with open("/proc/self/pagemap", "rb") as pagemap:
        for span in _file_spans(tensors):
            first, end = _whole_pages(span)
            if end > first:
                total += int(((_page_flags(pagemap, first, end) & _PRESENT) != 0).sum()) * _PAGE
    return total
