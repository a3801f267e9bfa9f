"""Aligned crops cached per image and template, shared by every model that uses the template: a second
checkpoint on the same benchmark data reads its crops instead of decoding, detecting and aligning again.

``<cache_dir>/crops-<template>-<size>/``: RecordIO shards of raw uint8 crops (``part-<id>.rec`` / ``.idx``,
lossless and decoded by nothing), each with ``part-<id>.parquet`` naming its records (key, record, kind: how the
face was found, so a cached run still reports its fallbacks). Keys are the benchmark's image keys with the
image file's identity (path, size, mtime) and the box or blur they were cropped with. Parts are written atomically
every ``flush_rows`` crops; an interrupted run keeps what it flushed. Thread-safe (the loader's workers add)."""

from __future__ import annotations

import threading
import uuid
from pathlib import Path

import numpy as np
import pandas as pd

from facekit.align.templates import Template
from facekit.fsutil import atomic_path
from facekit.recordio import RecordFile, RecordWriter, ir_record


class CropCache:
    def __init__(self, cache_dir: str | Path, template: Template, flush_rows: int = 4096) -> None:
        self.folder = Path(cache_dir) / f"crops-{template.name}-{template.size}"
        self.size, self.flush_rows = template.size, flush_rows
        self._where: dict[str, tuple[int, int, str]] = {}  # key -> (part, record, kind)
        self._files: list[RecordFile] = []
        for index in sorted(self.folder.glob("part-*.parquet")):
            rec = index.with_suffix(".rec")
            if not rec.is_file():
                continue
            df = pd.read_parquet(index)
            self._files.append(RecordFile(rec))
            part = len(self._files) - 1
            self._where.update({k: (part, int(r), kind) for k, r, kind in zip(df["key"], df["record"], df["kind"])})
        self._pending: list[tuple[str, np.ndarray, str]] = []
        self._lock = threading.Lock()

    def get(self, key: str) -> tuple[np.ndarray, str] | None:
        """(uint8 (S, S, 3) crop, kind), or None when not cached."""
        with self._lock:
            hit = self._where.get(key)
            if hit is None:
                return None
            part, record, kind = hit
            data = self._files[part].read(record).data
        return np.frombuffer(data, np.uint8).reshape(self.size, self.size, 3), kind

    def add(self, key: str, crop: np.ndarray, kind: str) -> None:
        with self._lock:
            self._pending.append((key, np.ascontiguousarray(crop, np.uint8), kind))
            full = len(self._pending) >= self.flush_rows
        if full:
            self.flush()

    def flush(self) -> None:
        with self._lock:
            pending, self._pending = self._pending, []
            if not pending:
                return
            name = f"part-{uuid.uuid4().hex[:12]}"
            with RecordWriter(self.folder / f"{name}.rec") as rec:
                for i, (_, crop, _) in enumerate(pending):
                    rec.write(i, ir_record(0.0, crop.tobytes()))
            with atomic_path(self.folder / f"{name}.parquet") as tmp:  # the index last: a part without it is ignored
                pd.DataFrame({"key": [k for k, _, _ in pending], "record": np.arange(len(pending)),
                              "kind": [kind for _, _, kind in pending]}).to_parquet(tmp, index=False)
            self._files.append(RecordFile(self.folder / f"{name}.rec"))
            part = len(self._files) - 1
            self._where.update({k: (part, i, kind) for i, (k, _, kind) in enumerate(pending)})
