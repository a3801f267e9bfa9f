"""``facekit aggregate``."""

from __future__ import annotations

import re
from pathlib import Path
from typing import List, Optional

import typer

from facekit.cli.options import DEVICE
from facekit.errors import InputError


def _sets_from_paths(paths: list[Path]) -> dict[str, list[Path]]:
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


def _sets_from_manifest(root: Path, table: str, group: list[str]) -> dict[str, list[Path]]:
    from facekit.manifests.io import read_manifest

    df = read_manifest(root, table)
    missing = [c for c in [*group, "crop_path"] if c not in df.columns]
    if missing:
        raise InputError(f"{root}: table {table!r} has no column {missing[0]!r} (columns: {', '.join(df.columns)})")
    if "status" in df.columns:
        df = df[df["status"] == "ok"]
    keys = df[group].astype(str).agg("/".join, axis=1)
    return {k: [root / p for p in g["crop_path"]] for k, g in df.groupby(keys, sort=True)}


def aggregate_cmd(
    inputs: Optional[List[Path]] = typer.Argument(None, metavar="IMAGES...",
                                                  help="Aligned face images: each folder is one set, loose "
                                                             "files together form one set."),
    model: Path = typer.Option(..., "--model", "-m", help="aggregator.pt of a `facekit train aggregator` run (or the "
        "run dir)."),
    out: Path = typer.Option(Path("out/aggregated"), "--out", "-o",
                             help="Output root: aggregated/ + manifests/aggregates/."),
    manifest: Optional[Path] = typer.Option(None, "--manifest", help="Take the sets from a manifest root instead."),
    table: str = typer.Option("frames", "--table", help="Manifest table with crop_path (frames, faces, identities)."),
    group: str = typer.Option("identity,video", "--group", help="Column(s) defining a set, comma separated."),
    extractor: Optional[str] = typer.Option(
        None, "--extractor",
        help="Feature extractor spec for the features. [default: the one the aggregator was trained with]"),
    no_features: bool = typer.Option(False, "--no-features", help="Write the images only."),
    max_set: int = typer.Option(64, "--max-set", min=1, help="Subsample larger sets evenly to this many faces."),
    batch: int = typer.Option(8, "--batch", min=1, help="Sets per forward pass."),
    device: str = DEVICE,
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar."),
) -> None:
    """Fuse each set of aligned faces into one face image with a trained Face Aggregation Network; write the
    images, their features and a preview grid."""
    import numpy as np
    import torch
    from PIL import Image

    from facekit.aggregation.apply import load_aggregator, resize_all, subsample
    from facekit.device import resolve_device
    from facekit.fsutil import atomic_path
    from facekit.images import load_crop
    from facekit.manifests.io import write_part
    from facekit.manifests.owner import claim_root
    from facekit.manifests.schemas import AGGREGATES
    from facekit.progress import progress_bar
    from facekit.report.set_grids import save_grid

    if bool(inputs) == (manifest is not None):
        raise InputError("give either image files/folders or --manifest ROOT")
    claim_root(out, "aggregate")
    dev = resolve_device(device)
    agg = load_aggregator(model, dev)
    sets = _sets_from_manifest(manifest, table, [g.strip() for g in group.split(",")]) if manifest else \
        _sets_from_paths(list(inputs))
    feats = None
    spec = extractor or agg.extractor
    if not no_features:
        if not spec:
            raise InputError(f"{model}: records no feature extractor; pass --extractor or --no-features")
        from facekit.embed.extractors import load_extractor

        feats = load_extractor(spec, dev)
    rows, previews = [], []
    names = list(sets)
    for s in progress_bar(range(0, len(names), batch), desc="aggregate", unit="batch", disable=quiet):
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
    if previews:
        n = min(min(len(c) for c, _ in previews), 10)
        to_t = lambda a: (torch.from_numpy(np.ascontiguousarray(a)).permute(0, 3, 1, 2).float() - 127.5) / 127.5  # noqa: E731
        grid = save_grid(torch.stack([to_t(c[:n]) for c, _ in previews]), to_t(np.stack([f for _, f in previews])),
                         None, out / "aggregates_preview.png")
        typer.echo(f"preview: {grid}")
    typer.echo(f"aggregated {len(rows)} sets ({sum(r['num_inputs'] for r in rows)} faces) -> {out / 'aggregated'}; "
               f"manifest {out / 'manifests' / 'aggregates'}" + ("" if feats is None else f"; features from {spec}"))
