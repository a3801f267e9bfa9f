"""``facekit bench ytf|lfw|ijb|run|list|compare``: thin commands over ``facekit.bench.run_*`` and the benchmark
registry (``facekit.bench.protocols``)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from facekit.cli.options import DEVICE

bench_app = typer.Typer(rich_markup_mode=None, help="Video face benchmarks with reproducible reports.",
                        no_args_is_help=True)

MODEL = typer.Option(None, "--model", help="PREFIX:PATH, e.g. iresnet50:backbone.pth (insightface), facekit:model.pt, "
    "onnx:model.onnx.")
FEATURES = typer.Option(None, "--features", help="Precomputed per-image features (Parquet path+embedding, or .npz) "
    "instead of --model.")
OUT = typer.Option(Path("reports"), "--out", help="Reports go to OUT/<bench>-<UTC time>/.")
CACHE = typer.Option(Path(".facekit-cache/features"), "--cache",
                     help="Feature cache folder (keyed by model fingerprint).")
AGGREGATOR = typer.Option(None, "--aggregator", help="aggregator.pt of `facekit train aggregator` (--method "
    "aggregator).")
ALIGNED = typer.Option(False, "--aligned", help="Images are already crops on the model's template: no detection.")
QUIET = typer.Option(False, "--quiet", "-q", help="No progress bars.")
FLIP = typer.Option(None, "--flip/--no-flip", help="Feature = the image's + its mirror's (insightface's evaluation). "
                    "[default: the model's own setting: on for insightface and facekit models, off for dlib]")
THRESHOLD = typer.Option("kfold", "--threshold", help="kfold: 10-fold, squared distances on a 0.01 grid "
                         "(insightface / FaceNet); best-on-all: one best threshold on all pairs (SeqFace's "
                             "evaluate.py).")


def _source(model: Optional[str], features: Optional[Path], cache: Path, device: Optional[str], aligned: bool,
            quiet: bool, aggregator: Optional[Path] = None, flip: Optional[bool] = None):
    from facekit.bench.source import FeatureSource
    from facekit.device import resolve_device
    from facekit.embed import load_extractor

    dev = resolve_device(device)
    extractor = load_extractor(model, dev) if model else None
    if extractor is not None and flip is not None:
        extractor.flip = flip
    agg = None
    if aggregator is not None:
        from facekit.aggregation.apply import load_aggregator

        agg = load_aggregator(aggregator, dev)
    return FeatureSource(extractor, features, cache, aligned, aggregator=agg, progress=not quiet)


def _done(out: Path, lines: list[str]) -> None:
    import json

    from facekit.bench.report import FALLBACK_WARN

    for line in lines:
        typer.echo(line)
    report = json.loads((out / "report.json").read_text())
    crops = report["metrics"].get("crops", {})
    if crops.get("fallback_share", 0) > FALLBACK_WARN:
        typer.echo(f"warning: {crops['fallback_share']:.1%} of the face crops are fallbacks ("
                   + ", ".join(f"{k} {v}" for k, v in crops["fallbacks"].items())
                   + "): the protocol's face was not found where it was given; see report.md")
    if report.get("demo_data"):
        typer.echo("demo data: numbers mean nothing (the protocol files are those of `facekit build demo`)")
    typer.echo(f"report: {out / 'report.md'}")


@bench_app.command("ytf")
def ytf_cmd(root: Path = typer.Option(..., "--root", help="YTF aligned_images_DB folder."),
            splits: Path = typer.Option(..., "--splits", help="Official splits.txt (5,000 pairs)."),
            n: int = typer.Option(10, "--N", min=1, help="Frames aggregated into one face / feature (DAN protocol)."),
            navg: int = typer.Option(4, "--navg", min=1, help="Groups of N frames averaged per video (DAN protocol)."),
            method: str = typer.Option("avg", "--method", help="avg (mean of frame features) or aggregator."),
            protocol: str = typer.Option("dan", "--protocol", help="dan (N, n_avg) or seqface (all frames)."),
            blur: int = typer.Option(0, "--blur", min=0, help="Motion blur kernel size on 9 of every 10 frames (paper "
                "Table 4)."),
            seed: int = typer.Option(0, "--seed", help="Seed of the blur directions."),
            model: Optional[str] = MODEL, features: Optional[Path] = FEATURES, out: Path = OUT,
            cache: Path = CACHE, device: Optional[str] = DEVICE, aligned: bool = ALIGNED,
            subset: bool = typer.Option(False, "--subset", help="Accept a splits file with fewer than 5,000 pairs."),
            aggregator: Optional[Path] = AGGREGATOR, quiet: bool = QUIET, threshold: str = THRESHOLD,
            flip: Optional[bool] = FLIP) -> None:
    """YouTube Faces verification: DAN protocol (N, n_avg) or SeqFace's average of all frames; 10-fold accuracy
    (or SeqFace's one threshold on all pairs with --threshold best-on-all)."""
    from facekit.bench.run_ytf import YTFSettings, run_ytf

    settings = YTFSettings(root, splits, n, navg, method, protocol, blur, seed, full_protocol=not subset,
                           threshold=threshold)
    report, m = run_ytf(settings, _source(model, features, cache, device, aligned, quiet, aggregator, flip), out)
    frames = f"N={n} n_avg={navg}" if protocol == "dan" else "all frames"
    _done(report, [f"YTF {protocol} {frames} {method}{f' blur {blur}' if blur else ''} ({threshold}): accuracy "
                   f"{_accuracy(m)} over {m['pairs']} pairs ({m['features_computed']} features computed)"])


def _accuracy(m: dict) -> str:
    std = m["accuracy_std"]
    return f"{100 * m['accuracy_mean']:.2f}%" + ("" if std != std else f" +- {100 * std:.2f}")


@bench_app.command("lfw")
def lfw_cmd(root: Optional[Path] = typer.Option(None, "--root", help="LFW image folder (name/name_000n.jpg)."),
            pairs: Optional[Path] = typer.Option(None, "--pairs", help="LFW pairs.txt."),
            bin_file: Optional[Path] = typer.Option(None, "--bin", help="insightface verification .bin instead "
                                                    "(lfw.bin, cfp_fp.bin, agedb_30.bin ...): aligned chips."),
            detect: bool = typer.Option(False, "--detect", help="Detect faces in the .bin chips instead of taking "
                                                                "them as aligned."),
            model: Optional[str] = MODEL, features: Optional[Path] = FEATURES, out: Path = OUT,
            cache: Path = CACHE, device: Optional[str] = DEVICE, aligned: bool = ALIGNED, quiet: bool = QUIET,
            threshold: str = THRESHOLD, flip: Optional[bool] = FLIP) -> None:
    """LFW pairs.txt or an insightface .bin: 10-fold verification accuracy."""
    from facekit.bench.run_lfw import run_lfw

    source = _source(model, features, cache, device, aligned and bin_file is None, quiet, flip=flip)
    report, m = run_lfw(root, pairs, bin_file, source, out, threshold, detect)
    _done(report, [f"{m['set']} verification accuracy ({threshold}) {_accuracy(m)} over {m['pairs']} pairs"])


@bench_app.command("ijb")
def ijb_cmd(root: Path = typer.Option(..., "--root", help="Folder of the protocol CSVs (or the insightface IJBC/IJBB "
    "folder)."),
            dataset: str = typer.Option("IJBC", "--dataset", help="IJBB or IJBC."),
            images: Optional[Path] = typer.Option(None, "--images",
                                                  help="Folder the FILENAMEs are relative to. [default: --root]"),
            layout: str = typer.Option("official", "--layout",
                                       help="official (CSV protocols) or insightface (meta/*.txt; 1:N when the "
                                            "official 1:N CSVs are in meta/ too)."),
            tar_rule: str = typer.Option("strict", "--tar-rule",
                                         help="strict (best TAR with FAR <= target) or nearest (insightface)."),
            model: Optional[str] = MODEL, features: Optional[Path] = FEATURES, out: Path = OUT,
            cache: Path = CACHE, device: Optional[str] = DEVICE, aligned: bool = ALIGNED,
            method: str = typer.Option("avg", "--method", help="avg (media = mean of its image features) or "
                "aggregator."),
            aggregator: Optional[Path] = AGGREGATOR, quiet: bool = QUIET, flip: Optional[bool] = FLIP) -> None:
    """IJB-B / IJB-C: 1:1 template verification (TAR at FAR) and 1:N mixed-media identification (TPIR)."""
    from facekit.bench.run_ijb import IJBSettings, run_ijb

    settings = IJBSettings(root, dataset, images, layout, tar_rule, method)
    report, m = run_ijb(settings, _source(model, features, cache, device, aligned, quiet, aggregator, flip), out)
    lines = [f"{dataset} 1:1: " + ", ".join(f"TAR@{k.removeprefix('tar_far_')}={100 * v:.2f}%"
                                            for k, v in m["verification_11"].items() if k.startswith("tar_far_"))]
    if "identification_1N" in m:
        mean = m["identification_1N"]["mean"]
        lines.append(f"{dataset} 1:N (mean of galleries): rank-1 {100 * mean['rank1']:.2f}%, "
                     f"TPIR@FPIR=0.01 {100 * mean['tpir_fpir_0.01']:.2f}%")
    _done(report, lines)


@bench_app.command("compare")
def compare_cmd(reports: list[Path] = typer.Argument(..., metavar="REPORTS...",
                                                     help="Report folders (or report.json files).")) -> None:
    """Put several reports' metrics side by side (Markdown table)."""
    from facekit.errors import InputError

    for r in reports:
        if not ((r / "report.json").is_file() or (r.is_file() and r.name.endswith(".json"))):
            raise InputError(f"{r}: no report.json here")
    from facekit.bench.report import compare

    typer.echo(compare(reports))


@bench_app.command("run")
def run_cmd(name: str = typer.Argument(..., metavar="NAME", help="A registered benchmark (facekit bench list)."),
            settings: Optional[list[str]] = typer.Option(None, "--set", metavar="KEY=VALUE",
                                                         help="A setting of the benchmark (repeatable), e.g. "
                                                              "--set root=ytf --set n=10."),
            model: Optional[str] = MODEL, features: Optional[Path] = FEATURES, out: Path = OUT,
            cache: Path = CACHE, device: Optional[str] = DEVICE, aligned: bool = ALIGNED,
            aggregator: Optional[Path] = AGGREGATOR, quiet: bool = QUIET, flip: Optional[bool] = FLIP) -> None:
    """Any registered benchmark by name (the built-in ones and those of FACEKIT_PLUGINS modules)."""
    from facekit.bench.protocols import BENCHMARKS
    from facekit.recipes import read_recipe

    run = BENCHMARKS.get(name)
    values = read_recipe(None, list(settings or []))
    try:
        report, m = run(_source(model, features, cache, device, aligned, quiet, aggregator, flip), out, **values)
    except TypeError as err:
        from facekit.errors import InputError

        raise InputError(f"bench run {name}: {err}") from None
    _done(report, [f"{name}: " + ", ".join(f"{k} {v:.4f}" for k, v in m.items() if isinstance(v, float))])


@bench_app.command("list")
def list_cmd() -> None:
    """The registered benchmarks, one line each with the settings they take."""
    from facekit.bench.protocols import BENCHMARKS

    for name in BENCHMARKS.names():
        doc = (BENCHMARKS.get(name).__doc__ or "").strip().splitlines()
        typer.echo(f"{name}: {doc[0] if doc else ''}")
