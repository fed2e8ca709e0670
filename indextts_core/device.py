"""Choosing the torch device and dtype."""

from __future__ import annotations

import torch

from .errors import InvalidOptionError

_DTYPES = {"fp32": torch.float32, "float32": torch.float32,
           "fp16": torch.float16, "float16": torch.float16, "half": torch.float16,
           "bf16": torch.bfloat16, "bfloat16": torch.bfloat16}


def resolve_device(device: str | torch.device | None = "auto") -> torch.device:
    """``"auto"`` picks CUDA, then Apple MPS, then the CPU; anything else is checked."""
    if device is None or str(device) == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as e:
        raise InvalidOptionError(f"unknown device {device!r}: use auto, cpu, cuda, cuda:N or mps") from e
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise InvalidOptionError("device 'cuda' was asked for, but this torch sees no CUDA GPU")
    if dev.type == "mps" and not torch.backends.mps.is_available():
        raise InvalidOptionError("device 'mps' was asked for, but Apple MPS is not available")
    return dev


def resolve_dtype(dtype: str | torch.dtype | None, device: torch.device) -> torch.dtype:
    """The compute dtype of the GPT and conditioners.

    ``None``/``"auto"`` means float16 on CUDA and MPS, float32 on the CPU. bfloat16 needs
    hardware support on CUDA; on the CPU it is an opt-in fast mode (decode 1.47x on an
    AVX-512 BF16 CPU, codes no longer the reference's).
    """
    if isinstance(dtype, torch.dtype):
        if dtype not in (torch.float32, torch.float16, torch.bfloat16):
            raise InvalidOptionError(f"unsupported dtype {dtype}")
        return dtype
    if dtype is None or dtype == "auto":
        return torch.float16 if device.type in ("cuda", "mps") else torch.float32
    try:
        return _DTYPES[str(dtype).lower()]
    except KeyError:
        raise InvalidOptionError(f"unknown precision {dtype!r}: use auto, fp32, fp16 or bf16") from None
