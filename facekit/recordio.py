"""MXNet indexed RecordIO (insightface's ``train.rec`` + ``train.idx`` + ``property``), read and written without
MXNet (whose last release does not install on Python 3.11).

Format (``shared/notes/scale.md``, from MXNet's ``recordio.py`` / dmlc-core): a record is ``uint32`` magic
``0xced7230a``, ``uint32`` lrecord (upper 3 bits: continuation flag, lower 29: payload length), the payload, zero
padding to 4 bytes. The ``.idx`` is text, ``key<TAB>offset`` per record. A payload is an ``IRHeader``
(``<IfQQ``: flag, label, id, id2; 24 bytes), then ``flag`` float32 labels when flag > 0 (``label`` is then
unused), then the image bytes. insightface's face sets open with a header record 0 (flag 2, labels (a, b)):
images are records 1..a-1 and records a..b-1 describe identity ``key - a`` with labels (first, end) of its
image records; arcface_torch labels an image by its header's first label."""

from __future__ import annotations

import io
import os
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from facekit.errors import InputError

MAGIC = 0xCED7230A
IR_HEADER = struct.Struct("<IfQQ")  # flag, label, id, id2
LENGTH_BITS = 29


def is_recordio(path: str | Path) -> bool:
    """A path naming an indexed RecordIO file (insightface's ``train.rec``, its ``.idx`` beside it)."""
    return Path(path).suffix == ".rec"


@dataclass(frozen=True)
class Record:
    flag: int  # > 0: ``labels`` are the record's own label list
    labels: np.ndarray  # float32 (k,): the header's label, or its ``flag`` labels
    data: bytes  # what follows the header: the image bytes (JPEG in the public face sets)


class RecordFile:
    """Random access to the records of ``rec`` by key through ``idx`` (default: ``rec`` with ``.idx``). Every
    read checks the magic number and the length against the file; a bad one is a one-line error naming the file
    and the offset. Safe in forked DataLoader workers (each process opens its own handle)."""

    def __init__(self, rec: str | Path, idx: str | Path | None = None) -> None:
        self.rec = Path(rec)
        self.idx = Path(idx) if idx is not None else self.rec.with_suffix(".idx")
        for p in (self.rec, self.idx):
            if not p.is_file():
                raise InputError(f"{p}: not found (a RecordIO dataset is a .rec with its .idx beside it)")
        self.size = self.rec.stat().st_size
        keys, offsets = [], []
        with self.idx.open() as fh:
            for n, line in enumerate(fh, 1):
                parts = line.split()
                if not parts:
                    continue
                if len(parts) != 2 or not (parts[0].lstrip("-").isdigit() and parts[1].isdigit()):
                    raise InputError(f"{self.idx}:{n}: expected 'key<TAB>offset', got {line.strip()[:60]!r}")
                keys.append(int(parts[0]))
                offsets.append(int(parts[1]))
        self.keys = np.asarray(keys, np.int64)
        order = np.argsort(self.keys, kind="stable")
        self._sorted_keys, self._offsets = self.keys[order], np.asarray(offsets, np.int64)[order]
        bad = np.flatnonzero(self._offsets + 8 > self.size)
        if len(bad):
            raise InputError(f"{self.idx}: record {int(self._sorted_keys[bad[0]])} points at offset "
                             f"{int(self._offsets[bad[0]])}, past the end of {self.rec} ({self.size} bytes)")
        self._fh, self._pid = None, None

    def __len__(self) -> int:
        return len(self.keys)

    def offset(self, key: int) -> int:
        i = int(np.searchsorted(self._sorted_keys, key))
        if i == len(self._sorted_keys) or self._sorted_keys[i] != key:
            raise InputError(f"{self.idx}: no record with key {key}")
        return int(self._offsets[i])

    def _file(self):
        if self._fh is None or self._pid != os.getpid():
            self._fh, self._pid = self.rec.open("rb"), os.getpid()
        return self._fh

    def raw(self, key: int) -> bytes:
        """The payload of record ``key`` (continued records joined)."""
        fh, pos, parts = self._file(), self.offset(key), []
        while True:
            fh.seek(pos)
            head = fh.read(8)
            if len(head) < 8:
                raise InputError(f"{self.rec}: truncated at offset {pos} (record {key}: no record header)")
            magic, lrecord = struct.unpack("<II", head)
            if magic != MAGIC:
                raise InputError(f"{self.rec}: bad magic number {magic:#010x} at offset {pos} (record {key}); "
                                 f"not a RecordIO file, or the .idx does not belong to it")
            flag, length = lrecord >> LENGTH_BITS, lrecord & ((1 << LENGTH_BITS) - 1)
            payload = fh.read(length)
            if len(payload) < length:
                raise InputError(f"{self.rec}: truncated at offset {pos} (record {key} needs {length} bytes, "
                                 f"{len(payload)} left)")
            parts.append(payload)
            if flag in (0, 3):  # whole record, or the last part of a continued one
                return b"".join(parts)
            pos += 8 + length + (-length % 4)

    def read(self, key: int) -> Record:
        payload = self.raw(key)
        if len(payload) < IR_HEADER.size:
            raise InputError(f"{self.rec}: record {key} at offset {self.offset(key)} is shorter than its header")
        flag, label, _, _ = IR_HEADER.unpack_from(payload)
        start = IR_HEADER.size
        if flag > 0:
            labels = np.frombuffer(payload, np.float32, flag, start).copy()
            start += 4 * flag
        else:
            labels = np.array([label], np.float32)
        return Record(int(flag), labels, payload[start:])


@dataclass(frozen=True)
class FaceRecords:
    """A face set in insightface's layout: ``image_keys`` (n,) with ``labels`` (n,) 0..C-1."""
    file: RecordFile
    image_keys: np.ndarray
    labels: np.ndarray
    num_classes: int

    def __len__(self) -> int:
        return len(self.image_keys)

    def load(self, i: int, size: int) -> np.ndarray:
        """Image ``i`` (not its key) decoded: uint8 (size, size, 3) RGB, resized when it is not that size."""
        key = int(self.image_keys[i])
        return decode_image(self.file.read(key).data, size, f"{self.file.rec}: record {key}")


def decode_image(data: bytes, size: int, where: str) -> np.ndarray:
    """Image bytes -> uint8 (size, size, 3) RGB, resized when not that size; ``where`` names it in an error."""
    from PIL import Image

    try:
        with Image.open(io.BytesIO(data)) as im:
            if im.mode != "RGB":  # JPEG faces are RGB already: no copy
                im = im.convert("RGB")
            if im.size != (size, size):
                im = im.resize((size, size), Image.BILINEAR)
            return np.array(im)
    except (OSError, ValueError) as err:
        raise InputError(f"{where} is not a readable image ({type(err).__name__})") from None


def read_face_records(rec: str | Path) -> FaceRecords:
    """The images and their identity labels, as arcface_torch reads them. With insightface's header record 0
    (flag > 0: labels (a, b)), images are records 1..a-1 and the identity table (records a..b-1) gives every
    image's label without reading the images (start-up at millions of images; the first and last images' own
    labels are checked against it); without one, every record is an image labelled by its header's first label
    (each read once)."""
    f = RecordFile(rec)
    first = f.read(0) if len(f) and (f.keys == 0).any() else None
    if first is not None and first.flag > 0 and len(first.labels) >= 2:
        a, b = int(first.labels[0]), int(first.labels[1])
        image_keys = np.arange(1, a, dtype=np.int64)
        labels = np.full(len(image_keys), -1, np.int64)
        for identity, key in enumerate(range(a, b)):
            lo, hi = (int(v) for v in f.read(key).labels[:2])
            if not 1 <= lo <= hi <= a:
                raise InputError(f"{f.rec}: identity record {key} covers images {lo}..{hi - 1}, outside 1..{a - 1}")
            labels[lo - 1:hi - 1] = identity
        if (labels < 0).any():
            raise InputError(f"{f.rec}: image record {int(image_keys[labels < 0][0])} belongs to no identity record")
        for i in {0, len(image_keys) - 1} if len(image_keys) else ():
            own = int(f.read(int(image_keys[i])).labels[0])
            if own != labels[i]:
                raise InputError(f"{f.rec}: image record {int(image_keys[i])} is labelled {own} but the identity "
                                 f"table puts it in identity {int(labels[i])}")
        return FaceRecords(f, image_keys, labels, b - a)
    if first is not None and first.flag > 0:  # a header without an identity table: images 1..a-1
        keys = np.arange(1, int(first.labels[0]), dtype=np.int64)
        labels = np.array([int(f.read(int(k)).labels[0]) for k in keys], np.int64)
        return FaceRecords(f, keys, labels, int(labels.max()) + 1 if len(labels) else 0)
    keys = np.sort(f.keys)
    labels = np.array([int(f.read(int(k)).labels[0]) for k in keys], np.int64)
    return FaceRecords(f, keys, labels, int(labels.max()) + 1 if len(labels) else 0)


def ir_record(labels: float | list[float], data: bytes = b"", ident: int = 0) -> bytes:
    """A payload as ``mx.recordio.pack`` makes it: one label in the header (flag 0), or ``flag`` labels after it."""
    if isinstance(labels, (int, float)):
        return IR_HEADER.pack(0, float(labels), ident, 0) + data
    return IR_HEADER.pack(len(labels), 0.0, ident, 0) + struct.pack(f"<{len(labels)}f", *labels) + data


class RecordWriter:
    """Writes ``rec`` and its ``.idx`` (MXIndexedRecordIO's layout); both appear at ``close`` (temporary files
    renamed), so a killed pack leaves no half file."""

    def __init__(self, rec: str | Path) -> None:
        self.rec = Path(rec)
        self.idx = self.rec.with_suffix(".idx")
        self.rec.parent.mkdir(parents=True, exist_ok=True)
        self._rec_tmp, self._idx_tmp = self.rec.with_name(f".{self.rec.name}.tmp"), self.idx.with_name(
            f".{self.idx.name}.tmp")
        self._rec, self._idx = self._rec_tmp.open("wb"), self._idx_tmp.open("w")

    def write(self, key: int, payload: bytes) -> None:
        if len(payload) >= 1 << LENGTH_BITS:
            raise InputError(f"{self.rec}: record {key} of {len(payload)} bytes is too large for one record")
        self._idx.write(f"{key}\t{self._rec.tell()}\n")
        self._rec.write(struct.pack("<II", MAGIC, len(payload)) + payload + b"\0" * (-len(payload) % 4))

    def close(self) -> None:
        self._rec.close(), self._idx.close()
        os.replace(self._rec_tmp, self.rec)
        os.replace(self._idx_tmp, self.idx)

    def __enter__(self) -> "RecordWriter":
        return self

    def __exit__(self, kind, *_) -> None:
        if kind is None:
            self.close()
        else:
            self._rec.close(), self._idx.close()
            self._rec_tmp.unlink(missing_ok=True), self._idx_tmp.unlink(missing_ok=True)
