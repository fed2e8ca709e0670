"""The user-facing message for missing model files: what is missing, where each file comes
from and goes, and what the user can do."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from urllib.parse import quote

from .hub import endpoint_from_env
from .model_folder import FileStatus, format_bytes

MIRROR_ENDPOINT = "https://hf-mirror.com"


def missing_files_help(model_dir: Path, missing: Sequence[FileStatus], endpoint: str | None = None,
                       reason: str | None = None, offline: bool = False) -> str:
    """What is missing, where each file comes from and goes, and what the user can do.

    Used for ``ModelNotFoundError`` messages, and by the UI for its "what to do" panel.
    """
    endpoint = endpoint_from_env(endpoint)
    total = sum(f.remaining for f in missing)
    lines = [f"IndexTTS-2 model files are missing in {model_dir}"
             + (" and could not be downloaded." if reason else ".")]
    if reason:
        lines.append(f"Reason: {reason}")
    lines.append(f"Missing ({len(missing)} file(s), about {format_bytes(total)} to download):")
    for f in missing:
        note = " (a Git LFS pointer, not the weights)" if f.state == "lfs-pointer" else ""
        note = f" ({format_bytes(f.size)} downloaded so far)" if f.state == "partial" else note
        lines += [f"  {f.local}  ~{format_bytes(f.expected)}{note}",
                  f"      hub file:   {f.repo_id} : {f.filename}",
                  f"      direct URL: {endpoint}/{f.repo_id}/resolve/main/{quote(f.filename)}",
                  f"      put it at:  {f.path}"]
    lines += [
        "What you can do:",
        f"  - Download them: python -m indextts_core download --model-dir {model_dir}",
        "    (an interrupted download continues where it stopped when run again).",
        "  - If huggingface.co is blocked or slow where you are, use a mirror: set the environment",
        f"    variable HF_ENDPOINT={MIRROR_ENDPOINT} and run the download again.",
        "  - Without internet on this machine: fetch the files elsewhere (browser, or",
        "    `hf download <repo> <file>`) and copy each one to the path shown above.",
        "  - To use a model folder elsewhere: pass --model-dir DIR (or set INDEXTTS_MODEL_DIR).",
    ]
    if offline:
        lines.append("  - Offline mode is on: unset HF_HUB_OFFLINE (or drop --offline) to allow downloads.")
    return "\n".join(lines)
