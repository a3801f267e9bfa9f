"""``facekit build identities``."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from facekit.cli.options import (
    ALLOW_FAILURES,
    DEVICE,
    ENGINE,
    GPUS_PER_WORKER,
    RAY_ADDRESS,
    WORKERS,
    make_engine,
    worker_device,
)

build_app = typer.Typer(rich_markup_mode=None, help="Build datasets: identities from image folders, demo data from the "
    "sample clip.", no_args_is_help=True)


@build_app.command("identities")
def identities_cmd(
    root: Path = typer.Argument(..., metavar="ROOT", help="Folder with one sub-folder of images per person (or the "
        "root the --labels paths are relative to), or insightface's train.rec."),
    out: Path = typer.Option(Path("out/identities"), "--out", "-o",
                             help="Output root: crops/ and manifests/identities/."),
    labels: Optional[Path] = typer.Option(None, "--labels", help="CSV with columns path, identity (or identity_id) "
                                                                  "instead of folders."),
    aligned: bool = typer.Option(False, "--aligned", help="Images are aligned crops already: no detection."),
    template: Optional[str] = typer.Option(None, "--template", help="Alignment template: seqface (144), arcface (112) "
        "or dlib (150). [default: seqface; for aligned chips (--aligned, a .rec) the one their side implies]"),
    size: Optional[int] = typer.Option(None, "--size", min=16, help="Crop side, px. [default: the template's]"),
    min_face_size: float = typer.Option(20.0, "--min-face-size", min=1.0,
                                        help="Smallest face the detector looks for, px."),
    shard: str = typer.Option("0/1", "--shard", help="Process shard i of n (identities split by name hash)."),
    workers: int = WORKERS,
    device: str = DEVICE,
    engine: str = ENGINE,
    ray_address: Optional[str] = RAY_ADDRESS,
    gpus_per_worker: float = GPUS_PER_WORKER,
    allow_failures: float = ALLOW_FAILURES,
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar."),
) -> None:
    """Identity dataset (a class per person) from image folders: detect, align, write crops + manifest."""
    from facekit.datasets.identities import build_identities
    from facekit.pipeline.extract_sequences import parse_shard

    runner = make_engine(engine, workers, ray_address, gpus_per_worker)
    summary = build_identities(root, out, labels=labels, template=template, size=size, aligned=aligned,
                               min_face_size=min_face_size, shard=parse_shard(shard),
                               device=worker_device(runner, device), progress=not quiet, engine=runner)
    for line in summary.lines():
        typer.echo(line)
    summary.check(allow_failures)


@build_app.command("demo")
def demo_cmd(
    out: Path = typer.Option(Path("out/demo"), "--out", "-o", help="Output folder (must not exist)."),
    clip: Optional[Path] = typer.Option(None, "--clip", help="Video to make it from. [default: the embedded sample]"),
    device: str = DEVICE,
) -> None:
    """Toy data in the official layouts (identity folders, VoxCeleb2, YTF, LFW, IJB-C official and insightface)
    made from the embedded sample clip: the README's walk-through runs on it with nothing downloaded."""
    from facekit.datasets.demo import build_demo
    from facekit.device import resolve_device

    info = build_demo(out, clip, device=str(resolve_device(device)))
    typer.echo(f"{len(info['people'])} people from {info['source']} ({info['seconds']:.0f} s)")
    typer.echo(f"  people/ ({info['people_folder']} identities), voxceleb2/ ({info['voxceleb_utterances']} "
        "utterances), "
               f"ytf/ ({info['ytf_pairs']} pairs), lfw/ ({info['lfw_pairs']} pairs), ijbc/ and ijbc_insightface/ "
               f"({info['ijb_gallery_templates']} gallery, {info['ijb_probe_templates']} probe templates)")
    typer.echo(f"demo data: {out}  (what is where: {out / 'README.md'})")


def pack_cmd(root: Path = typer.Argument(..., metavar="ROOT", help="An identities, sequences or frames root."),
             shard_size: int = typer.Option(100_000, "--shard-size", min=1,
                                            help="Crops per shard (sequences and frames roots)."),
             quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar.")) -> None:
    """Pack a root's crops into indexed RecordIO shards (ROOT/packed/): training reads a few large files with
    random access. An identities root becomes insightface's train.rec / train.idx / property."""
    from facekit.datasets.pack import pack_root

    for line in pack_root(root, shard_size, progress=not quiet).lines():
        typer.echo(line)
