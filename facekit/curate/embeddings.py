"""Embeddings of a manifest's crops (``facekit embed``), cached under ``<root>/embeddings/<model>-<fingerprint>/``
as Parquet parts keyed by crop path: computed once per model and crop, reused by every curation step.

Crops are re-aligned from the template they were made with (``lineage.json``) to the model's own: the five
landmarks of an aligned crop sit on its template's points, so the map between the two templates is exact."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from facekit.align import Template, align_faces, get_template
from facekit.embed.features import FeatureCache, compute_features
from facekit.engine.local import Engine
from facekit.errors import InputError
from facekit.images import load_crop
from facekit.manifests.io import read_manifest
from facekit.manifests.lineage import crop_template
from facekit.progress import progress_bar

CROP_TABLES = ("faces", "identities", "frames")


def manifest_crops(root: Path, table: str) -> pd.DataFrame:
    """Rows of ``table`` that have a crop (status ok where there is a status)."""
    if table not in CROP_TABLES:
        raise InputError(f"--table {table!r}: choose one of {', '.join(CROP_TABLES)}")
    df = read_manifest(root, table)
    if "status" in df.columns:
        df = df[df["status"] == "ok"]
    return df[df["crop_path"].notna()].reset_index(drop=True)


def crop_loader(root: Path, src: Template, dst: Template) -> Callable[[str], np.ndarray]:
    """Crop path (relative to ``root``) -> uint8 (S, S, 3) crop on ``dst``, re-aligned from ``src``."""
    same = src.size == dst.size and np.array_equal(src.as_array(), dst.as_array())

    def load(rel: str) -> np.ndarray:
        crop = load_crop(Path(root) / rel, src.size)
        if same:
            return crop
        return align_faces([crop], np.zeros(1, np.int64), src.as_array()[None], dst)[0].permute(1, 2, 0).numpy()

    return load


def embed_crops(root: Path, crop_paths: list[str], extractor, batch: int = 64, progress: bool = True,
                engine: Engine | None = None, spec: str | None = None, device: str = "cpu") -> np.ndarray:
    """(n, d) features of ``crop_paths`` (relative to ``root``), computing only what the cache lacks.

    With a Ray ``engine``, batches of crops are embedded by actors that load the extractor from ``spec`` on
    ``device``; the driver writes the cache. A batch whose worker died is reported and left out of the cache
    (InputError after the others are cached: a rerun computes only what is missing)."""
    src = crop_template(root)
    dst = get_template(extractor.template, extractor.input_size)
    cache = FeatureCache(Path(root) / "embeddings", f"{extractor.name}-{extractor.fingerprint}")
    if engine is not None and engine.name == "ray":
        if spec is None:
            raise ValueError("embed_crops: the Ray engine needs the extractor's spec to load it on the workers")
        _embed_on(engine, root, crop_paths, cache, spec, device, src, dst, batch, progress)
    load = crop_loader(root, src, dst)
    feats, _ = compute_features(list(crop_paths), load, extractor, cache, batch, "embed" if progress else "")
    return feats


@dataclass(frozen=True)
class EmbedJob:
    job_id: str
    crop_paths: tuple[str, ...]


_WORKER: dict = {}


def _init(spec: str, device: str, root: str, src: Template, dst: Template) -> None:
    from facekit.device import resolve_device
    from facekit.embed.extractors import load_extractor

    _WORKER.update(extractor=load_extractor(spec, resolve_device(device)), load=crop_loader(Path(root), src, dst))


def _run(job: EmbedJob) -> np.ndarray:
    return _WORKER["extractor"].embed(np.stack([_WORKER["load"](k) for k in job.crop_paths]))


def _crashed(job: EmbedJob, reason: str) -> str:
    return reason


def _embed_on(engine: Engine, root: Path, crop_paths: list[str], cache: FeatureCache, spec: str, device: str,
              src: Template, dst: Template, batch: int, progress: bool) -> None:
    todo = list(dict.fromkeys(k for k in crop_paths if k not in cache.features))
    jobs = [EmbedJob(f"batch{s // batch}", tuple(todo[s:s + batch])) for s in range(0, len(todo), batch)]
    failed: list[str] = []
    results = engine.map(jobs, _run, _init, (spec, device, str(root), src, dst), _crashed)
    bar = progress_bar(total=len(todo), desc="embed", unit="item", disable=not (todo and progress), dynamic_ncols=True)
    try:
        for job, feats in zip(jobs, results):
            if isinstance(feats, str):
                failed.append(f"{job.crop_paths[0]} .. ({len(job.crop_paths)} crops): {feats}")
            else:
                cache.add(list(job.crop_paths), feats)
            bar.update(len(job.crop_paths))
    finally:
        bar.close()
        results.close()
        cache.flush()
    if failed:
        raise InputError(f"{root}: {len(failed)} batch(es) not embedded, e.g. {failed[0]}; rerun to compute them")
