"""``facekit aggregate``."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from facekit.cli.options import DEVICE
from facekit.errors import InputError


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
    from facekit.aggregation.run import aggregate_sets, sets_from_manifest, sets_from_paths
    from facekit.device import resolve_device

    if bool(inputs) == (manifest is not None):
        raise InputError("give either image files/folders or --manifest ROOT")
    sets = sets_from_manifest(manifest, table, [g.strip() for g in group.split(",")]) if manifest else \
        sets_from_paths(list(inputs))
    res = aggregate_sets(sets, model, out, resolve_device(device), extractor, not no_features, max_set, batch,
                         progress=not quiet)
    if res.preview is not None:
        typer.echo(f"preview: {res.preview}")
    typer.echo(f"aggregated {res.sets} sets ({res.faces} faces) -> {out / 'aggregated'}; "
               f"manifest {out / 'manifests' / 'aggregates'}" + ("" if res.extractor is None else
                                                                  f"; features from {res.extractor}"))
