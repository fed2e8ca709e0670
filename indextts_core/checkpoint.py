"""Reading released weight files into our modules, with errors that name file and key.

The release's files hold more than inference uses (training heads, decoder halves,
w2v-BERT layers past 17), so keys a module does not have are skipped; a key a module
needs that is absent, or present with another shape, is an error.
"""

from __future__ import annotations

import logging
import pickle
import zipfile
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import TypeVar

import torch
from torch import nn

from .errors import CheckpointError
from .memory import release_pages

log = logging.getLogger(__name__)

StateDict = dict[str, torch.Tensor]
ModuleT = TypeVar("ModuleT", bound=nn.Module)
_FOLD_BATCH_BYTES = 32 << 20  # weight-norm sources given back together after folding


def read_state_dict(path: str | Path, keep: Callable[[str], bool] | None = None) -> StateDict:
    """Load a ``.safetensors`` or ``torch.save`` file and flatten nested dicts to dotted keys.

    Tensors land on the CPU. ``keep`` selects keys; for safetensors the others are never
    read from disk (the w2v-BERT file holds 24 layers of which 17 are used). Raises
    :class:`CheckpointError` for a missing, truncated or otherwise unreadable file.
    """
    from safetensors import SafetensorError, safe_open

    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"weight file not found: {path}")
    try:
        if path.suffix == ".safetensors":
            with safe_open(str(path), framework="pt", device="cpu") as f:
                return {k: f.get_tensor(k) for k in f.keys() if keep is None or keep(k)}  # noqa: SIM118
        # Memory-mapped (zip format): tensors stay file-backed pages until a module uses
        # them, so a multi-GB file is never held twice (once read, once in the module).
        raw = torch.load(path, map_location="cpu", weights_only=True, mmap=zipfile.is_zipfile(path))
    except (SafetensorError, RuntimeError, OSError, EOFError, ValueError, pickle.UnpicklingError,
            zipfile.BadZipFile) as e:
        raise CheckpointError(
            f"{path}: cannot be read ({type(e).__name__}: {e}). The file is probably truncated "
            "or corrupt: delete it and download it again.") from e
    if isinstance(raw, torch.Tensor):
        return {"": raw}
    if not isinstance(raw, Mapping):
        raise CheckpointError(f"{path}: expected a dict of tensors, found {type(raw).__name__}")
    sd = flatten(raw)
    return sd if keep is None else {k: v for k, v in sd.items() if keep(k)}


def flatten(nested: Mapping, prefix: str = "") -> StateDict:
    out: StateDict = {}
    for key, value in nested.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            out.update(flatten(value, name + "."))
        elif isinstance(value, torch.Tensor):
            out[name] = value
    return out


def sub_state_dict(sd: Mapping[str, torch.Tensor], prefix: str) -> StateDict:
    """Keys under ``prefix`` (a trailing dot is implied), with the prefix removed."""
    prefix = prefix if prefix.endswith(".") or not prefix else prefix + "."
    return {k[len(prefix):]: v for k, v in sd.items() if k.startswith(prefix)}


def strip_prefix(sd: Mapping[str, torch.Tensor], prefix: str) -> StateDict:
    """Remove ``prefix`` from keys that have it, keep the others (e.g. DDP's ``module.``)."""
    return {(k[len(prefix):] if k.startswith(prefix) else k): v for k, v in sd.items()}


def fold_weight_norm(sd: Mapping[str, torch.Tensor]) -> StateDict:
    """Replace every ``X.weight_g`` / ``X.weight_v`` pair by ``X.weight = g * v / ||v||``.

    The norm runs over all dimensions but 0, as ``torch.nn.utils.weight_norm(dim=0)``
    computes it, so the folded weight is bit-identical to the one the reference uses. The
    pairs' pages, read once for the fold, are given back (the file stays mapped for the
    weights used as they are, and would keep them resident otherwise).
    """
    out: StateDict = {}
    folded: list[torch.Tensor] = []
    folded_bytes = 0
    for key, value in sd.items():
        if key.endswith(".weight_g") or key == "weight_g":
            continue
        if key.endswith("weight_v"):
            base = key[: -len("_v")]
            g = sd.get(base + "_g")
            if g is None:
                raise CheckpointError(f"{key} has no matching weight_g")
            out[base] = torch._weight_norm(value.float(), g.float(), 0).to(value.dtype)
            folded += (value, g)
            folded_bytes += value.nbytes + g.nbytes
            # In batches: one /proc read per batch, and the sources never all resident at once.
            if folded_bytes > _FOLD_BATCH_BYTES:
                release_pages(folded)
                folded, folded_bytes = [], 0
        else:
            out[key] = value
    release_pages(folded)
    return out


def build_empty(factory: Callable[[], ModuleT], *, device: str | torch.device, dtype: torch.dtype) -> ModuleT:
    """``factory()`` built on the meta device, then given storage on ``device`` in ``dtype``.

    No random initialiser runs for weights the checkpoint overwrites anyway, and no CPU copy is
    made on the way to a GPU. The storage is uninitialised: :func:`load_into` must fill every
    saved tensor, and a module whose buffers are a function of its sizes (not saved, or saved
    but rebuilt) recomputes them in a ``reset_buffers()`` method, which is called here.
    """
    with torch.device("meta"):
        model = factory()
    model = model.to(dtype=dtype).to_empty(device=device)
    for m in model.modules():
        reset = getattr(m, "reset_buffers", None)
        if callable(reset):
            reset()
    return model


def load_into(module: nn.Module, sd: Mapping[str, torch.Tensor], *, file: str | Path,
              prefix: str = "", optional: Iterable[str] = ()) -> None:
    """Put ``sd`` into ``module`` after checking every key the module needs.

    The file's tensors become the module's own (``assign``) when dtype and device already
    match, and are converted once otherwise, so loading never keeps two copies.

    ``prefix`` is how the module's keys are spelled in ``file`` (for messages only).
    ``optional`` names module keys that may be absent from the file (they keep the
    module's own value, e.g. a buffer the module recomputes). Keys of ``sd`` that the
    module does not have are skipped.
    """
    own = module.state_dict()
    optional = set(optional)
    missing = [k for k in own if k not in sd and k not in optional]
    if missing:
        shown = ", ".join(prefix + k for k in missing[:5])
        more = f" and {len(missing) - 5} more" if len(missing) > 5 else ""
        raise CheckpointError(f"{file}: missing key {shown}{more}. The file does not match this "
                              "model (wrong file, or an incomplete download).")
    for k, target in own.items():
        if k in sd and tuple(sd[k].shape) != tuple(target.shape):
            raise CheckpointError(f"{file}: key {prefix}{k} has shape {tuple(sd[k].shape)}, "
                                  f"expected {tuple(target.shape)} from config.yaml")
    skipped = [k for k in sd if k not in own]
    if skipped:
        log.debug("%s: %d keys not used by %s (e.g. %s)", file, len(skipped),
                  type(module).__name__, skipped[0])
    used = {k: _as_target(v, own[k]) for k, v in sd.items() if k in own}
    module.load_state_dict(used, strict=False, assign=True)


def _as_target(value: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """``value`` in ``target``'s dtype and device (itself when they already match: no copy)."""
    if (value.dtype, value.device) == (target.dtype, target.device):
        return value
    return value.to(device=target.device, dtype=target.dtype)
