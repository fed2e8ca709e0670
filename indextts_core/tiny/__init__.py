"""A tiny random-weight IndexTTS-2 checkpoint, built from a rule.

The folder this module writes has the official layout (``gpt.pth``, ``s2mel.pth``,
``hf_cache/...``, ``qwen0.6bemo4-merge/...``) and loads through the same loaders as the
released weights, but every weight is pseudo-random: it produces noise, not speech. It
exists so that tests and the app can run without the 6-7 GB download.

The weights follow the golden bundle's ``golden-rule-v1``: each tensor is drawn from a
``torch.Generator`` seeded with ``crc32("salt|file|key")`` and scaled by its fan-in, so
a machine whose ``torch.randn`` takes the reference path (x86 with AVX2 or AVX-512 and
the torch the golden bundle was made with) rebuilds bit-identical files from
``manifest.json`` alone. Elsewhere (scalar kernels, ARM, another torch) a few last bits
differ; the folder is still a valid test model, and :func:`build_report` says so, so that
only the golden parity tests skip. Buffers that are not random (sinusoidal tables,
frequencies, filter taps) ship as exact values in ``buffers.npz``; BatchNorm statistics
come from the rule.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import math
import shutil
import zlib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

log = logging.getLogger(__name__)

RECIPE_DIR = Path(__file__).resolve().parent
MANIFEST_PATH = RECIPE_DIR / "manifest.json"
SMALL_FILES_DIR = RECIPE_DIR / "model"
BUFFERS_PATH = RECIPE_DIR / "buffers.npz"
MARKER_FILE = "TEST_MODEL.txt"
REPORT_FILE = "TEST_MODEL.json"

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


def rule_buffer(salt: str, file: str, key: str, shape: list[int], dtype: torch.dtype,
                sha256_16: str) -> torch.Tensor:
    """A buffer's value: BatchNorm stats from the rule, every other buffer from the shipped table.

    The other buffers (sinusoidal tables, timestep frequencies, position indices, filter taps)
    are what the official modules compute at construction with float32 ``sin``/``exp``, whose last
    bit differs between CPU kernels and maths libraries; their exact values ship in
    ``buffers.npz``, keyed by the manifest's digest, so every machine writes the same bytes.
    """
    gen = lambda: torch.Generator().manual_seed(_seed(salt, file, key))  # noqa: E731
    if key.endswith("running_mean"):
        return 0.1 * torch.randn(shape, generator=gen(), dtype=torch.float32)
    if key.endswith("running_var"):
        return 0.5 + torch.rand(shape, generator=gen(), dtype=torch.float32)
    if key.endswith("num_batches_tracked"):
        return torch.zeros(shape, dtype=torch.int64)
    table = _shipped_buffers()
    if sha256_16 not in table:
        raise KeyError(f"no shipped value for buffer {file}|{key} (digest {sha256_16}) in {BUFFERS_PATH}")
    value = torch.from_numpy(table[sha256_16].copy())
    if list(value.shape) != list(shape) or value.dtype != dtype:
        raise ValueError(f"shipped value for {file}|{key} is {value.dtype}{list(value.shape)}, "
                         f"the manifest says {dtype}{list(shape)}")
    return value


@functools.cache
def _shipped_buffers() -> dict[str, np.ndarray]:
    with np.load(BUFFERS_PATH) as z:
        return {name: z[name] for name in z.files}


def tensor_digest(t: torch.Tensor) -> str:
    return hashlib.sha256(t.contiguous().numpy().tobytes()).hexdigest()[:16]


def _nest(flat: Mapping[str, torch.Tensor], depth: int) -> dict:
    out: dict = {}
    for key, value in flat.items():
        parts = key.split(".")
        node = out
        for p in parts[:depth]:
            node = node.setdefault(p, {})
        node[".".join(parts[depth:])] = value
    return out


@dataclass(frozen=True)
class BuildReport:
    """How a built folder compares with the golden checkpoint the manifest describes.

    ``differing`` lists the rule-made tensors whose bytes are not the manifest's: this machine's
    ``torch.randn`` (its CPU kernel set or torch version) draws another last bit. Such a folder
    is a perfectly good test model, but not the golden one, so the golden parity tests skip on it.
    """

    tensors: int
    differing: tuple[str, ...]
    torch_version: str
    cpu_capability: str

    @property
    def golden_identical(self) -> bool:
        return not self.differing

    def summary(self) -> str:
        if self.golden_identical:
            return f"all {self.tensors} tensors equal the golden checkpoint bit for bit"
        return (f"{len(self.differing)} of {self.tensors} rule-made tensors differ from the golden digests "
                f"in their last bits (torch {self.torch_version}, CPU kernels {self.cpu_capability}: another "
                f"random stream); fine as a test model, but the golden parity tests will skip on it")


def build_checkpoint(dest: str | Path, *, manifest: dict | None = None,
                     small_files: str | Path = SMALL_FILES_DIR) -> Path:
    """Write the rule-defined checkpoint folder to ``dest`` and return it.

    It never refuses to build: the weights are noise by design, so a last-bit difference in
    torch's random stream is reported (a log line and ``TEST_MODEL.json``, see
    :func:`build_report`), not raised. The folder's layout, names and shapes are the released
    ones on every machine.
    """
    from safetensors.torch import save_file

    manifest = manifest or load_manifest()
    salt = manifest["salt"]
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    (dest / MARKER_FILE).unlink(missing_ok=True)  # a half-written folder is never taken for a built one
    shutil.copytree(small_files, dest, dirs_exist_ok=True)
    differing: list[str] = []
    count = 0
    for file, spec in manifest["files"].items():
        tensors: dict[str, torch.Tensor] = {}
        for key, info in spec["keys"].items():
            dtype = _DTYPES[info["dtype"]]
            if info["kind"] == "param":
                t = rule_param(salt, file, key, info["shape"]).to(dtype)
            else:
                t = rule_buffer(salt, file, key, info["shape"], dtype, info["sha256_16"]).to(dtype)
            if tensor_digest(t) != info["sha256_16"]:
                differing.append(f"{file}|{key}")
            tensors[key] = t
            count += 1
        path = dest / file
        path.parent.mkdir(parents=True, exist_ok=True)
        if spec["format"] == "safetensors":
            # The codec file is written by safetensors' save_model (no metadata); the others
            # carry transformers' {"format": "pt"} marker, as the released files do.
            meta = None if "no metadata" in spec["container"] else {"format": "pt"}
            save_file(tensors, str(path), metadata=meta)
        else:
            torch.save(_nest(tensors, spec["nesting"]), path)
        log.debug("wrote %s (%d tensors)", path, len(tensors))
    report = BuildReport(tensors=count, differing=tuple(differing), torch_version=torch.__version__,
                         cpu_capability=torch.backends.cpu.get_cpu_capability())
    (dest / REPORT_FILE).write_text(json.dumps(
        {"golden_identical": report.golden_identical, "tensors": report.tensors,
         "differing": list(report.differing), "torch_version": report.torch_version,
         "cpu_capability": report.cpu_capability}, indent=1), encoding="utf-8")
    (dest / MARKER_FILE).write_text(
        "This folder is a tiny random-weight IndexTTS-2 test checkpoint built by "
        "`python -m indextts_core make-test-model`.\nIt produces noise, not speech.\n"
        f"Against the golden checkpoint: {report.summary()}.\n", encoding="utf-8")
    log.info("test checkpoint in %s: %s", dest, report.summary())
    return dest


def build_report(model_dir: str | Path) -> BuildReport | None:
    """What :func:`build_checkpoint` found when it wrote ``model_dir`` (None: not a test model).

    Folders from before the report existed were only ever marked after every digest matched.
    """
    model_dir = Path(model_dir)
    if not is_test_model(model_dir):
        return None
    path = model_dir / REPORT_FILE
    if not path.is_file():
        return BuildReport(tensors=0, differing=(), torch_version="unknown", cpu_capability="unknown")
    data = json.loads(path.read_text(encoding="utf-8"))
    return BuildReport(tensors=int(data["tensors"]), differing=tuple(data["differing"]),
                       torch_version=str(data["torch_version"]), cpu_capability=str(data["cpu_capability"]))


def is_test_model(model_dir: str | Path) -> bool:
    """True for folders written by :func:`build_checkpoint`."""
    return (Path(model_dir) / MARKER_FILE).is_file()
