"""A tiny random-weight IndexTTS-2 checkpoint, built from a rule.

The folder this module writes has the official layout (``gpt.pth``, ``s2mel.pth``,
``hf_cache/...``, ``qwen0.6bemo4-merge/...``) and loads through the same loaders as the
released weights, but every weight is pseudo-random: it produces noise, not speech. It
exists so that tests and the app can run without the 6-7 GB download.

The weights follow the golden bundle's ``golden-rule-v1``: each tensor is drawn from a
``torch.Generator`` seeded with ``crc32("salt|file|key")`` and scaled by its fan-in, so
any machine rebuilds bit-identical files from ``manifest.json`` alone. Buffers are the
values the official modules compute at construction (sinusoidal tables, filter taps),
recomputed here; BatchNorm statistics come from the same rule.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import shutil
import zlib
from collections.abc import Callable, Mapping
from pathlib import Path

import numpy as np
import torch

log = logging.getLogger(__name__)

RECIPE_DIR = Path(__file__).resolve().parent
MANIFEST_PATH = RECIPE_DIR / "manifest.json"
SMALL_FILES_DIR = RECIPE_DIR / "model"
MARKER_FILE = "TEST_MODEL.txt"

# Output projections of attention blocks are scaled down so random attention stays peaky
# (see the golden bundle README, "Why the factors").
FACTORS: dict[str, list[tuple[str, float]]] = {
    "hf_cache/w2v-bert-2.0/model.safetensors": [("self_attn.linear_out.weight", 0.1)],
    "gpt.pth": [("self_attn.linear_out.weight", 0.1), ("attn.c_proj.weight", 0.1)],
    "s2mel.pth": [("attention.wo.weight", 0.1)],
    "hf_cache/bigvgan/bigvgan_generator.pt": [("conv_post.weight_g", 0.01)],
}

_DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16,
           "int64": torch.int64, "int32": torch.int32}


def load_manifest(path: Path = MANIFEST_PATH) -> dict:
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def _seed(salt: str, file: str, key: str) -> int:
    return zlib.crc32(f"{salt}|{file}|{key}".encode())


def rule_param(salt: str, file: str, key: str, shape: list[int]) -> torch.Tensor:
    """A parameter tensor under ``golden-rule-v1`` (float32)."""
    n = torch.randn(shape, generator=torch.Generator().manual_seed(_seed(salt, file, key)),
                    dtype=torch.float32)
    if key.endswith("weight_g"):
        v = 1 + 0.1 * n
    elif len(shape) == 1:
        v = 1 + 0.1 * n if key.endswith("weight") else 0.1 * n
    else:
        v = n / math.sqrt(math.prod(shape) // shape[0])
    for suffix, factor in FACTORS.get(file, []):
        if key.endswith(suffix):
            v = v * factor
    return v


def _sinusoid_table(length: int, dim: int) -> torch.Tensor:
    """wenet's absolute positional table: sin on even channels, cos on odd ones. (1, L, D)"""
    position = torch.arange(0, length).unsqueeze(1)
    div_term = torch.exp(torch.arange(0, dim, 2) * -(math.log(10000.0) / dim))
    pe = torch.zeros(length, dim)
    pe[:, 0::2] = torch.sin(position * div_term)
    pe[:, 1::2] = torch.cos(position * div_term)
    return pe.unsqueeze(0)


def _timestep_freqs(dim: int = 256, max_period: float = 10000.0) -> torch.Tensor:
    half = dim // 2
    return torch.exp(-math.log(max_period) * torch.arange(0, half, dtype=torch.float32) / half)


def _kaiser_sinc_taps(cutoff: float = 0.25, half_width: float = 0.3, taps: int = 12) -> torch.Tensor:
    """Low-pass FIR taps of BigVGAN's anti-aliased activations. (1, 1, taps)"""
    half = taps // 2
    atten = 2.285 * (half - 1) * math.pi * (4 * half_width) + 7.95
    if atten > 50.0:
        beta = 0.1102 * (atten - 8.7)
    elif atten >= 21.0:
        beta = 0.5842 * (atten - 21) ** 0.4 + 0.07886 * (atten - 21.0)
    else:
        beta = 0.0
    window = torch.kaiser_window(taps, beta=beta, periodic=False)
    time = torch.arange(-half, half) + 0.5 if taps % 2 == 0 else torch.arange(taps) - half
    filt = 2 * cutoff * window * torch.sinc(2 * cutoff * time)
    filt /= filt.sum()
    return filt.view(1, 1, taps)


def rule_buffer(salt: str, file: str, key: str, shape: list[int], dtype: torch.dtype) -> torch.Tensor:
    """A buffer's value: BatchNorm stats from the rule, everything else as the module builds it."""
    gen = lambda: torch.Generator().manual_seed(_seed(salt, file, key))  # noqa: E731
    if key.endswith("running_mean"):
        return 0.1 * torch.randn(shape, generator=gen(), dtype=torch.float32)
    if key.endswith("running_var"):
        return 0.5 + torch.rand(shape, generator=gen(), dtype=torch.float32)
    if key.endswith("num_batches_tracked"):
        return torch.zeros(shape, dtype=torch.int64)
    if key.endswith("pos_enc.pe"):
        return _sinusoid_table(shape[1], shape[2])
    if key.endswith("input_pos"):
        return torch.arange(shape[0], dtype=dtype)
    if key.endswith("freqs"):
        return _timestep_freqs(2 * shape[0])
    if key.endswith(".filter"):
        return _kaiser_sinc_taps(taps=shape[-1])
    raise KeyError(f"no rule for buffer {file}|{key}")


def tensor_digest(t: torch.Tensor) -> str:
    return hashlib.sha256(t.contiguous().numpy().tobytes()).hexdigest()[:16]


BufferSource = Callable[[str, str, list[int], torch.dtype], torch.Tensor]


def _nest(flat: Mapping[str, torch.Tensor], depth: int) -> dict:
    out: dict = {}
    for key, value in flat.items():
        parts = key.split(".")
        node = out
        for p in parts[:depth]:
            node = node.setdefault(p, {})
        node[".".join(parts[depth:])] = value
    return out


def build_checkpoint(dest: str | Path, *, manifest: dict | None = None,
                     small_files: str | Path = SMALL_FILES_DIR,
                     buffers: Mapping[str, np.ndarray] | None = None,
                     verify: bool = True) -> Path:
    """Write the rule-defined checkpoint folder to ``dest`` and return it.

    ``buffers`` maps ``"<file>|<key>"`` to recorded buffer values (the golden bundle's
    ``buffers.npz``); without it buffers are recomputed. With ``verify`` every tensor's
    digest is checked against the manifest, so a torch whose random stream differs is
    caught here rather than as mysterious numeric drift later.
    """
    from safetensors.torch import save_file

    manifest = manifest or load_manifest()
    salt = manifest["salt"]
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    shutil.copytree(small_files, dest, dirs_exist_ok=True)
    mismatched: list[str] = []
    for file, spec in manifest["files"].items():
        tensors: dict[str, torch.Tensor] = {}
        for key, info in spec["keys"].items():
            dtype = _DTYPES[info["dtype"]]
            if info["kind"] == "param":
                t = rule_param(salt, file, key, info["shape"]).to(dtype)
            elif buffers is not None and f"{file}|{key}" in buffers:
                t = torch.from_numpy(np.array(buffers[f"{file}|{key}"])).to(dtype)
            else:
                t = rule_buffer(salt, file, key, info["shape"], dtype).to(dtype)
            if verify and tensor_digest(t) != info["sha256_16"]:
                mismatched.append(f"{file}|{key}")
            tensors[key] = t
        path = dest / file
        path.parent.mkdir(parents=True, exist_ok=True)
        if spec["format"] == "safetensors":
            # The codec file is written by safetensors' save_model (no metadata); the others
            # carry transformers' {"format": "pt"} marker, as the released files do.
            meta = None if "no metadata" in spec["container"] else {"format": "pt"}
            save_file(tensors, str(path), metadata=meta)
        else:
            torch.save(_nest(tensors, spec["nesting"]), path)
        log.info("wrote %s (%d tensors)", path, len(tensors))
    if mismatched:
        raise RuntimeError(f"{len(mismatched)} tensors differ from the manifest digests "
                           f"(first: {mismatched[:3]}); this torch's random stream may differ "
                           "from the one the recipe was made with")
    (dest / MARKER_FILE).write_text(
        "This folder is a tiny random-weight IndexTTS-2 test checkpoint built by "
        "`python -m indextts_core make-test-model`.\nIt produces noise, not speech.\n",
        encoding="utf-8")
    return dest


def is_test_model(model_dir: str | Path) -> bool:
    """True for folders written by :func:`build_checkpoint`."""
    return (Path(model_dir) / MARKER_FILE).is_file()
