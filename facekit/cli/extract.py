"""``facekit extract-sequences``."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

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
from facekit.video import sample_video


def load_settings(path: Path | None) -> dict:
    """Settings from a YAML/JSON recipe file (the ``extract`` section if there is one)."""
    from facekit.recipes import read_recipe

    data = read_recipe(path)
    return data.get("extract", data)


def _setting(key: str, flag: str, text: str, **kw):
    """An option that overrides one extract setting: None unless given (a -c recipe's value then applies), its
    help showing the setting's default from ``ExtractConfig`` (plain dataclasses: no numpy at start-up)."""
    from facekit.pipeline.config import ExtractConfig

    value = ExtractConfig()
    for part in key.split("."):
        value = getattr(value, part)
    shown = "none" if value is None else value
    return typer.Option(None, flag, help=f"{text} [default: {shown}, or the -c recipe's]", **kw)


def extract_sequences_cmd(
    inputs: Optional[List[Path]] = typer.Argument(
        None, metavar="INPUTS...", help="Video files, folders (searched recursively) or .txt lists. Default: the "
            "embedded sample clip."),
    out: Path = typer.Option(Path("out/sequences"), "--out", "-o", help="Output root: crops/ and manifests/."),
    config: Optional[Path] = typer.Option(None, "--config", "-c",
                                          help="YAML recipe of settings (recipes/extract_*.yaml). "
                                               "[default: none: the defaults shown below]"),
    workers: int = WORKERS,
    shard: str = typer.Option("0/1", "--shard", help="Process shard i of n (i/n); shards split videos by id hash."),
    device: str = DEVICE,
    engine: str = ENGINE,
    ray_address: Optional[str] = RAY_ADDRESS,
    gpus_per_worker: float = GPUS_PER_WORKER,
    fps: Optional[float] = _setting("fps", "--fps", "Detect and track at this many frames per second of video "
                                    "time (timestamps stay the video's own); none: every frame.", min=0.01),
    detect_every: Optional[int] = _setting("detect_every", "--detect-every",
                                           "Run MTCNN every k-th frame of the video, track between (with "
                                           "--fps: as often in video time).", min=1),
    min_face_size: Optional[float] = _setting("min_face_size", "--min-face-size",
                                              "Smallest face the detector looks for, px.", min=1.0),
    detect_max_side: Optional[int] = _setting("detect_max_side", "--detect-max-side",
                                              "Shrink frames to this side for detection (0: never).", min=0),
    template: Optional[str] = _setting("template", "--template",
                                       "Alignment template: arcface (112), seqface (144) or dlib (150)."),
    crop_size: Optional[int] = typer.Option(None, "--crop-size", min=16,
                                            help="Aligned crop side, px. [default: the template's]"),
    min_sequence_length: Optional[int] = _setting("filters.min_sequence_length", "--min-seq-len",
                                                  "Drop sequences with fewer kept faces.", min=1),
    min_score: Optional[float] = _setting("filters.min_score", "--min-score", "Drop faces below this detection score."),
    min_face_px: Optional[float] = _setting("filters.min_face_px", "--min-face-px",
                                            "Drop faces whose box is smaller, px."),
    min_blur: Optional[float] = _setting("filters.min_blur", "--min-blur",
                                         "Drop faces whose Laplacian variance is lower."),
    max_abs_yaw: Optional[float] = _setting("filters.max_abs_yaw", "--max-yaw",
                                            "Drop faces whose |yaw proxy| is larger."),
    duplicate_threshold: Optional[float] = _setting("filters.duplicate_threshold", "--dup-threshold",
                                                    "Near-duplicate distance (0..1)."),
    max_gap: Optional[int] = _setting("tracker.max_gap", "--max-gap", "End a track after this many frames unseen.",
                                      min=0),
    shot_threshold: Optional[float] = _setting("shot_threshold", "--shot-threshold", "Shot-cut score threshold."),
    skip_vfr: bool = typer.Option(False, "--skip-vfr", help="Record variable-frame-rate videos and skip them."),
    allow_failures: float = ALLOW_FAILURES,
    flush_every: int = typer.Option(8, "--flush-every", min=1,
                                    help="Videos per manifest part file (resume granularity)."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar."),
) -> None:
    """Detect, track, align and filter faces in videos into face sequences (crops + Parquet manifests)."""
    from facekit.pipeline.config import ExtractConfig
    from facekit.pipeline.extract_sequences import extract_sequences, parse_shard

    settings = load_settings(config)
    top = {"detect_every": detect_every, "min_face_size": min_face_size, "template": template, "fps": fps}
    if detect_max_side is not None:
        top["detect_max_side"] = detect_max_side or None
    if crop_size is not None:
        top["crop_size"] = crop_size
    elif template is not None:
        from facekit.align.templates import get_template

        top["crop_size"] = get_template(template).size
    if skip_vfr:
        top["skip_vfr"] = True
    if shot_threshold is not None:
        top["shot_threshold"] = shot_threshold
    filt = {"min_sequence_length": min_sequence_length, "min_score": min_score, "min_face_px": min_face_px,
            "min_blur": min_blur, "max_abs_yaw": max_abs_yaw, "duplicate_threshold": duplicate_threshold}
    settings.update({k: v for k, v in top.items() if v is not None})
    settings["filters"] = {**settings.get("filters", {}), **{k: v for k, v in filt.items() if v is not None}}
    if max_gap is not None:
        settings["tracker"] = {**settings.get("tracker", {}), "max_gap": max_gap}
    cfg = ExtractConfig.from_dict(settings, f"{config}: extract" if config else "extract settings")
    runner = make_engine(engine, workers, ray_address, gpus_per_worker)
    sources = list(inputs) if inputs else [sample_video()]
    summary = extract_sequences(sources, out, cfg, shard=parse_shard(shard), device=worker_device(runner, device),
                                flush_every=flush_every, progress=not quiet, engine=runner)
    for line in summary.lines():
        typer.echo(line)
    summary.check(allow_failures)


def extract_frames_cmd(
    root: Path = typer.Argument(..., metavar="ROOT", help="VoxCeleb2-layout root: "
        "<root>/[mp4/]<identity>/<video>/<utterance>.mp4."),
    out: Path = typer.Option(Path("out/frames"), "--out", "-o",
                             help="Output root: crops/ and manifests/ (utterances, frames)."),
    frames: int = typer.Option(5, "--frames", "-k", min=1, help="Frames per utterance, evenly spaced."),
    meta: Optional[Path] = typer.Option(None, "--meta", help="VoxCeleb2 identity meta CSV (vox2_meta.csv)."),
    template: str = typer.Option("arcface", "--template", help="Alignment template: arcface (112), seqface (144) or "
        "dlib (150)."),
    crop_size: Optional[int] = typer.Option(None, "--crop-size", min=16,
                                            help="Aligned crop side, px. [default: the template's]"),
    min_face_size: float = typer.Option(40.0, "--min-face-size", min=1.0,
                                        help="Smallest face the detector looks for, px."),
    workers: int = WORKERS,
    shard: str = typer.Option("0/1", "--shard", help="Process shard i of n (utterances split by id hash)."),
    device: str = DEVICE,
    engine: str = ENGINE,
    ray_address: Optional[str] = RAY_ADDRESS,
    gpus_per_worker: float = GPUS_PER_WORKER,
    allow_failures: float = ALLOW_FAILURES,
    flush_every: int = typer.Option(64, "--flush-every", min=1,
                                    help="Utterances per manifest part file (resume granularity)."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar."),
) -> None:
    """k frames per utterance of a VoxCeleb2-style corpus, detected and aligned (frame sets for the aggregator)."""
    from facekit.align.templates import get_template
    from facekit.pipeline.extract_frames import FramesConfig, extract_frames
    from facekit.pipeline.extract_sequences import parse_shard

    cfg = FramesConfig(frames_per_utterance=frames, template=template,
                       crop_size=crop_size or get_template(template).size, min_face_size=min_face_size)
    runner = make_engine(engine, workers, ray_address, gpus_per_worker)
    summary = extract_frames(root, out, cfg, meta=meta, shard=parse_shard(shard), device=worker_device(runner, device),
                             flush_every=flush_every, progress=not quiet, engine=runner)
    for line in summary.lines():
        typer.echo(line)
    summary.check(allow_failures)
