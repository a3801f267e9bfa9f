"""``facekit bench ijb``: IJB-B / IJB-C 1:1 verification and 1:N identification in the official layout or
insightface's (read with ``bench.ijb``), the report."""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from facekit.bench import ijb
from facekit.bench.common import plot_roc_det
from facekit.bench.paper_numbers import IJB_TABLE3
from facekit.bench.report import md_table, new_report_dir, plot_cmc, write_report
from facekit.bench.source import FeatureSource
from facekit.datasets import ijb_files
from facekit.datasets.demo import is_demo_data
from facekit.embed.features import (
    crop_report,
    read_image,
)
from facekit.errors import InputError
from facekit.fsutil import jsonable
from facekit.metrics import (
    open_set_identification,
    pair_scores,
    roc,
    tar_at_far,
)
from facekit.provenance import fingerprint_files


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
    plot_roc_det(out, ds, fpr, tpr, f"{ds} 1:1")
    plot_cmc(out / "cmc.png", cmc_curves, f"{ds} 1:N mixed CMC")
    files = [*gal_files, probe_file, match_file]
    demo = is_demo_data(files)
    write_report(out, ds.lower(), metrics, {**jsonable(asdict(s)), "features": source.fingerprint},
                 {"protocol": fingerprint_files(files), "features": source.fingerprint},
                 {"read": t_read, "features": t_feats, "metrics": t_metric},
                 _ijb_markdown(ds, metrics, s, demo), demo,
                 crops=crop_report(source.croppers(), source.computed))
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
    out = {"pairs": int(len(scores)), "genuine": int(labels.sum()), "tar_rule": rule,
           **{f"tar_far_{far:g}": v for far, v in tars.items()}}
    if rule == "strict":  # the published tables' rule beside it, labelled (insightface's ijb_11.py)
        out["nearest_fpr"] = {f"tar_far_{far:g}": v for far, v in tar_at_far(fpr, tpr, rule="nearest").items()}
    return out, fpr, tpr


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
    plot_roc_det(out, ds, fpr, tpr, f"{ds} 1:1")
    if cmc_curves:
        plot_cmc(out / "cmc.png", cmc_curves, f"{ds} 1:N mixed CMC")
    write_report(out, name, metrics, {**jsonable(asdict(s)), "features": source.fingerprint},
                 {"protocol": fingerprint_files(protocol_files), "features": source.fingerprint},
                 {"features": t_feats, "metrics": time.perf_counter() - t2, "total": time.perf_counter() - t0},
                 _ijb_markdown(ds, metrics, s, demo), demo,
                 crops=crop_report(source.croppers(), source.computed))
    return out, metrics


def _ijb_markdown(ds: str, m: dict, s: IJBSettings, demo: bool) -> str:
    v, rule = m["verification_11"], s.tar_rule
    fars = [k for k in v if k.startswith("tar_far_")]
    rule_text = {"strict": "strict: the largest TAR among ROC points with FAR <= target",
                 "nearest": "nearest: insightface's ijb_11.py, the ROC point nearest the target FAR, largest TAR "
                            "on ties (may sit above the target)"}[rule]
    md = f"# {ds}\n\n{IJB_FACES[s.layout]}\n\n## 1:1 verification (TAR at FAR; rule {rule_text})\n\n"
    rows = [[f"facekit ({rule})"] + [100 * v[k] for k in fars]]
    if "nearest_fpr" in v:
        rows.append(["facekit (nearest FPR: insightface's ijb_11.py, the published tables' rule)"]
                    + [100 * v["nearest_fpr"][k] for k in fars])
    md += md_table(["FAR"] + [k.removeprefix("tar_far_") for k in fars], rows)
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
