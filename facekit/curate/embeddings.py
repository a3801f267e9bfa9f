"""Embeddings of a manifest's crops (``facekit embed``), cached under ``<root>/embeddings/<model>-<fingerprint>/``
as Parquet parts keyed by crop path: computed once per model and crop, reused by every curation step.

Crops are re-aligned from the template they were made with (``lineage.json``) to the model's own: the five
landmarks of an aligned crop sit on its template's points, so the map between the two templates is exact."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from facekit.align import align_faces, get_template
from facekit.bench.features import FeatureCache, compute_features
from facekit.errors import InputError
from facekit.manifests.io import read_manifest
from facekit.manifests.lineage import crop_template
from facekit.train.images import load_crop

CROP_TABLES = ("faces", "identities", "frames")


def manifest_crops(root: Path, table: str) -> pd.DataFrame:
    """Rows of ``table`` that have a crop (status ok where there is a status)."""
    if table not in CROP_TABLES:
        raise InputError(f"--table {table!r}: choose one of {', '.join(CROP_TABLES)}")
    df = read_manifest(root, table)
    if "status" in df.columns:
        df = df[df["status"] == "ok"]
    return df[df["crop_path"].notna()].reset_index(drop=True)


def embed_crops(root: Path, crop_paths: list[str], extractor, batch: int = 64, progress: bool = True) -> np.ndarray:
    """(n, d) features of ``crop_paths`` (relative to ``root``), computing only what the cache lacks."""
    src = crop_template(root)
    dst = get_template(extractor.template, extractor.input_size)
    cache = FeatureCache(Path(root) / "embeddings", f"{extractor.name}-{extractor.fingerprint}")

    same = src.size == dst.size and np.array_equal(src.as_array(), dst.as_array())

    def load(rel: str) -> np.ndarray:
        crop = load_crop(Path(root) / rel, src.size)
        if same:
            return crop
        return align_faces([crop], np.zeros(1, np.int64), src.as_array()[None], dst)[0].permute(1, 2, 0).numpy()

    feats, _ = compute_features(list(crop_paths), load, extractor, cache, batch, "embed" if progress else "")
    return feats
