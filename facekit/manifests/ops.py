"""Whole-root operations: split by group, sample a grid, merge roots. Each writes derived roots (crops stay in
place, lineage.json records the inputs)."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pandas as pd

from facekit.errors import InputError
from facekit.manifests.io import read_manifest, table_files, write_part
from facekit.manifests.lineage import check_output_root, rebase_crops, write_derived, write_lineage
from facekit.manifests.owner import claim_root
from facekit.manifests.schemas import SCHEMAS

# the tables of each kind of root, the crop table first, and the column naming a group (a person or a sequence)
KINDS = {"sequences": (("faces", "sequences", "videos"), "sequence_id"),
         "identities": (("identities",), "identity"),
         "frames": (("frames", "utterances"), "identity")}


def root_tables(root: Path) -> tuple[str, tuple[str, ...], str]:
    for kind, (tables, group) in KINDS.items():
        try:
            table_files(root, tables[0])
            return kind, tables, group
        except InputError:
            continue
    raise InputError(f"{root}: no faces, identities or frames manifest")


def in_val(group: str, seed: int, fraction: float) -> bool:
    """Deterministic assignment: sha1(seed|group) below ``fraction`` of the hash range. A group never moves
    when the dataset grows."""
    digest = hashlib.sha1(f"{seed}|{group}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 < fraction


def split(root: Path, out: Path, val_fraction: float, seed: int = 0, by: str | None = None) -> dict[str, int]:
    """``out/train`` and ``out/val``: every table filtered by the group (``by``, default the person / sequence)
    of its rows. Returns groups per split."""
    if not 0.0 < val_fraction < 1.0:
        raise InputError(f"--val {val_fraction}: must lie in (0, 1)")
    claim_root(out, "manifest split")
    for name in ("train", "val"):
        check_output_root(out / name, [root], "manifest split")
    kind, tables, group = root_tables(root)
    by = by or group
    frames = {t: read_manifest(root, t) for t in tables}
    if by not in frames[tables[0]].columns:
        raise InputError(f"--by {by!r}: not a column of {tables[0]} ({', '.join(frames[tables[0]].columns)})")
    groups = frames[tables[0]][by].astype(str).unique()
    val = {g for g in groups if in_val(g, seed, val_fraction)}
    counts = {}
    for name, chosen in (("train", lambda g: g not in val), ("val", lambda g: g in val)):
        keep = {}
        for t, df in frames.items():
            if by in df.columns:
                df = df[df[by].astype(str).map(chosen)]
            keep[t] = df
        write_derived(root, out / name, keep, "manifest split",
                      {"by": by, "val_fraction": val_fraction, "seed": seed, "split": name})
        counts[name] = int(sum(chosen(g) for g in groups))
    return counts


def merge(roots: list[Path], out: Path) -> dict[str, int]:
    """One root with the rows of all ``roots`` (e.g. shards extracted on several machines into separate roots).
    Keys must not collide: two roots holding the same sequence / image is an error naming both."""
    if len(roots) < 2:
        raise InputError("merge needs at least two roots")
    kinds = {root_tables(r)[:2] for r in roots}
    if len(kinds) != 1:
        raise InputError(f"cannot merge roots of different kinds: {', '.join(sorted(k for k, _ in kinds))}")
    (kind, tables), = kinds
    key_table, key = {"sequences": ("sequences", "sequence_id"), "identities": ("identities", "source_path"),
                      "frames": ("utterances", "utterance_id")}[kind]
    check_output_root(out, roots, "manifest merge")
    merged: dict[str, list[pd.DataFrame]] = {t: [] for t in tables}
    seen: dict[str, Path] = {}
    for r in roots:
        for t in tables:
            df = read_manifest(r, t)
            if t == key_table:
                for k in df[key].astype(str):
                    if k in seen:
                        raise InputError(f"{r}: {key} {k!r} is also in {seen[k]} (roots must not overlap)")
                    seen[k] = r
            merged[t].append(rebase_crops(df, r, out))

    counts = {}
    for t, parts in merged.items():
        df = pd.concat(parts, ignore_index=True)
        if t == "videos":  # a video can have sequences on both sides of a split: keep its row once
            df = df.drop_duplicates("video_id")
        write_part(out, SCHEMAS[t], "part-000000", df)
        counts[t] = len(df)
    write_lineage(out, "manifest merge", {}, list(roots))
    return counts


def sample_grid(root: Path, target: Path, n: int = 8, seed: int = 0, cols: int = 10) -> Path | None:
    """PNG grid of ``n`` random groups (sequences, identities or videos) of a root, ``cols`` faces each."""
    from facekit.report.grids import sequence_grid

    kind, tables, group = root_tables(root)
    df = read_manifest(root, tables[0])
    if "status" in df.columns:
        df = df[df["status"] == "ok"]
    if kind == "frames":
        df = df.assign(identity=df["identity"] + "/" + df["video"])
    groups = df[group].unique()
    rng = np.random.default_rng(seed)
    pick = set(rng.choice(groups, min(n, len(groups)), replace=False)) if len(groups) else set()
    return sequence_grid(df[df[group].isin(pick)], root, target, rows=n, cols=cols, group=group)
