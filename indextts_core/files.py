"""Small file helpers shared by the engine and the app."""

from __future__ import annotations

import hashlib
import io
import zipfile
from collections.abc import Mapping
from pathlib import Path


def sha256_file(path: str | Path, chunk: int = 8 << 20) -> str:
    """Hex SHA-256 of a file's bytes, read in chunks (model files are gigabytes)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(chunk), b""):
            h.update(block)
    return h.hexdigest()


def decode_utf8(data: bytes, name: str, error: type[Exception]) -> str:
    """Text of an uploaded file, or ``error`` naming the line of the first byte that is not UTF-8."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = data[:e.start].count(b"\n") + 1
        raise error(f"{name} is not UTF-8 text (first bad byte on line {line}); "
                    "save it as UTF-8 and load it again") from None


def zip_files(files: Mapping[str, Path], texts: Mapping[str, str] | None = None) -> bytes:
    """A ZIP of files (name in the archive → file on disk) plus small text files."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for arcname, path in files.items():
            z.write(path, arcname)
        for arcname, content in (texts or {}).items():
            z.writestr(arcname, content)
    return buf.getvalue()
