"""Benchmarks by name, for ``facekit bench run NAME --set key=value`` and plugins: a benchmark is
``run(source, out_root, **settings) -> (report folder, metrics)``, its settings checked like a recipe's
(``facekit.recipes.build`` on its settings dataclass). ``facekit bench ytf|lfw|ijb`` are the same runs with
typed options."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from facekit.bench.run_ijb import IJBSettings, run_ijb
from facekit.bench.run_lfw import run_lfw
from facekit.bench.run_ytf import YTFSettings, run_ytf
from facekit.bench.source import FeatureSource
from facekit.recipes import build
from facekit.registry import Registry

Benchmark = Callable[..., tuple[Path, dict]]  # (source, out_root, **settings) -> (report dir, metrics)
BENCHMARKS: Registry[Benchmark] = Registry("benchmark")


@BENCHMARKS.register("ytf")
def ytf(source: FeatureSource, out_root: Path, **settings) -> tuple[Path, dict]:
    """YouTube Faces: root, splits, n, n_avg, method, protocol, blur, seed, full_protocol, threshold."""
    return run_ytf(build(YTFSettings, settings, "bench ytf --set"), source, out_root)


@BENCHMARKS.register("lfw")
def lfw(source: FeatureSource, out_root: Path, root: str | None = None, pairs: str | None = None,
        bin: str | None = None, threshold: str = "kfold", detect: bool = False) -> tuple[Path, dict]:
    """LFW pairs.txt (root, pairs) or an insightface .bin (bin; detect); threshold."""
    path = lambda v: None if v is None else Path(v)  # noqa: E731
    return run_lfw(path(root), path(pairs), path(bin), source, out_root, threshold, detect)


@BENCHMARKS.register("ijb")
def ijb(source: FeatureSource, out_root: Path, **settings) -> tuple[Path, dict]:
    """IJB-B / IJB-C: root, dataset, images, layout, tar_rule, method."""
    return run_ijb(build(IJBSettings, settings, "bench ijb --set"), source, out_root)
