"""``facekit curate review``: a new root without what a person rejected in ``facekit view`` (the root's ``review``
table: the latest mark of each item decides), with lineage and a curation report like the other steps."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from facekit.curate.run import Curated, _report, _write_root
from facekit.errors import InputError
from facekit.manifests.io import read_manifest
from facekit.manifests.lineage import check_output_root, write_derived
from facekit.manifests.ops import root_tables
from facekit.manifests.review import current_marks

# the item kinds a root's groups are marked as, by kind of root
GROUP_KIND = {"sequences": "sequence", "identities": "identity", "frames": "utterance"}


def curate_review(root: Path, out: Path) -> Curated:
    """Write ``out``: ``root`` less its rejected sequences / identities / utterances and single faces."""
    check_output_root(out, [root], "curate review")
    kind, tables, _ = root_tables(root)
    group = {"sequences": "sequence_id", "identities": "identity", "frames": "utterance_id"}[kind]
    marks = current_marks(root)
    if marks.empty:
        raise InputError(f"{root}: nothing was marked (no manifests/review table; mark items in 'facekit view')")
    marks = marks[marks["decision"] == "rejected"]
    rows = read_manifest(root, tables[0])
    if kind == "identities":
        rows = rows[rows["status"] == "ok"]
    by_group = marks[marks["item_kind"] == GROUP_KIND[kind]].set_index("item_id")
    by_face = marks[marks["item_kind"] == "face"].set_index("item_id")
    group_hit, face_hit = rows[group].isin(by_group.index), rows["crop_path"].isin(by_face.index)
    keep = rows[~group_hit & ~face_hit]
    why = pd.Series("", index=rows.index, dtype=object)
    why[face_hit] = "face"
    why[group_hit] = GROUP_KIND[kind]  # a rejected group wins over a rejected face of it
    mark = pd.concat([by_face.reindex(rows.loc[why == "face", "crop_path"]).set_axis(rows.index[why == "face"]),
                      by_group.reindex(rows.loc[why == GROUP_KIND[kind], group])
                      .set_axis(rows.index[why == GROUP_KIND[kind]])])
    details = rows[[group, "crop_path"]].assign(
        decision=["kept" if w == "" else f"removed: rejected {w}" for w in why],
        reason=mark["reason"].reindex(rows.index), reviewer=mark["reviewer"].reindex(rows.index),
        marked_utc=mark["marked_utc"].reindex(rows.index))
    counts = {f"rejected_{k}": int((why == k).sum()) for k in (GROUP_KIND[kind], "face") if (why == k).any()}
    settings = {"review_marks": int(len(marks)), "reviewers": sorted(set(marks["reviewer"]))}
    if kind == "frames":
        utt = read_manifest(root, "utterances")
        write_derived(root, out, {"frames": keep, "utterances": utt[~utt["utterance_id"].isin(by_group.index)]},
                      "curate review", settings)
    else:
        _write_root(root, out, kind, keep, "curate review", settings)
    _report(out, "review", settings, counts, len(keep), "faces", details)
    return Curated(out, len(keep), counts, "faces")
