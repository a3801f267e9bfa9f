"""One function per benchmark: read the protocol, get features (a model with a cache, or a features file),
compute the metrics, write the report. The Typer commands in ``facekit.cli.bench`` only parse options."""

from __future__ import annotations

import hashlib
import io
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from facekit.bench import ijb, ytf
from facekit.bench.paper_numbers import IJB_TABLE3, PAPER_PROTOCOL, SEQFACE_TABLE2, YTF_BLUR_TABLE4, YTF_DAN_TABLE1
from facekit.bench.report import md_table, new_report_dir, plot_cmc, plot_det, plot_roc, write_report
from facekit.datasets import ijb_files, lfw
from facekit.datasets.demo import is_demo_data
from facekit.embed.features import (
    FaceCropper,
    FeatureCache,
    compute_features,
    lookup_features,
    read_feature_file,
    read_image,
)
from facekit.errors import InputError
from facekit.metrics import (
    best_threshold_accuracy,
    kfold_accuracy,
    l2_normalise,
    open_set_identification,
    pair_scores,
    roc,
    squared_distances,
    tar_at_far,
)
from facekit.provenance import fingerprint_files, fingerprint_strings
from facekit.transforms.blur import blurred_positions, motion_blur


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

    def __post_init__(self) -> None:
        if (self.model is None) == (self.features_file is None):
            raise InputError("give exactly one of --model or --features")
        self._table = read_feature_file(self.features_file) if self.features_file else None
        self.computed = 0
        self.cropper = (FaceCropper(self.model.template, self.model.input_size, aligned=self.aligned)
                        if self.model is not None else None)

    @property
    def fingerprint(self) -> str:
        if self.model is not None:
            return f"{self.model.name}-{self.model.fingerprint}"
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
        feats, n = compute_features(stamped, lambda k: load(original[k]), self.model, cache, self.batch,
                                    desc if self.progress else "")
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
        agg_cropper = None if self.aligned else FaceCropper(agg_tpl, agg_tpl.size, self.cropper.detector)
        set_keys = members_of([stamp_keys(keys, file_of) for keys in sets], agg.fingerprint)
        members = dict(zip(set_keys, sets))

        def load_set(key: str) -> np.ndarray:
            crops = np.stack([load(k, agg_cropper) for k in members[key]])
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


BLUR_KEY = "blur2-"  # cache key prefix of blurred crops; bumped when the kernel changes (2: odd, centred kernels)


def _blur_crop(crop: np.ndarray, size: int, angle: float) -> np.ndarray:
    x = torch.from_numpy(np.array(crop)).permute(2, 0, 1)[None]
    return motion_blur(x, size, angle)[0].permute(1, 2, 0).numpy()


# -- YTF -------------------------------------------------------------------------------------------------------------
@dataclass
class YTFSettings:
    root: Path  # aligned_images_DB
    splits: Path
    n: int = 10
    n_avg: int = 4
    method: str = "avg"  # avg | aggregator
    protocol: str = "dan"  # dan | seqface
    blur: int = 0  # motion blur kernel size applied to 9 of every 10 sampled frames (0: none)
    seed: int = 0
    full_protocol: bool = True  # False only for small fixtures: accept fewer than 5,000 pairs
    threshold: str = "kfold"  # kfold (insightface / FaceNet) | best-on-all (SeqFace's evaluate.py)


THRESHOLD_RULES = ("kfold", "best-on-all")


def check_threshold_rule(rule: str) -> None:
    """Called before any feature is computed, so a typo costs nothing."""
    if rule not in THRESHOLD_RULES:
        raise InputError(f"--threshold must be one of {', '.join(THRESHOLD_RULES)}, got {rule!r}")


def verification_accuracy(a_pd: np.ndarray, b_pd: np.ndarray, same: np.ndarray, folds: np.ndarray,
                          rule: str) -> tuple[dict, str]:
    """Accuracy of unit-feature pairs under a threshold rule -> (metrics, one sentence naming the convention).

    ``kfold``: insightface's ``verification.py`` / FaceNet's ``lfw.py``: squared Euclidean distances, grid
    0, 0.01, ..., 3.99, the first best threshold on the other folds applied to each held-out fold.
    ``best-on-all``: SeqFace's ``evaluate.py``: cosine scores, one best threshold on all pairs (optimistic)."""
    check_threshold_rule(rule)
    if rule == "kfold":
        res = kfold_accuracy(squared_distances(a_pd, b_pd), same, folds)
        return ({"accuracy_mean": res.mean, "accuracy_std": res.std, "accuracy_per_fold": res.accuracies.tolist(),
                 "threshold_per_fold": res.thresholds.tolist(), "threshold_rule": rule},
                f"{len(np.unique(folds))}-fold: on each fold, the first best threshold of the other folds on the grid "
                "0, 0.01, ..., 3.99 of *squared* Euclidean distances between unit features (insightface's "
                "verification.py, FaceNet's lfw.py); mean and population std over folds.")
    best = best_threshold_accuracy((a_pd * b_pd).sum(1), same)
    return ({"accuracy_mean": best.accuracy, "accuracy_std": float("nan"), "threshold": best.threshold,
             "threshold_rule": rule},
            "one best cosine threshold chosen on all pairs, no folds (SeqFace's LFW/YTF evaluate.py): more "
            "optimistic than 10-fold; no std.")


def run_ytf(s: YTFSettings, source: FeatureSource, out_root: Path) -> tuple[Path, dict]:
    t0 = time.perf_counter()
    if s.method not in ("avg", "aggregator") or s.protocol not in ("dan", "seqface"):
        raise InputError(f"unknown --method {s.method!r} / --protocol {s.protocol!r} (avg|aggregator, dan|seqface)")
    if s.method == "aggregator" and s.protocol != "dan":
        raise InputError("--method aggregator runs the DAN protocol (--protocol dan)")
    if s.blur and source.model is None:
        raise InputError("--blur needs --model: precomputed features cannot be blurred")
    check_threshold_rule(s.threshold)
    pairs = ytf.read_splits(s.splits, expect_full=s.full_protocol)
    videos = pairs.videos
    frames = {v: ytf.video_frames(s.root, v) for v in videos}
    keys: dict[str, list[str]] = {}
    for v in videos:
        fs = frames[v]
        # DAN: N * n_avg evenly spaced frames; SeqFace: every frame. --blur hits 9 of every 10 of them.
        idx = ytf.dan_sample(len(fs), s.n, s.n_avg).reshape(-1) if s.protocol == "dan" else np.arange(len(fs))
        blurred = blurred_positions(len(idx)) if s.blur else np.zeros(len(idx), bool)
        keys[v] = [_ytf_key(s, fs[i], s.root, b, v, j) for j, (i, b) in enumerate(zip(idx, blurred))]
    flat = [k for v in videos for k in keys[v]]
    t_protocol = time.perf_counter() - t0

    def frame_file(key: str) -> Path:
        return Path(s.root) / key.partition("|")[0]

    def load(key: str, cropper=None) -> np.ndarray:
        blur = key.partition("|")[2]
        crop = (cropper or source.cropper)(read_image(frame_file(key)))
        if blur:
            size, angle = blur.removeprefix(BLUR_KEY).split("@")
            crop = _blur_crop(crop, int(size), float(angle))
        return crop

    t1 = time.perf_counter()
    if s.method == "aggregator":  # every N consecutive sampled frames -> one aggregated face -> one feature
        sets = [keys[v][g * s.n:(g + 1) * s.n] for v in videos for g in range(s.n_avg)]
        feats = source.get_sets(sets, load, "YTF sets (aggregator)", frame_file)
    else:
        feats = source.get(flat, load, "YTF frames", frame_file)
    t_feats = time.perf_counter() - t1
    t2 = time.perf_counter()
    video_feat, pos = {}, 0
    for v in videos:
        if s.method == "aggregator":
            video_feat[v] = ytf.dan_video_feature(l2_normalise(feats[pos:pos + s.n_avg]))
            pos += s.n_avg
            continue
        f = feats[pos:pos + len(keys[v])]
        pos += len(keys[v])
        if s.protocol == "dan":
            groups = ytf.avg_group_features(l2_normalise(f), s.n, s.n_avg)
            video_feat[v] = ytf.dan_video_feature(groups)
        else:
            video_feat[v] = ytf.seqface_video_feature(f)
    a = np.stack([video_feat[v] for v in pairs.video_a])
    b = np.stack([video_feat[v] for v in pairs.video_b])
    accuracy, convention = verification_accuracy(a, b, pairs.same, pairs.split, s.threshold)
    t_metric = time.perf_counter() - t2
    metrics = {**accuracy, "pairs": int(len(a)), "videos": len(videos), "frames_used": len(flat),
               "features_computed": source.computed,
               "centre_crop_fallbacks": source.cropper.fallbacks if source.cropper else 0}
    out = new_report_dir(out_root, "ytf")
    n_col, navg_col = (s.n, s.n_avg) if s.protocol == "dan" else ("all", "-")
    rows = [[f"facekit ({s.method}, {s.protocol}, {s.threshold})", n_col, navg_col, s.blur or "-",
             100 * metrics["accuracy_mean"], 100 * metrics["accuracy_std"]]]
    demo = is_demo_data([s.splits])
    paper = None if demo else _ytf_paper(s)
    if paper is not None:
        rows.append([f"{paper[0]}, {paper[2]}", n_col, navg_col, s.blur or "-", paper[1], None])
    video_rule = ("DAN: N x n_avg evenly spaced frames, the mean of each group of N, the mean of the n_avg groups, "
                  "L2-normalised" if s.protocol == "dan" else
                  "SeqFace: every frame's feature L2-normalised, summed over the video, L2-normalised")
    md = (f"# YTF verification ({s.protocol.upper()} protocol)\n\n"
          + md_table(["method", "N", "n_avg", "blur", "accuracy %", "std %"], rows)
          + f"\n\nVideo feature: {video_rule}. Accuracy: {convention} Folds = the official splits. "
            + (f"Motion blur: kernel {s.blur}, 9 of every 10 frames used, seeded directions (seed {s.seed}). "
               if s.blur else "")
            + f"Features: {source.fingerprint}.\n")
    _roc_plots(out, "YTF", pairs.same, -squared_distances(a, b))
    used = _jsonable(asdict(s))
    if s.protocol == "seqface":  # every frame is used: N and n_avg play no part
        used.update(n=None, n_avg=None)
    if not s.blur:
        used.update(seed=None)
    write_report(out, "ytf", metrics, {**used, "features": source.fingerprint},
                 {"splits": fingerprint_files([s.splits]), "frames": fingerprint_strings(flat),
                  "features": source.fingerprint},
                 {"protocol": t_protocol, "features": t_feats, "metrics": t_metric}, md, demo)
    return out, metrics


def _ytf_key(s: YTFSettings, frame: Path, root: Path, blurred: bool, video: str, position: int) -> str:
    rel = str(frame.relative_to(root))
    if not blurred:
        return rel
    h = hashlib.sha256(f"{s.seed}|{video}|{position}".encode()).digest()
    angle = int.from_bytes(h[:4], "little") % 180  # a fixed pseudo-random direction per (seed, video, position)
    return f"{rel}|{BLUR_KEY}{s.blur}@{angle}"


def _ytf_paper(s: YTFSettings) -> tuple[str, float, str] | None:
    """(row label, published accuracy %, how the paper scored it): only where the setting is the paper's."""
    if s.protocol == "seqface":
        if s.blur:
            return None
        return ("SeqFace ResNet-64 (paper Table 2)", SEQFACE_TABLE2["YTF"]["ResNet-64"],
                PAPER_PROTOCOL["seqface"])
    if s.blur:
        v = YTF_BLUR_TABLE4[s.method].get(s.blur) if (s.n, s.n_avg) == (10, 4) else None
        return (f"paper Table 4 ({s.method})", v, PAPER_PROTOCOL["dan"]) if v else None
    v = YTF_DAN_TABLE1[s.method].get((s.n, s.n_avg))
    return (f"paper Table 1 ({s.method})", v, PAPER_PROTOCOL["dan"]) if v else None


def _roc_plots(out: Path, name: str, labels: np.ndarray, scores: np.ndarray) -> None:
    fpr, tpr, _ = roc(labels, scores)
    _plot_roc_det(out, name, fpr, tpr, name)


def _plot_roc_det(out: Path, name: str, fpr: np.ndarray, tpr: np.ndarray, title: str) -> None:
    plot_roc(out / "roc.png", {name: (fpr, tpr)}, f"{title} ROC")
    plot_det(out / "det.png", {name: (fpr, tpr)}, f"{title} DET")


def _jsonable(d: dict) -> dict:
    return {k: (str(v) if isinstance(v, Path) else v) for k, v in d.items()}


# -- LFW / .bin --------------------------------------------------------------------------------------------------------
def run_lfw(root: Path | None, pairs_file: Path | None, bin_file: Path | None, source: FeatureSource,
            out_root: Path, threshold: str = "kfold") -> tuple[Path, dict]:
    t0 = time.perf_counter()
    check_threshold_rule(threshold)
    if bin_file is not None:
        images, same = lfw.read_bin(bin_file)
        fold = np.arange(len(same)) * 10 // max(len(same), 1)  # 10 contiguous folds, as insightface does
        keys = [f"{bin_file.name}#{i}" for i in range(len(images))]
        if source.model is None:
            raise InputError("--bin needs --model (its images have no paths to look features up by)")

        def load(key: str) -> np.ndarray:
            i = int(key.rsplit("#", 1)[1])
            with Image.open(io.BytesIO(images[i])) as im:
                return source.cropper(np.asarray(im.convert("RGB")))
        data_fp = fingerprint_files([bin_file])

        def file_of(key: str) -> Path:
            return bin_file
    else:
        if root is None or pairs_file is None:
            raise InputError("give --root and --pairs (LFW) or --bin (insightface .bin)")
        p = lfw.read_pairs(pairs_file)
        same, fold = p.same, p.fold
        keys = [k for ab in zip(p.image_a, p.image_b) for k in ab]

        def file_of(key: str) -> Path:
            return Path(root) / key

        def load(key: str) -> np.ndarray:
            return source.cropper(read_image(file_of(key)))
        data_fp = fingerprint_files([pairs_file])
    feats = l2_normalise(source.get(keys, load, "LFW images", file_of))
    accuracy, convention = verification_accuracy(feats[0::2], feats[1::2], same, fold, threshold)
    metrics = {**accuracy, "pairs": int(len(same)), "features_computed": source.computed}
    out = new_report_dir(out_root, "lfw")
    demo = is_demo_data([bin_file or pairs_file])
    rows = [[f"facekit ({source.fingerprint}, {threshold})", 100 * metrics["accuracy_mean"],
             100 * metrics["accuracy_std"]]]
    if not demo:
        rows.append([f"SeqFace ResNet-64 (paper Table 2, LFW), {PAPER_PROTOCOL['seqface']}",
                     SEQFACE_TABLE2["LFW"]["ResNet-64"], None])
    md = ("# LFW-style verification\n\n" + md_table(["method", "accuracy %", "std %"], rows)
          + f"\n\nAccuracy: {convention}\n")
    if len(set(np.asarray(same).tolist())) == 2:
        _roc_plots(out, "LFW", same, -squared_distances(feats[0::2], feats[1::2]))
    write_report(out, "lfw", metrics, {"root": str(root), "pairs": str(pairs_file), "bin": str(bin_file),
                                       "threshold": threshold, "features": source.fingerprint},
                 {"protocol": data_fp, "features": source.fingerprint},
                 {"total": time.perf_counter() - t0}, md, demo)
    return out, metrics


# -- IJB-B / IJB-C ---------------------------------------------------------------------------------------------------
@dataclass
class IJBSettings:
    root: Path  # folder with the protocol CSVs (official) or the insightface IJBC/IJBB folder
    dataset: str = "IJBC"  # IJBB | IJBC
    images: Path | None = None  # folder the FILENAMEs are relative to (official layout); default root
    layout: str = "official"  # official | insightface
    tar_rule: str = "strict"
    method: str = "avg"  # avg (media = mean of its images' features) | aggregator (media = its aggregated face)


def run_ijb(s: IJBSettings, source: FeatureSource, out_root: Path) -> tuple[Path, dict]:
    t0 = time.perf_counter()
    ds = s.dataset.upper()
    if ds not in ("IJBB", "IJBC"):
        raise InputError(f"--dataset must be IJBB or IJBC, got {s.dataset!r}")
    if s.method not in ("avg", "aggregator"):
        raise InputError(f"--method must be avg or aggregator, got {s.method!r}")
    if s.layout == "insightface":
        if s.method == "aggregator":
            raise InputError("--method aggregator needs the official layout (its media ids and face boxes)")
        return _run_ijb_insightface(s, ds, source, out_root, t0)
    if s.layout != "official":
        raise InputError(f"--layout must be official or insightface, got {s.layout!r}")
    root = Path(s.root)
    images_root = Path(s.images or root)
    gal_files = [root / f for f in ijb_files.GALLERY_FILES[ds]]
    probe_file, match_file = root / ijb_files.PROBE_FILES[ds], root / ijb_files.MATCH_FILES[ds]
    gal = [ijb.read_protocol_csv(f) for f in gal_files]
    probe = ijb.read_protocol_csv(probe_file)
    faces = _unique_faces([*gal, probe])
    keys = [_ijb_key(r) for r in faces.itertuples()]
    box_of = {k: (r.x, r.y, r.x + r.w, r.y + r.h) for k, r in zip(keys, faces.itertuples())}

    def image_file(key: str) -> Path:
        return images_root / key.split("|")[0]

    def load(key: str, cropper=None) -> np.ndarray:
        return (cropper or source.cropper)(read_image(image_file(key)), box_xyxy=np.array(box_of[key]))

    t_read = time.perf_counter() - t0
    t1 = time.perf_counter()
    if s.method == "aggregator":
        feats = _aggregate_media(faces, keys, source, load, ds, image_file)
    else:
        feats = source.get(keys, load, f"{ds} faces", image_file)
    t_feats = time.perf_counter() - t1
    feat_of = dict(zip(keys, range(len(keys))))
    metrics: dict = {"faces": len(keys), "features_computed": source.computed}
    t2 = time.perf_counter()
    # 1:N per gallery
    p_ids, p_feats, p_subj = _templates(probe, feats, feat_of)
    galleries = [(name, *_templates(g, feats, feat_of)) for name, g in zip(_gallery_names(ds), gal)]
    metrics["identification_1N"], cmc_curves = _identification(p_feats, p_subj, galleries)
    # 1:1 over the official match list
    t_ids, t_feats_all, t_subj = _templates(faces, feats, feat_of)
    pairs = ijb.read_matches(match_file)
    metrics["verification_11"], fpr, tpr = _verify(t_ids, t_feats_all, pairs, s.tar_rule, str(match_file),
                                                   t_subj=t_subj)
    metrics["extractions"] = _extractions(faces, len(keys))
    t_metric = time.perf_counter() - t2
    out = new_report_dir(out_root, ds.lower())
    _plot_roc_det(out, ds, fpr, tpr, f"{ds} 1:1")
    plot_cmc(out / "cmc.png", cmc_curves, f"{ds} 1:N mixed CMC")
    files = [*gal_files, probe_file, match_file]
    demo = is_demo_data(files)
    write_report(out, ds.lower(), metrics, {**_jsonable(asdict(s)), "features": source.fingerprint},
                 {"protocol": fingerprint_files(files), "features": source.fingerprint},
                 {"read": t_read, "features": t_feats, "metrics": t_metric},
                 _ijb_markdown(ds, metrics, s, demo), demo)
    return out, metrics


def _aggregate_media(faces, keys: list[str], source: FeatureSource, load, ds: str, file_of) -> np.ndarray:
    """--method aggregator: each media with several images (video frames) is fused into one face, and every
    image of the media takes that face's feature (so the media mean that follows is the aggregated feature); a
    still image keeps its own feature. Returns one feature per face key, like ``source.get``."""
    groups = faces.assign(_key=keys).groupby(["template", "media"], sort=False)["_key"].agg(list).tolist()
    multi = [g for g in groups if len(g) > 1]
    single = [g[0] for g in groups if len(g) == 1]
    feat_of_key = {}
    if multi:
        for g, f in zip(multi, source.get_sets(multi, load, f"{ds} media (aggregator)", file_of)):
            feat_of_key.update({k: f for k in g})
    if single:
        feat_of_key.update(zip(single, source.get(single, load, f"{ds} still images", file_of)))
    return np.stack([feat_of_key[k] for k in keys])


def _extractions(faces, images: int) -> dict:
    """Feature extractions: one per face image (avg) vs one per media (an aggregator's output per media)."""
    media = len(faces.drop_duplicates(["template", "media"]))
    return {"per_image": images, "per_media": media, "saving_with_aggregation": 1 - media / max(images, 1)}


def _gallery_names(ds: str) -> tuple[str, str]:
    return ("G1", "G2") if ds == "IJBC" else ("S1", "S2")


def _identification(p_feats: np.ndarray, p_subj: np.ndarray, galleries: list) -> tuple[dict, dict]:
    """1:N open-set identification of the probe templates against each gallery ``(name, ids, feats, subjects)``:
    metrics per gallery, and two ways of combining the galleries, labelled: ``mean`` (the average of the two
    galleries' figures, as the aggregation paper's Table 3 and most papers report) and ``pooled`` (the hits of
    both galleries over all their mated probes, as insightface's IJB 1:N script counts); and each CMC."""
    per_gallery, cmc_curves, results = {}, {}, []
    for name, g_ids, g_feats, g_subj in galleries:
        r = open_set_identification(p_feats, p_subj, g_feats, g_subj, fpirs=(0.01, 0.1), max_rank=20)
        per_gallery[name] = {"rank1": r.rank(1), "rank5": r.rank(5), "rank10": r.rank(10),
                             "tpir_fpir_0.01": r.tpir_at_fpir[0.01], "tpir_fpir_0.1": r.tpir_at_fpir[0.1],
                             "mated_probes": r.num_mated, "nonmated_probes": r.num_nonmated,
                             "gallery_templates": len(g_ids)}
        cmc_curves[name] = r.cmc
        results.append(r)
    mean = {k: float(np.mean([v[k] for v in per_gallery.values()])) for k in IDENTIFICATION_KEYS}
    mated = max(sum(r.num_mated for r in results), 1)
    pooled = {**{f"rank{k}": sum(int(r.rank_hits[k - 1]) for r in results) / mated for k in (1, 5, 10)},
              **{f"tpir_fpir_{f:g}": sum(r.tpir_hits[f] for r in results) / mated for f in (0.01, 0.1)}}
    return {**per_gallery, "mean": mean, "pooled": pooled}, cmc_curves


# How each layout turns its images into template features: the two differ in preprocessing by design, so the
# same people can score differently in them (a face cut by the image edge, other landmarks, faceness weights).
IJB_FACES = {
    "official": "Faces: NIST's box on the whole image; MTCNN's O-Net in the box gives the 5 landmarks for the "
                "alignment (black outside the image). Media = mean of its images' features, template = sum of "
                "its media, L2-normalised.",
    "insightface": "Faces: insightface's loose crops aligned on the 5 landmarks shipped with them (black outside "
                   "the crop). Media = mean of its images' features weighted by the shipped faceness score "
                   "(insightface's use_detector_score), template = sum of its media, L2-normalised. The official "
                   "layout finds its own landmarks and does not weight: the two layouts can differ by a few "
                   "points on the same people.",
}
IDENTIFICATION_KEYS = ("rank1", "rank5", "rank10", "tpir_fpir_0.01", "tpir_fpir_0.1")


def _ijb_key(r) -> str:
    return f"{r.filename}|{int(r.x)},{int(r.y)},{int(r.w)},{int(r.h)}"


def _unique_faces(frames: list):
    import pandas as pd

    df = pd.concat(frames, ignore_index=True)
    return df.drop_duplicates(["template", "media", "filename", "x", "y", "w", "h"]).reset_index(drop=True)


def _templates(df, feats: np.ndarray, feat_of: dict) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rows = np.array([feat_of[_ijb_key(r)] for r in df.itertuples()])
    ids, tf = ijb.template_features(feats[rows], df.template.to_numpy(), df.media.to_numpy())
    subj = df.drop_duplicates("template").set_index("template").loc[ids, "subject"].to_numpy()
    return ids, tf, subj


def _verify(t_ids: np.ndarray, t_feats: np.ndarray, pairs: np.ndarray, rule: str, source: str,
            labels: np.ndarray | None = None, t_subj: np.ndarray | None = None) -> tuple[dict, np.ndarray, np.ndarray]:
    """1:1 template pairs -> (metrics, fpr, tpr). Labels are given, or same subject (``t_subj``) of both sides."""
    a = ijb.lookup(t_ids, pairs[:, 0], source)
    b = ijb.lookup(t_ids, pairs[:, 1], source)
    scores = pair_scores(t_feats, a, b)
    labels = np.asarray(labels, dtype=bool) if labels is not None else t_subj[a] == t_subj[b]
    fpr, tpr, _ = roc(labels, scores)
    tars = tar_at_far(fpr, tpr, rule=rule)
    return ({"pairs": int(len(scores)), "genuine": int(labels.sum()), "tar_rule": rule,
             **{f"tar_far_{far:g}": v for far, v in tars.items()}}, fpr, tpr)


def _run_ijb_insightface(s: IJBSettings, ds: str, source: FeatureSource, out_root: Path, t0: float):
    name = ds.lower()
    data = ijb.read_insightface_layout(s.root, name)
    faces = data.faces
    keys = faces.filename.tolist()
    marks = dict(zip(keys, faces.landmarks))

    def crop_file(key: str) -> Path:
        return Path(s.root) / "loose_crop" / key

    def load(key: str) -> np.ndarray:
        img = read_image(crop_file(key))
        return source.cropper(img, landmarks_5x2=np.asarray(marks[key], np.float64).reshape(5, 2))

    t1 = time.perf_counter()
    feats = source.get(keys, load, f"{ds} faces", crop_file)
    t_feats = time.perf_counter() - t1
    t2 = time.perf_counter()
    t_ids, tf = ijb.template_features(feats, faces.template.to_numpy(), faces.media.to_numpy(),
                                      weights=faces.faceness.to_numpy())
    verification, fpr, tpr = _verify(t_ids, tf, data.pairs, s.tar_rule, f"{name}_template_pair_label.txt",
                                     labels=data.labels)
    metrics = {"verification_11": verification, "faces": len(keys), "features_computed": source.computed}
    protocol_files = [Path(s.root) / "meta" / f"{name}_template_pair_label.txt"]
    csv_dir = next((d for d in (Path(s.root) / "meta", Path(s.root)) if (d / ijb_files.PROBE_FILES[ds]).is_file()),
                   None)
    cmc_curves = {}
    if csv_dir is None:
        metrics["note"] = (f"no 1:N: the insightface layout has no subject ids; put the official "
                           f"{ijb_files.PROBE_FILES[ds]} and gallery CSVs in {Path(s.root) / 'meta'}")
    else:  # subjects and gallery / probe membership from the official CSVs, template features from the crops
        csvs = [csv_dir / f for f in (*ijb_files.GALLERY_FILES[ds], ijb_files.PROBE_FILES[ds])]
        protocol_files += csvs
        *gal, probe = (ijb.read_protocol_csv(f).drop_duplicates("template") for f in csvs)

        def side(df, what: str):
            rows = ijb.lookup(t_ids, df.template.to_numpy(), what)
            return t_ids[rows], tf[rows], df.subject.to_numpy()

        _, p_feats, p_subj = side(probe, str(csvs[2]))
        galleries = [(n, *side(g, str(f))) for n, g, f in zip(_gallery_names(ds), gal, csvs)]
        metrics["identification_1N"], cmc_curves = _identification(p_feats, p_subj, galleries)
        metrics["extractions"] = _extractions(faces, len(keys))
    out = new_report_dir(out_root, name)
    demo = is_demo_data(protocol_files)
    _plot_roc_det(out, ds, fpr, tpr, f"{ds} 1:1")
    if cmc_curves:
        plot_cmc(out / "cmc.png", cmc_curves, f"{ds} 1:N mixed CMC")
    write_report(out, name, metrics, {**_jsonable(asdict(s)), "features": source.fingerprint},
                 {"protocol": fingerprint_files(protocol_files), "features": source.fingerprint},
                 {"features": t_feats, "metrics": time.perf_counter() - t2, "total": time.perf_counter() - t0},
                 _ijb_markdown(ds, metrics, s, demo), demo)
    return out, metrics


def _ijb_markdown(ds: str, m: dict, s: IJBSettings, demo: bool) -> str:
    v, rule = m["verification_11"], s.tar_rule
    fars = [k for k in v if k.startswith("tar_far_")]
    rule_text = {"strict": "strict: the largest TAR among ROC points with FAR <= target",
                 "nearest": "nearest: insightface's ijb_11.py, the ROC point nearest the target FAR, largest TAR "
                            "on ties (may sit above the target)"}[rule]
    md = f"# {ds}\n\n{IJB_FACES[s.layout]}\n\n## 1:1 verification (TAR at FAR; rule {rule_text})\n\n"
    md += md_table(["FAR"] + [k.removeprefix("tar_far_") for k in fars], [["facekit"] + [100 * v[k] for k in fars]])
    if "identification_1N" in m:
        idn = m["identification_1N"]
        label = {"mean": "mean of the two galleries", "pooled": "pooled hits of both galleries"}
        rows = [[label.get(g, g), 100 * r["rank1"], 100 * r["rank5"], 100 * r["rank10"], 100 * r["tpir_fpir_0.01"],
                 100 * r["tpir_fpir_0.1"]] for g, r in idn.items()]
        for meth, (r1, f01) in ({} if demo else IJB_TABLE3[ds]).items():
            rows.append([f"paper Table 3 ({meth}, mean)", r1, None, None, f01, None])
        md += "\n\n## 1:N mixed-media identification (TPIR %)\n\n" + md_table(
            ["gallery", "rank 1", "rank 5", "rank 10", "FPIR 0.01", "FPIR 0.1"], rows)
        md += ("\n\nA mated probe is a hit only when its mate scores strictly above every other gallery template "
               "(ties count against it) and, for TPIR, strictly above the FPIR threshold (NIST). \"mean\" averages "
               "the two galleries' figures (the paper's Table 3 convention); \"pooled\" divides the hits of both "
               "galleries by all their mated probes (insightface's script).")
        e = m["extractions"]
        md += (f"\n\nFeature extractions: {e['per_image']} (one per face image); {e['per_media']} with one "
               f"aggregated face per media ({100 * e['saving_with_aggregation']:.1f}% fewer"
               + ("" if demo else "; the paper reports 77.1% on IJB-B and 80.9% on IJB-C") + ").\n")
    return md
