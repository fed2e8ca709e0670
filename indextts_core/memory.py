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
at load) it would zero the data, so those ranges are never touched. Weights are never written
after loading, so nothing is lost.
"""

from __future__ import annotations

import ctypes
import logging
import mmap
import sys
from collections.abc import Iterable

import numpy as np
import torch
from torch import nn

log = logging.getLogger(__name__)

_MADV_DONTNEED = 4
_PAGE = mmap.PAGESIZE


def _file_mappings() -> list[tuple[int, int]]:
    """``(start, end)`` of this process's private mappings of regular files."""
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
    return spans


def _tensor_span(t: torch.Tensor) -> tuple[int, int]:
    extent = 1 + sum((n - 1) * s for n, s in zip(t.shape, t.stride(), strict=True)) if t.numel() else 0
    start = t.data_ptr()
    return start, start + extent * t.element_size()


def _inside(span: tuple[int, int], mappings: list[tuple[int, int]]) -> bool:
    lo, hi = span
    return any(a <= lo and hi <= b for a, b in mappings)


def release_weight_pages(modules: Iterable[nn.Module]) -> int:
    """Drop the resident pages of ``modules``' file-backed CPU weights; returns the bytes advised."""
    return release_pages(t for m in modules for t in (*m.parameters(), *m.buffers()))


def release_pages(tensors: Iterable[torch.Tensor]) -> int:
    """Drop the resident pages of the file-backed CPU ``tensors``; returns the bytes advised.

    Whole pages inside each tensor only (a page shared with a neighbour is kept). A no-op
    (returning 0) off Linux, for tensors on a GPU and for tensors not mapped from a file.
    """
    if not sys.platform.startswith("linux"):
        return 0
    tensors = [t for t in tensors if t.device.type == "cpu" and t.numel()]
    if not tensors:
        return 0
    mappings = _file_mappings()
    libc = ctypes.CDLL(None, use_errno=True)
    libc.madvise.argtypes = (ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int)
    advised = 0
    seen: set[tuple[int, int]] = set()
    for t in tensors:
        span = _tensor_span(t)
        if span in seen or not _inside(span, mappings):
            continue
        seen.add(span)
        lo = -(-span[0] // _PAGE) * _PAGE
        hi = span[1] // _PAGE * _PAGE
        if hi <= lo:
            continue
        if libc.madvise(lo, hi - lo, _MADV_DONTNEED) != 0:
            log.debug("madvise failed (errno %d); weight pages stay resident", ctypes.get_errno())
            return advised
        advised += hi - lo
    return advised


def resident_file_pages(tensors: Iterable[torch.Tensor]) -> int:
    """Bytes of the whole pages inside the file-backed ``tensors`` that are resident in this
    process: what :func:`release_pages` would give back (``/proc/self/pagemap``'s present bit;
    0 off Linux). Duplicate spans count once."""
    if not sys.platform.startswith("linux"):
        return 0
    mappings = _file_mappings()
    spans = {_tensor_span(t) for t in tensors if t.device.type == "cpu" and t.numel()}
    spans = {span for span in spans if _inside(span, mappings)}
    total = 0
    with open("/proc/self/pagemap", "rb") as f:
        for lo, hi in spans:
            first, last = -(-lo // _PAGE), hi // _PAGE
            if last <= first:
                continue
            f.seek(first * 8)
            entries = f.read((last - first) * 8)
            present = np.frombuffer(entries, dtype=np.uint64) >> np.uint64(63)
            total += int(present.sum()) * _PAGE
    return total
