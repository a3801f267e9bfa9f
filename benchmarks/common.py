"""Helpers shared by the scripts in benchmarks/ (run as ``python benchmarks/<script>.py``: this folder is on
``sys.path`` then)."""

from __future__ import annotations

import resource
import sys
from pathlib import Path


def peak_rss_mb() -> float:
    """This process's peak resident memory (VmHWM; unlike ru_maxrss it is not inherited across fork + exec)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def facekit(args: list[str]) -> None:
    """Run a facekit command in this process; exit with its message if it fails."""
    from facekit.cli.main import main

    code = main(args)
    if code:
        sys.exit(f"facekit {' '.join(args)} failed ({code})")
