"""A root's crops as the trainers read them: files under the root (``CropFiles``), or the records of its packed
shards (``PackedCrops``, written by ``facekit pack``), looked up by the same relative paths, so a packed root
gives the same samples in the same order, byte for byte."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from facekit.errors import InputError
from facekit.images import load_crop
from facekit.recordio import RecordFile, decode_image

PACKED = "packed"  # <root>/packed/: the shards and index.parquet (table, crop_path, shard, key)


class CropFiles:
    """Many relative paths in two numpy arrays (bytes + offsets): no Python objects, so forked DataLoader workers
    share the memory instead of copying it (each object touch would copy its page)."""

    def __init__(self, root: Path, rel_paths: list[str]) -> None:
        encoded = [p.encode() for p in rel_paths]
        self.root = Path(root)
        self.offsets = np.zeros(len(encoded) + 1, np.int64)
        np.cumsum([len(e) for e in encoded], out=self.offsets[1:])
        self.blob = np.frombuffer(b"".join(encoded), np.uint8) if encoded else np.zeros(0, np.uint8)

    def __len__(self) -> int:
        return len(self.offsets) - 1

    def __getitem__(self, i: int) -> Path:
        return self.root / self.blob[self.offsets[i]:self.offsets[i + 1]].tobytes().decode()

    def load(self, i: int, size: int) -> np.ndarray:
        """Crop ``i``: uint8 (size, size, 3)."""
        return load_crop(self[i], size)


class PackedCrops:
    """The crops ``rel_paths`` of ``root`` read from its packed shards: (shard, key) per crop, in numpy arrays."""

    def __init__(self, root: Path, table: str, rel_paths: list[str]) -> None:
        index = pd.read_parquet(Path(root) / PACKED / "index.parquet")
        index = index[index["table"] == table]
        where = pd.DataFrame({"crop_path": rel_paths}).merge(index, on="crop_path", how="left", validate="many_to_one")
        if where["key"].isna().any():
            missing = where.loc[where["key"].isna(), "crop_path"].iloc[0]
            raise InputError(f"{root}: {missing} is not in the packed shards (the root changed after `facekit pack`; "
                             f"pack it again)")
        self.root = Path(root)
        self.shard_names = sorted(where["shard"].unique())
        self.shard = where["shard"].map({n: i for i, n in enumerate(self.shard_names)}).to_numpy(np.int32)
        self.key = where["key"].to_numpy(np.int64)
        self._files: dict[int, RecordFile] = {}

    def __len__(self) -> int:
        return len(self.key)

    def load(self, i: int, size: int) -> np.ndarray:
        s = int(self.shard[i])
        if s not in self._files:
            self._files[s] = RecordFile(self.root / PACKED / self.shard_names[s])
        key = int(self.key[i])
        return decode_image(self._files[s].read(key).data, size, f"{self._files[s].rec}: record {key}")


def crop_store(root: Path, table: str, rel_paths: list[str]) -> CropFiles | PackedCrops:
    """The packed shards when ``facekit pack`` wrote them, else the files."""
    if (Path(root) / PACKED / "index.parquet").is_file():
        return PackedCrops(root, table, rel_paths)
    return CropFiles(root, rel_paths)
