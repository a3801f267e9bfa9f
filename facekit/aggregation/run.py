"""``facekit aggregate`` as a library function: sets of aligned faces (folders, files or a manifest's groups) ->
one face per set with a trained Face Aggregation Network, written as images, an ``aggregates`` manifest (with
the faces' features) and a preview grid."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from facekit.aggregation.apply import load_aggregator, resize_all, subsample
from facekit.errors import InputError
from facekit.fsutil import atomic_path
from facekit.images import load_crop
from facekit.manifests.io import read_manifest, write_part
from facekit.manifests.owner import claim_root
from facekit.manifests.schemas import AGGREGATES
from facekit.progress import progress_bar
from facekit.report.set_grids import save_grid


@dataclass
class AggregateResult:
    out: Path
    sets: int
    faces: int
    extractor: str | None  # the features' extractor spec (None: images only)
    preview: Path | None


def sets_from_paths(paths: list[Path]) -> dict[str, list[Path]]:
    """Each folder is one set (its images, recursively); loose files together form the set ``set``."""
    from facekit.datasets.identities import IMAGE_SUFFIXES

    sets: dict[str, list[Path]] = {}
    for p in paths:
        if p.is_dir():
            files = sorted(f for f in p.rglob("*") if f.suffix.lower() in IMAGE_SUFFIXES)
            if not files:
                raise InputError(f"{p}: no images in this folder")
            sets[p.name] = files
        elif p.is_file():
            sets.setdefault("set", []).append(p)
        else:
            raise InputError(f"{p}: no such file or folder")
    return sets


def sets_from_manifest(root: Path, table: str, group: list[str]) -> dict[str, list[Path]]:
    """A manifest table's ``ok`` rows grouped by the ``group`` columns (joined with ``/``) -> their crops."""
    df = read_manifest(root, table)
    missing = [c for c in [*group, "crop_path"] if c not in df.columns]
    if missing:
        raise InputError(f"{root}: table {table!r} has no column {missing[0]!r} (columns: {', '.join(df.columns)})")
    if "status" in df.columns:
        df = df[df["status"] == "ok"]
    keys = df[group].astype(str).agg("/".join, axis=1)
    return {k: [root / p for p in g["crop_path"]] for k, g in df.groupby(keys, sort=True)}


def aggregate_sets(sets: dict[str, list[Path]], model: Path, out: Path, device: torch.device,
                   extractor: str | None = None, features: bool = True, max_set: int = 64, batch: int = 8,
                   progress: bool = True) -> AggregateResult:
    """Fuse each set into one face (``aggregated/<set>.png``), embed it with ``extractor`` (default: the one the
    aggregator was trained with) unless ``features`` is false, write ``manifests/aggregates`` and
    ``aggregates_preview.png`` (up to 8 sets: their faces, then the fused face)."""
    claim_root(out, "aggregate")
    agg = load_aggregator(model, device)
    feats = None
    spec = extractor or agg.extractor
    if features:
        if not spec:
            raise InputError(f"{model}: records no feature extractor; pass --extractor or --no-features")
        from facekit.embed.extractors import load_extractor

        feats = load_extractor(spec, device)
    rows, previews = [], []
    names = list(sets)
    for s in progress_bar(range(0, len(names), batch), desc="aggregate", unit="batch", disable=not progress):
        chunk = names[s:s + batch]
        crops = [np.stack([load_crop(p, agg.image_size) for p in subsample(np.array(sets[k]), max_set)]) for k in chunk]
        faces = agg.fuse(crops, batch=batch, max_set=max_set)
        vectors = None
        if feats is not None:
            vectors = feats.embed(resize_all(faces, feats.input_size))
        for i, k in enumerate(chunk):
            rel = f"aggregated/{re.sub(r'[^A-Za-z0-9._-]+', '_', k)}.png"
            (out / rel).parent.mkdir(parents=True, exist_ok=True)
            with atomic_path(out / rel) as tmp:
                Image.fromarray(faces[i]).save(tmp, format="PNG")
            rows.append(dict(group=k, num_inputs=len(sets[k]), used_inputs=len(crops[i]), image_path=rel,
                             feature=None if vectors is None else vectors[i].tolist(),
                             extractor=spec if vectors is not None else None))
            if len(previews) < 8:
                previews.append((crops[i], faces[i]))
    write_part(out, AGGREGATES, "aggregates", rows)
    grid = None
    if previews:
        n = min(min(len(c) for c, _ in previews), 10)
        to_t = lambda a: (torch.from_numpy(np.ascontiguousarray(a)).permute(0, 3, 1, 2).float() - 127.5) / 127.5  # noqa: E731
        grid = save_grid(torch.stack([to_t(c[:n]) for c, _ in previews]), to_t(np.stack([f for _, f in previews])),
                         None, out / "aggregates_preview.png")
    return AggregateResult(out, len(rows), sum(r["num_inputs"] for r in rows), spec if feats is not None else None,
                           grid)
