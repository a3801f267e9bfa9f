"""Pictures of face sets: one row per set, its faces, the aggregated face and a reference face."""

from __future__ import annotations

from pathlib import Path

import torch

from facekit.fsutil import atomic_path


def save_grid(set_bn3hw: torch.Tensor, agg_b3hw: torch.Tensor, ref_b3hw: torch.Tensor | None, target: Path,
              max_members: int = 10) -> Path:
    """One row per set: up to ``max_members`` input faces | the aggregated face | (a reference face)."""
    from PIL import Image, ImageDraw

    def to_img(t: torch.Tensor) -> Image.Image:
        return Image.fromarray((t.detach().float().cpu() * 127.5 + 127.5).clamp(0, 255).byte().permute(1, 2, 0).numpy())

    b, n, _, s, _ = set_bn3hw.shape
    k = min(n, max_members)
    cols = k + 1 + (ref_b3hw is not None) + 1  # members, gap, A, reference
    canvas = Image.new("RGB", (cols * s, b * s + 14), "white")
    draw = ImageDraw.Draw(canvas)
    draw.text((2, b * s), f"input set ({n} faces{', first ' + str(k) if n > k else ''})", fill="black")
    draw.text(((k + 1) * s + 2, b * s), "aggregated", fill="black")
    if ref_b3hw is not None:
        draw.text(((k + 2) * s + 2, b * s), "other video", fill="black")
    for i in range(b):
        for j in range(k):
            canvas.paste(to_img(set_bn3hw[i, j]), (j * s, i * s))
        canvas.paste(to_img(agg_b3hw[i]), ((k + 1) * s, i * s))
        if ref_b3hw is not None:
            canvas.paste(to_img(ref_b3hw[i]), ((k + 2) * s, i * s))
    target.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(target) as tmp:
        canvas.save(tmp, format="PNG")
    return target
