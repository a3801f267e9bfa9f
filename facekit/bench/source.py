"""Where a benchmark's features come from: a model (with the per-image feature cache of ``facekit.embed.features``)
or a features file; cache keys carry each image's size and mtime so an edited file is never served stale."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from facekit.align.templates import Template, get_template
from facekit.embed.crop_cache import CropCache
from facekit.embed.features import (
    FaceCropper,
    FeatureCache,
    compute_features,
    lookup_features,
    read_feature_file,
)
from facekit.errors import InputError
from facekit.provenance import fingerprint_files, fingerprint_strings


@dataclass
class FeatureSource:
    """Either ``model`` (a FeatureExtractor; features cached under ``cache_dir``) or ``features_file``."""

    model: object | None = None
    features_file: Path | None = None
    cache_dir: Path | None = None
    aligned: bool = False  # images are already crops on the model's template
    batch: int = 64
    aggregator: object | None = None  # facekit.aggregation.apply.Aggregator for --method aggregator
    progress: bool = True  # progress bars while features are computed
    workers: int = 2  # threads that read, detect and align images while the model embeds

    def __post_init__(self) -> None:
        if (self.model is None) == (self.features_file is None):
            raise InputError("give exactly one of --model or --features")
        self._table = read_feature_file(self.features_file) if self.features_file else None
        self.computed = 0
        self.cropper = self._cropper(self.model.template, self.model.input_size) if self.model is not None else None

    def _cropper(self, template, size: int, detector=None) -> FaceCropper:
        """A cropper for ``template`` whose crops are cached (``CropCache``) for every model on that template."""
        tpl = template if isinstance(template, Template) else get_template(template, size)
        cache = CropCache(self.cache_dir, tpl) if self.cache_dir and not self.aligned else None
        return FaceCropper(tpl, size, detector, aligned=self.aligned, device=str(self.model.device), cache=cache)

    def croppers(self) -> list[FaceCropper]:
        """Every cropper this source used: the model's, and the aggregator's set cropper."""
        return [c for c in (self.cropper, getattr(self, "set_cropper", None)) if c is not None]

    @property
    def fingerprint(self) -> str:
        if self.model is not None:  # the flip setting changes every feature: part of the cache key
            return f"{self.model.name}-{self.model.fingerprint}" + ("-flip" if self.model.flip else "")
        return f"features-{fingerprint_files([self.features_file])}"

    def get(self, keys: list[str], load, desc: str, file_of: Callable[[str], Path] | None = None) -> np.ndarray:
        """Features of ``keys``; a model embeds ``load(key)`` crops for keys it has not cached.

        ``file_of(key)``: the image file a key reads. Its identity (resolved path, size, mtime) joins the key in
        the cache, so two datasets with the same relative names (IJB-B's and IJB-C's ``img/1.jpg``, insightface's
        ``1.jpg``), or a folder rebuilt in place, never share features."""
        if self._table is not None:
            return lookup_features(self._table, [k.split("|")[0] for k in keys], str(self.features_file))
        cache = FeatureCache(self.cache_dir, self.fingerprint + ("-aligned" if self.aligned else "")) \
            if self.cache_dir else None
        stamped = stamp_keys(keys, file_of) if file_of else keys
        original = dict(zip(stamped, keys))

        def keyed_load(k: str) -> np.ndarray:  # a stamped key names the image file's content: its crop is cached
            self.cropper.keyed(k if file_of else None)
            return load(original[k])

        try:
            feats, n = compute_features(stamped, keyed_load, self.model, cache, self.batch,
                                        desc if self.progress else "", self.workers)
        finally:  # what was cropped stays cropped, even when the run stops
            for c in self.croppers():
                if c.cache is not None:
                    c.cache.flush()
        self.computed += n
        return feats

    def get_sets(self, sets: list[list[str]], load, desc: str, file_of: Callable[[str], Path]) -> np.ndarray:
        """One feature per set of keys: the model's feature of the set's aggregated face (cached per set, keyed by
        its members' files as in ``get``).

        ``load(key, cropper)`` crops a face with ``cropper`` (the model's when None). The set is cropped on the
        aggregator's template (re-aligned from the model's for ``aligned`` inputs), fused, and the fused face
        re-aligned to the model's template (``facekit.align.warp``)."""
        if self.aggregator is None or self.model is None:
            raise InputError("--method aggregator needs --model (the feature extractor) and --aggregator "
                             "(aggregator.pt of `facekit train aggregator`)")
        from facekit.align.warp import warp_crops

        agg, own = self.aggregator, self.cropper.template
        agg_tpl = agg.template or own.resized(agg.image_size)
        agg_cropper = None if self.aligned else self._cropper(agg_tpl, agg_tpl.size, self.cropper.detector)
        self.set_cropper = agg_cropper  # its counts join the report's (``croppers``)
        stamped = [stamp_keys(keys, file_of) for keys in sets]
        set_keys = members_of(stamped, agg.fingerprint)
        members = dict(zip(set_keys, zip(sets, stamped)))

        def member(k: str, stamp: str) -> np.ndarray:
            if agg_cropper is not None:
                agg_cropper.keyed(stamp)
            return load(k, agg_cropper)

        def load_set(key: str) -> np.ndarray:
            crops = np.stack([member(k, st) for k, st in zip(*members[key])])
            if agg_cropper is None:
                crops = warp_crops(crops, own, agg_tpl)
            face = agg.fuse([crops], max_set=10**6)
            return warp_crops(face, agg_tpl, own)[0]

        return self.get(set_keys, load_set, desc)


def stamp_keys(keys: list[str], file_of: Callable[[str], Path]) -> list[str]:
    """``key@<12 hex digits of its file's resolved path, size and mtime>`` for each key (each file stat'ed once)."""
    stamps: dict[Path, str] = {}

    def stamp(path: Path) -> str:
        if path not in stamps:
            try:
                st = path.stat()
                ident = f"{path.resolve()}|{st.st_size}|{st.st_mtime_ns}"
            except OSError:  # reading it will fail with a clear error; its key must not hit a cached feature
                ident = f"{path.resolve()}|missing"
            stamps[path] = hashlib.sha256(ident.encode()).hexdigest()[:12]
        return stamps[path]

    return [f"{k}@{stamp(Path(file_of(k)))}" for k in keys]


def members_of(sets: list[list[str]], fingerprint: str) -> list[str]:
    """The cache key of each set (order kept, duplicates allowed)."""
    return [f"agg-{fingerprint}-{fingerprint_strings(keys)}-{len(keys)}" for keys in sets]
