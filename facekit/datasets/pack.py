"""``facekit pack ROOT``: a root's crops into indexed RecordIO shards under ``ROOT/packed/``, so training reads
a few large files with random access instead of millions of small ones.

- an identities root becomes insightface's own layout, ``train.rec`` / ``train.idx`` / ``property``: header
  record 0 (labels (a, b)), images 1..a-1 in class order labelled by ``class_index``, identity records a..b-1
  with their (first, end) image records, ``property`` = ``classes,size,size``; arcface_torch trains on it as it
  is (with an arcface 112 root);
- a sequences or frames root becomes shards of ``shard_size`` records (``faces-00000.rec`` ...);
- ``index.parquet`` maps every (table, crop_path) to its (shard, key): the trainers look crops up by the
  manifest's paths, so a packed root gives the same batches as the files (the bytes are the crop files' own).

Every shard is written atomically; packing again rewrites them all."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from facekit.datasets.crops import PACKED
from facekit.errors import InputError
from facekit.fsutil import atomic_path
from facekit.manifests.io import read_manifest
from facekit.manifests.lineage import crop_template
from facekit.manifests.ops import root_tables
from facekit.progress import progress_bar
from facekit.recordio import RecordWriter, ir_record


@dataclass
class PackSummary:
    out: Path
    table: str
    records: int
    shards: list[str]
    bytes: int
    seconds: float

    def lines(self) -> list[str]:
        return [f"packed {self.records} crops of {self.table} into {len(self.shards)} shard(s), "
                f"{self.bytes / 2**20:.1f} MiB, in {self.seconds:.1f} s -> {self.out}"]


def pack_root(root: Path, shard_size: int = 100_000, progress: bool = True) -> PackSummary:
    t0 = time.perf_counter()
    kind, tables, _ = root_tables(root)
    table = tables[0]  # faces, identities or frames: the table whose rows carry crop_path
    df = read_manifest(root, table)
    if "status" in df.columns:
        df = df[df["status"] == "ok"]
    df = df[df["crop_path"].notna()]
    if df.empty:
        raise InputError(f"{root}: no crops to pack in manifests/{table}")
    out = Path(root) / PACKED
    bar = progress_bar(total=len(df), unit="crop", desc="pack", disable=not progress, dynamic_ncols=True)
    if kind == "identities":
        index, shards = _pack_identities(root, df, out, bar), ["train.rec"]
        _write_index(out, index)
    else:
        shards = pack_files(root, table, sorted(df["crop_path"]), shard_size, bar)
    bar.close()
    size = sum((out / s).stat().st_size for s in shards)
    return PackSummary(out, table, len(df), shards, size, time.perf_counter() - t0)


def _pack_identities(root: Path, df: pd.DataFrame, out: Path, bar) -> dict:
    df = df.sort_values(["class_index", "crop_path"], kind="stable")
    classes = int(df["class_index"].max()) + 1
    a = len(df) + 1  # images are records 1..a-1, identities a..a+classes-1
    first = np.searchsorted(df["class_index"].to_numpy(), np.arange(classes + 1)) + 1
    with RecordWriter(out / "train.rec") as rec:
        rec.write(0, ir_record([float(a), float(a + classes)]))
        for key, (label, rel) in enumerate(zip(df["class_index"], df["crop_path"]), start=1):
            rec.write(key, ir_record(float(label), (Path(root) / rel).read_bytes()))
            bar.update(1)
        for c in range(classes):
            rec.write(a + c, ir_record([float(first[c]), float(first[c + 1])]))
    side = crop_template(root).size
    with atomic_path(out / "property") as tmp:
        tmp.write_text(f"{classes},{side},{side}")
    return {"table": "identities", "crop_path": df["crop_path"].tolist(), "shard": "train.rec",
            "key": np.arange(1, a, dtype=np.int64)}


def pack_files(root: Path, table: str, rel_paths: list[str], shard_size: int = 100_000, bar=None) -> list[str]:
    """The files ``rel_paths`` of ``root`` (a table's crops) into shards ``ROOT/packed/<table>-00000.rec`` ... of
    ``shard_size`` records, and ``index.parquet`` naming each one's (shard, key); returns the shard names."""
    out = Path(root) / PACKED
    shards, shard_of, keys = [], [], []
    for s in range(0, len(rel_paths), shard_size):
        name = f"{table}-{s // shard_size:05d}.rec"
        with RecordWriter(out / name) as rec:
            for key, rel in enumerate(rel_paths[s:s + shard_size]):
                rec.write(key, ir_record(0.0, (Path(root) / rel).read_bytes()))
                shard_of.append(name), keys.append(key)
                if bar is not None:
                    bar.update(1)
        shards.append(name)
    _write_index(out, {"table": table, "crop_path": list(rel_paths), "shard": shard_of,
                       "key": np.asarray(keys, np.int64)})
    return shards


def _write_index(out: Path, index: dict) -> None:
    with atomic_path(out / "index.parquet") as tmp:
        pd.DataFrame(index).to_parquet(tmp, index=False)
