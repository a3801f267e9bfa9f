"""PNG grids of face crops: one row per sequence (or identity), faces evenly spaced along it."""

from __future__ import annotations

import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image, ImageDraw, ImageFont

from facekit.fsutil import atomic_path

HEADER = 18  # px of the "N of M shown" line
LINE = 12  # px per label line (PIL's default bitmap font)


def sequence_grid(faces: pd.DataFrame, root: Path, target: Path, rows: int = 8, cols: int = 10,
                  tile: int = 72, group: str = "sequence_id", noun: str | None = None,
                  counts: dict | None = None) -> Path | None:
    """Write a grid of up to ``rows`` groups (evenly spaced over all of them) x ``cols`` crops (paths relative to
    ``root``); None if no faces. A header says how many of how many groups are shown; each row's label (the
    group and its face count: ``counts[group]`` when given, e.g. the manifest's count where ``faces`` holds a
    sample, else its rows here; no count with ``counts={}``) is wrapped, never cut; the canvas is as wide as its
    widest row."""
    if faces.empty:
        return None
    nouns = {"sequence_id": "sequences", "identity": "identities", "utterance_id": "utterances"}
    noun = noun or nouns.get(group, group)
    groups = sorted(faces[group].unique())
    pick = [groups[i] for i in np.unique(np.linspace(0, len(groups) - 1, min(rows, len(groups))).round().astype(int))]
    font = ImageFont.load_default()
    chosen, labels = [], []
    for gid in pick:
        members = faces[faces[group] == gid].sort_values("crop_path")
        chosen.append(members.iloc[np.unique(np.linspace(0, len(members) - 1,
                                                         min(cols, len(members))).round().astype(int))])
        n = len(members) if counts is None else counts.get(gid)
        lines = textwrap.wrap(str(gid), 24, break_on_hyphens=False) or [""]
        labels.append(lines[: tile // LINE - (n is not None)] + ([f"{n} faces"] if n is not None else []))
    draw = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    label_w = 8 + int(max(draw.textlength(t, font=font) for lab in labels for t in lab))
    width = label_w + max(len(c) for c in chosen) * tile
    header = f"{len(pick)} of {len(groups)} {noun} shown" + (" (evenly spaced)" if len(pick) < len(groups) else "")
    width = max(width, 8 + int(draw.textlength(header, font=font)))
    canvas = Image.new("RGB", (width, HEADER + len(pick) * tile), "white")
    draw = ImageDraw.Draw(canvas)
    draw.text((4, 3), header, fill="black", font=font)
    for r, (take, lab) in enumerate(zip(chosen, labels)):
        y = HEADER + r * tile
        draw.text((4, y + (tile - LINE * len(lab)) // 2), "\n".join(lab), fill="black", font=font, spacing=2)
        for c, rel in enumerate(take["crop_path"]):
            with Image.open(root / rel) as im:
                canvas.paste(im.convert("RGB").resize((tile, tile)), (label_w + c * tile, y))
    with atomic_path(target) as tmp:
        canvas.save(tmp, format="PNG")
    return target


def captioned_tiles(images_nhwc: np.ndarray, captions: list[str], target: Path, cols: int = 16) -> Path:
    """uint8 (n, s, s, 3) images in rows of ``cols``, each with its caption under it (e.g. a training batch)."""
    n, s = len(images_nhwc), images_nhwc.shape[1]
    cols = max(1, min(n, cols))
    rows = (n + cols - 1) // cols
    canvas = Image.new("RGB", (cols * s, rows * (s + LINE + 2)), "white")
    draw = ImageDraw.Draw(canvas)
    for i, (img, caption) in enumerate(zip(images_nhwc, captions)):
        r, c = divmod(i, cols)
        canvas.paste(Image.fromarray(np.ascontiguousarray(img)), (c * s, r * (s + LINE + 2)))
        draw.text((c * s + 2, r * (s + LINE + 2) + s), caption, fill="black")
    with atomic_path(target) as tmp:
        canvas.save(tmp, format="PNG")
    return target
