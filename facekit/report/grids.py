"""PNG grids of face crops: one row per sequence (or identity), faces evenly spaced along it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image, ImageDraw

from facekit.fsutil import atomic_path


def sequence_grid(faces: pd.DataFrame, root: Path, target: Path, rows: int = 8, cols: int = 10,
                  tile: int = 72, group: str = "sequence_id") -> Path | None:
    """Write a grid of up to ``rows`` groups x ``cols`` crops (paths relative to ``root``); None if no faces."""
    if faces.empty:
        return None
    groups = sorted(faces[group].unique())
    pick = [groups[i] for i in np.linspace(0, len(groups) - 1, min(rows, len(groups))).round().astype(int)]
    label_w = 150
    canvas = Image.new("RGB", (label_w + cols * tile, len(pick) * tile), "white")
    draw = ImageDraw.Draw(canvas)
    for r, gid in enumerate(pick):
        members = faces[faces[group] == gid].sort_values("crop_path")
        take = members.iloc[np.unique(np.linspace(0, len(members) - 1, min(cols, len(members))).round().astype(int))]
        draw.text((4, r * tile + tile // 2 - 6), f"{str(gid)[-22:]}\n{len(members)} faces", fill="black")
        for c, rel in enumerate(take["crop_path"]):
            with Image.open(root / rel) as im:
                canvas.paste(im.convert("RGB").resize((tile, tile)), (label_w + c * tile, r * tile))
    with atomic_path(target) as tmp:
        canvas.save(tmp, format="PNG")
    return target
