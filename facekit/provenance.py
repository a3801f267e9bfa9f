"""What a result came from: facekit's version, the git revision, the library versions and sha256 fingerprints of
files. Every stage that writes a report, a lineage or a summary takes these from here."""

from __future__ import annotations

import hashlib
import platform
import subprocess
from pathlib import Path

__version__ = "0.1.0"


def git_revision() -> str | None:
    """The checkout's HEAD, or None outside a git checkout."""
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5,
                             cwd=Path(__file__).resolve().parent)
        return out.stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


def versions() -> dict[str, str]:
    import numpy
    import sklearn
    import torch

    return {"facekit": __version__, "python": platform.python_version(), "torch": torch.__version__,
            "numpy": numpy.__version__, "scikit-learn": sklearn.__version__}


def file_digest(path: str | Path) -> str:
    """sha256 of one file's bytes (16 hex digits), read in 1 MiB blocks."""
    h = hashlib.sha256()
    with Path(path).open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()[:16]


def fingerprint_files(paths: list[Path], base: Path | None = None) -> str:
    """sha256 (16 hex digits) over the names and bytes of files in sorted order: each name is the path relative to
    ``base``, or the file name without one."""
    h = hashlib.sha256()
    for p in sorted(Path(p) for p in paths):
        h.update((p.relative_to(base).as_posix() if base is not None else p.name).encode())
        h.update(p.read_bytes())
    return h.hexdigest()[:16]


def fingerprint_strings(items: list[str]) -> str:
    """sha256 (16 hex digits) over strings in sorted order."""
    h = hashlib.sha256()
    for s in sorted(items):
        h.update(s.encode() + b"\n")
    return h.hexdigest()[:16]
