"""``facekit curate``: each step reads a root, decides with ``facekit.curate.steps`` and writes a new root
(filtered manifests pointing at the same crops, lineage.json) plus ``curation_report.{json,md}`` and image grids
of what it removed."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from facekit.curate import steps
from facekit.curate.clusters import cluster_centres
from facekit.curate.embeddings import embed_crops, manifest_crops
from facekit.errors import InputError
from facekit.fsutil import atomic_path, write_json
from facekit.manifests.io import read_manifest, write_part
from facekit.manifests.lineage import check_output_root, write_derived
from facekit.manifests.ops import root_tables
from facekit.manifests.schemas import SEQUENCE_CLUSTERS
from facekit.provenance import file_digest


@dataclass
class Curated:
    out: Path
    kept: int
    removed: dict[str, int]
    unit_name: str  # what was counted: sequences, identities, faces
    per_group: pd.DataFrame | None = None  # clean: faces before/after per sequence or identity

    def lines(self, groups: int = 5) -> list[str]:
        removed = ", ".join(f"{k} {v}" for k, v in self.removed.items()) or "nothing"
        out = [f"kept {self.kept} {self.unit_name}; removed: {removed}"]
        if self.per_group is not None and len(self.per_group):
            g = self.per_group
            shown = ", ".join(f"{r.iloc[0]} {r['before']} -> {r['after']}" for _, r in g.head(groups).iterrows())
            more = f" (the {groups} most reduced of {len(g)}; all in the report)" if len(g) > groups else ""
            out.append(f"faces per {g.columns[0]}, before -> after: {shown}{more}")
        out.append(f"curated root: {self.out}  (report: {self.out / 'curation_report.md'})")
        return out


def _curatable(root: Path) -> tuple[str, str, str]:
    """(kind, crop table, group column) of a sequences root (faces by ``sequence_id``) or an identities root (by
    ``identity``): the kinds ``facekit.manifests.ops`` knows, less frame sets."""
    kind, tables, group = root_tables(root)
    if kind not in ("sequences", "identities"):
        raise InputError(f"{root}: neither a sequences root (manifests/faces) nor an identities root "
                         f"(manifests/identities)")
    return kind, tables[0], group


def _write_root(src: Path, out: Path, kind: str, keep_rows: pd.DataFrame, command: str, settings: dict) -> None:
    if kind == "sequences":
        seqs = read_manifest(src, "sequences")
        counts = keep_rows.groupby("sequence_id").size()
        seqs = seqs[seqs["sequence_id"].isin(counts.index)].copy()
        seqs["num_faces"] = seqs["sequence_id"].map(counts).astype("int32")
        tables = {"videos": read_manifest(src, "videos"), "sequences": seqs, "faces": keep_rows}
    else:
        full = read_manifest(src, "identities")
        tables = {"identities": pd.concat([keep_rows, full[full["status"] != "ok"]], ignore_index=True)}
    write_derived(src, out, tables, command, settings)


def _report(out: Path, step: str, settings: dict, removed: dict[str, int], kept: int, unit_name: str,
            details: pd.DataFrame | None, per_group: pd.DataFrame | None = None) -> None:
    """curation_report.json: settings, counts, per-group before/after and every decision (kept and removed) with
    the score it was decided on; curation_report.md: the same with the settings (threshold, model) named,
    removed decisions first."""
    records = lambda df: [] if df is None else df.astype(object).where(df.notna(), None).to_dict("records")  # noqa: E731
    write_json(out / "curation_report.json", {"step": step, "settings": settings, "kept": kept, "removed": removed,
                                              "per_group": records(per_group), "decisions": records(details)})
    lines = [f"# curate {step}", "", "| setting | value |", "|---|---|"]
    lines += [f"| {k} | {', '.join(map(str, v)) if isinstance(v, list) else v} |" for k, v in settings.items()]
    lines += ["", f"kept {kept} {unit_name}", "", "| removed because | count |", "|---|---|"]
    lines += [f"| {k} | {v} |" for k, v in removed.items()]
    if per_group is not None and len(per_group):
        lines += ["", "## faces per group, before and after (most reduced first)", "",
                  "| " + " | ".join(per_group.columns) + " |", "|" + "---|" * len(per_group.columns)]
        lines += ["| " + " | ".join(map(str, row)) + " |" for row in per_group.itertuples(index=False)]
    if details is not None and len(details):
        shown = details.sort_values("decision", key=lambda d: d == "kept", kind="stable").head(500)
        more = f" (the first {len(shown)} of {len(details)}; all in curation_report.json)" if len(details) > 500 else ""
        lines += ["", f"## every decision, removed first{more}", "", "| " + " | ".join(details.columns) + " |",
                  "|" + "---|" * len(details.columns)]
        cell = lambda v: ("" if v != v else f"{v:.4f}") if isinstance(v, float) else str(v)  # noqa: E731
        lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in shown.itertuples(index=False)]
    with atomic_path(out / "curation_report.md") as tmp:
        tmp.write_text("\n".join(lines) + "\n")


def _grid(rows: pd.DataFrame, root: Path, target: Path, group: str, **kw) -> None:
    from facekit.report.grids import sequence_grid

    if len(rows):
        sequence_grid(rows[[group, "crop_path"]], root, target, group=group, **kw)


def centre_sample(rows: pd.DataFrame, group: str, k: int) -> pd.DataFrame:
    """At most ``k`` evenly spaced rows of each group, in order (a centre needs a sample, not every face of a
    long sequence); ``k <= 0`` keeps all. Row i of a group of n is kept when floor(i k / n) steps up."""
    if k <= 0:
        return rows
    pos = rows.groupby(group, sort=False).cumcount().to_numpy()
    n = rows.groupby(group, sort=False)[group].transform("size").to_numpy()
    step = (pos * k) // n
    return rows[(pos == 0) | (step != ((pos - 1) * k) // n)]


def curate_overlap(root: Path, out: Path, extractor, identities: list[Path] = (), names: list[Path] = (),
                   threshold: float = 0.55, centre_faces: int = 16, progress: bool = True) -> Curated:
    """Remove the sequences (or identities) of ``root`` whose person is in another identity dataset or a test
    set: centred-centre cosine >= ``threshold`` to an identity centre of ``identities`` roots, or (identity roots)
    folder name on a ``names`` list (LFW lfw-names.txt, YTF person folders). Centres are means over at most
    ``centre_faces`` evenly spaced faces per sequence / identity (0: all)."""
    check_output_root(out, [root], "curate overlap")  # before any work: a refused root costs nothing
    kind, table, group = _curatable(root)
    rows = manifest_crops(root, table)
    sample = centre_sample(rows, group, centre_faces)
    feats = embed_crops(root, sample["crop_path"].tolist(), extractor, progress=progress)
    refs = []
    for ref in identities:
        ref_rows = centre_sample(manifest_crops(ref, "identities"), "identity", centre_faces)
        refs.append((ref, ref_rows, embed_crops(ref, ref_rows["crop_path"].tolist(), extractor, progress=progress)))
    # centre on the reference people (each identity once), so a sequence's score does not depend on which
    # other sequences are being curated with it
    ref_centres_all = [steps.group_centres(f, r["identity"].to_numpy())[1] for _, r, f in refs]
    mean = (np.concatenate(ref_centres_all).mean(0) if refs
            else steps.group_centres(feats, sample[group].to_numpy())[1].mean(0))
    uniq, centres = steps.group_centres(steps.centred(feats, mean), sample[group].to_numpy())
    reason = pd.Series("", index=uniq, dtype=object)
    # every decision, kept or removed, with its best match: the closest reference identity over all references
    details = pd.DataFrame({group: uniq, "decision": "kept", "matched": "", "in": "", "cosine": np.nan})
    for ref, ref_rows, ref_feats in refs:
        ref_ids, ref_centres = steps.group_centres(steps.centred(ref_feats, mean), ref_rows["identity"].to_numpy())
        best, score = steps.overlap(centres, ref_centres, threshold)
        hit = (score >= threshold) & (reason.to_numpy() == "")
        reason[hit] = f"in {ref.name}"
        closer = ~(score <= details["cosine"].to_numpy())  # NaN (no match yet) counts as farther
        details.loc[closer, "matched"] = ref_ids[best[closer]]
        details.loc[closer, "in"] = ref.name
        details.loc[closer, "cosine"] = score[closer]
    for name_file in names:
        if kind != "identities":
            raise InputError(f"--names {name_file}: name lists apply to identity roots (sequences have no names)")
        listed = steps.read_name_list(name_file)
        hit = np.array([steps.normalise_name(g) in listed for g in uniq]) & (reason.to_numpy() == "")
        reason[hit] = f"on {name_file.name}"
        details.loc[hit, "matched"] = uniq[hit]
        details.loc[hit, "in"] = name_file.name
    details["decision"] = ["kept" if r == "" else f"removed: {r}" for r in reason]
    removed_groups = set(reason[reason != ""].index)
    keep = rows[~rows[group].isin(removed_groups)]
    counts = reason[reason != ""].value_counts().to_dict()
    settings = {"identities": [str(p) for p in identities], "names": [str(p) for p in names], "threshold": threshold,
                "centre_faces": centre_faces, "model": f"{extractor.name}-{extractor.fingerprint}"}
    _write_root(root, out, kind, keep, "curate overlap", settings)
    _report(out, "overlap", settings, counts, keep[group].nunique(), kind, details)
    _grid(rows[rows[group].isin(removed_groups)], root, out / "removed_overlap.png", group)
    return Curated(out, keep[group].nunique(), counts, kind)


def curate_clean(root: Path, out: Path, extractor, outlier_threshold: float = 0.2, near_duplicate: float = 0.998,
                 min_group_faces: int = 1, progress: bool = True) -> Curated:
    """Drop exact duplicates (same bytes: the source image for identity roots, else the crop), near duplicates
    (cosine >= ``near_duplicate`` to a kept earlier face of the group; 0.998 keeps 79% of the faces of 10 real
    talking heads and all of their pose spread: benchmarks/near_duplicates.py) and outliers (cosine to the rest of
    the group < ``outlier_threshold``) inside each sequence / identity; then groups left with fewer than
    ``min_group_faces`` faces."""
    check_output_root(out, [root], "curate clean")  # before any work: a refused root costs nothing
    kind, table, group = _curatable(root)
    rows = manifest_crops(root, table)
    groups = rows[group].to_numpy()
    source_root = None
    if kind == "identities":
        from facekit.manifests.lineage import read_lineage

        source_root = read_lineage(root).get("settings", {}).get("root")
    files = [Path(source_root) / p for p in rows["source_path"]] if source_root and \
        all((Path(source_root) / p).is_file() for p in rows["source_path"]) else [root / p for p in rows["crop_path"]]
    exact_of = steps.exact_duplicates([file_digest(f) for f in files], groups)
    feats = embed_crops(root, rows["crop_path"].tolist(), extractor, progress=progress)
    near_of, near_cos = steps.near_duplicates(feats, groups, near_duplicate)  # raw cosine: copies are copies
    exact, near = exact_of >= 0, (near_of >= 0) & (exact_of < 0)
    twin = np.where(exact, exact_of, near_of)
    is_out, cos = steps.outliers(steps.centred(feats, steps.group_centres(feats, groups)[1].mean(0)), groups,
                                 outlier_threshold)
    is_out &= ~(exact | near)
    why = np.where(exact, "exact_duplicate", np.where(near, "near_duplicate", np.where(is_out, "outlier", "")))
    keep = rows[why == ""]
    sizes = keep.groupby(group)[group].transform("size")
    small = keep[sizes < min_group_faces]
    keep = keep[sizes >= min_group_faces]
    counts = {k: int((why == k).sum()) for k in ("exact_duplicate", "near_duplicate", "outlier") if (why == k).any()}
    if len(small):
        counts["small_group"] = int(len(small))
    settings = {"outlier_threshold": outlier_threshold, "near_duplicate": near_duplicate,
                "min_group_faces": min_group_faces, "model": f"{extractor.name}-{extractor.fingerprint}"}
    _write_root(root, out, kind, keep, "curate clean", settings)
    crops = rows["crop_path"].to_numpy()
    decision = np.array(["kept" if w == "" else f"removed: {w}" for w in why], dtype=object)
    decision[rows.index.get_indexer(small.index)] = "removed: small_group"
    # the value each removal was decided on, beside its threshold (exact duplicates: same bytes, no score)
    score = np.where(near, near_cos, np.where(is_out, cos, np.nan))
    threshold = np.where(near, near_duplicate, np.where(is_out, outlier_threshold, np.nan))
    details = rows.assign(decision=decision, duplicate_of=[crops[t] if t >= 0 else "" for t in twin], score=score,
                          threshold=threshold, duplicate_cosine=near_cos, cosine_to_group=cos, reason=why)
    details = details[[group, "crop_path", "decision", "duplicate_of", "score", "threshold", "duplicate_cosine",
                       "cosine_to_group", "reason"]]
    per_group = _per_group(details, group)
    _report(out, "clean", settings, counts, len(keep), "faces", details.drop(columns="reason"), per_group)
    details = details[why != ""]
    # grid: one row per removed face (left), the kept face it duplicates beside it; the label says why and the score
    shown = [(f"{i:05d} {r[group]} {r['reason']}" + ("" if r["score"] != r["score"] else f" {r['score']:.4f}"), p)
             for i, (_, r) in enumerate(details.iterrows())
             for p in ([r["crop_path"], r["duplicate_of"]] if r["duplicate_of"] else [r["crop_path"]])]
    _grid(pd.DataFrame(shown, columns=[group, "crop_path"]), root, out / "removed_clean.png", group,
          noun="removed faces", counts={})
    return Curated(out, len(keep), counts, "faces", per_group)


def _per_group(details: pd.DataFrame, group: str) -> pd.DataFrame:
    """Faces before and after per sequence / identity, and how many each reason removed; most removed first."""
    reasons = details["decision"].str.removeprefix("removed: ")
    table = pd.crosstab(details[group], reasons)
    out = pd.DataFrame({"before": table.sum(1), "after": table.get("kept", 0)})
    out = out.join(table.drop(columns=["kept"], errors="ignore"))
    out["removed"] = out["before"] - out["after"]
    return out.sort_values(["removed", "before"], ascending=False, kind="stable").rename_axis(group).reset_index()


def curate_clusters(root: Path, extractor, threshold: float = 0.6, centre_faces: int = 16,
                    progress: bool = True) -> tuple[pd.DataFrame, Path]:
    """Cluster the sequences of a sequences root by their centres (over at most ``centre_faces`` evenly spaced
    faces each; 0: all); writes ``sequence_clusters`` into the root and ``clusters.png`` / ``clusters_report.md``
    beside it. Returns the table and the grid path."""
    if _curatable(root)[0] != "sequences":
        raise InputError(f"{root}: clusters are computed for a sequences root (manifests/faces)")
    all_faces = manifest_crops(root, "faces")
    rows = centre_sample(all_faces, "sequence_id", centre_faces)
    feats = embed_crops(root, rows["crop_path"].tolist(), extractor, progress=progress)
    seq = rows["sequence_id"].to_numpy()
    uniq, centres = steps.group_centres(steps.centred(feats, steps.group_centres(feats, seq)[1].mean(0)), seq)
    labels, stats = cluster_centres(centres, threshold)
    sizes = np.bincount(labels)[labels]
    df = pd.DataFrame({"sequence_id": uniq, "cluster": labels, "cluster_size": sizes.astype("int32"),
                       "model": f"{extractor.name}-{extractor.fingerprint}"})
    write_part(root, SEQUENCE_CLUSTERS, "part-000000", df)
    multi = df[df["cluster_size"] > 1].sort_values(["cluster", "sequence_id"])
    lines = ["# sequence clusters", "", f"{len(df)} sequences -> {df['cluster'].nunique()} clusters "
             f"(average-linkage, mean cosine >= {threshold}); {len(multi)} sequences share a cluster", "",
             f"neighbours: {stats.backend}, k={stats.k}; {stats.edges} pairs at or above the threshold; "
             f"{stats.components} connected components (largest {stats.largest_component}); "
             f"{stats.approximate_components} clustered on their neighbour graph only", ""]
    lines += [f"- cluster {c}: {', '.join(g['sequence_id'])}" for c, g in multi.groupby("cluster")]
    with atomic_path(root / "clusters_report.md") as tmp:
        tmp.write_text("\n".join(lines) + "\n")
    # clusters.png: the sequences that share a cluster (all sequences when none does), labelled with their cluster
    # and their face count in the manifest (the rows here are the centre sample)
    grid = root / "clusters.png"
    shown = rows[rows["sequence_id"].isin(multi["sequence_id"])] if len(multi) else rows
    label = dict(zip(df["sequence_id"], df["cluster"]))
    total = all_faces["sequence_id"].value_counts()
    names = {s: f"c{label[s]}: {s}" for s in df["sequence_id"]}
    _grid(shown.assign(sequence_id=shown["sequence_id"].map(names)), root, grid, "sequence_id",
          counts={names[s]: int(total[s]) for s in df["sequence_id"]},
          noun="sequences sharing a cluster" if len(multi) else "sequences (none shares a cluster)")
    return df, grid
