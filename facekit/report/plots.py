"""Matplotlib without a display (Agg), and figures written atomically as PNG."""

from __future__ import annotations

from pathlib import Path

from facekit.fsutil import atomic_path


def pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_figure(fig, path: Path) -> None:
    """``fig`` as a PNG at ``path`` (temp file + rename), then closed."""
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=110, bbox_inches="tight", format="png")
    pyplot().close(fig)
