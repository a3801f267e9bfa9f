"""Issue 28: insightface's RecordIO read without MXNet. The fixtures are written here by an encoder that follows
the published format (MXNet's recordio.py / dmlc-core: magic, lrecord, payload, 4-byte padding; IRHeader
'<IfQQ' + flag labels; insightface's header record 0 and identity records), not by facekit's own writer."""

from __future__ import annotations

import io
import struct

import numpy as np
import pytest
from PIL import Image

from facekit.errors import InputError
from facekit.recordio import RecordFile, read_face_records

MAGIC = 0xCED7230A


def ir_payload(flag: int, label: float, labels: tuple = (), data: bytes = b"", ident: int = 0) -> bytes:
    """mx.recordio.pack: IRHeader(flag, label, id, id2), then flag float32 labels, then the bytes."""
    return struct.pack("<IfQQ", flag, label, ident, 0) + struct.pack(f"<{len(labels)}f", *labels) + data


def write_rec(path, records: list[tuple[int, bytes]], split: set[int] = frozenset()) -> None:
    """MXIndexedRecordIO.write_idx: each record at a 4-byte boundary, its offset in the .idx; keys in ``split``
    are written as two continued parts (cflag 1 then 3), as dmlc-core does for payloads over 2^29 bytes."""
    with open(path, "wb") as rec, open(path.with_suffix(".idx"), "w") as idx:
        for key, payload in records:
            idx.write(f"{key}\t{rec.tell()}\n")
            pieces = [(1, payload[:10]), (3, payload[10:])] if key in split else [(0, payload)]
            for cflag, piece in pieces:
                rec.write(struct.pack("<II", MAGIC, (cflag << 29) | len(piece)))
                rec.write(piece + b"\0" * (-len(piece) % 4))


def jpeg(colour: tuple[int, int, int]) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(np.full((112, 112, 3), colour, np.uint8)).save(buf, format="JPEG", quality=95)
    return buf.getvalue()


def insightface_set(path, per_identity=(2, 3, 1), split=frozenset()):
    """Record 0: flag 2, labels (a, b); images 1..a-1 labelled by identity; identity records a..b-1."""
    images, ranges, key = [], [], 1
    for ident, n in enumerate(per_identity):
        ranges.append((key, key + n))
        for _ in range(n):
            images.append((key, ir_payload(0, float(ident), data=jpeg((40 * ident, 100, 200 - key)), ident=key)))
            key += 1
    a, b = key, key + len(per_identity)
    records = [(0, ir_payload(2, 0.0, (float(a), float(b))))] + images
    records += [(a + i, ir_payload(2, 0.0, (float(lo), float(hi)))) for i, (lo, hi) in enumerate(ranges)]
    write_rec(path, records, split)
    return images


def test_insightface_layout_images_and_labels(tmp_path):
    images = insightface_set(tmp_path / "train.rec", split={2})
    faces = read_face_records(tmp_path / "train.rec")
    assert faces.image_keys.tolist() == [1, 2, 3, 4, 5, 6] and faces.labels.tolist() == [0, 0, 1, 1, 1, 2]
    assert faces.num_classes == 3
    for key, payload in images:  # the image bytes come back whole, continued records joined
        assert faces.file.read(key).data == payload[24:]
    decoded = np.asarray(Image.open(io.BytesIO(faces.file.read(4).data)))
    assert decoded.shape == (112, 112, 3)


def test_records_without_a_header_are_all_images(tmp_path):
    write_rec(tmp_path / "plain.rec", [(k, ir_payload(0, float(k % 2), data=jpeg((k, k, k)))) for k in range(4)])
    faces = read_face_records(tmp_path / "plain.rec")
    assert faces.image_keys.tolist() == [0, 1, 2, 3] and faces.labels.tolist() == [0, 1, 0, 1]
    # flag > 0 on an image: its first own label is the label (arcface_torch)
    write_rec(tmp_path / "multi.rec", [(0, ir_payload(2, 9.0, (3.0, 1.0), jpeg((1, 2, 3))))])
    assert RecordFile(tmp_path / "multi.rec").read(0).labels.tolist() == [3.0, 1.0]


def test_bad_files_are_one_line_errors_naming_file_and_offset(tmp_path):
    insightface_set(tmp_path / "train.rec")
    data = (tmp_path / "train.rec").read_bytes()
    idx = (tmp_path / "train.idx").read_text().splitlines()
    offset_3 = int(idx[3].split("\t")[1])
    cut = tmp_path / "cut.rec"
    cut.write_bytes(data[:offset_3 + 20])
    (tmp_path / "cut.idx").write_text("\n".join(idx[:4]) + "\n")
    with pytest.raises(InputError, match=rf"cut.rec: truncated at offset {offset_3} \(record 3 needs"):
        RecordFile(cut).read(3)
    bad = tmp_path / "bad.rec"
    bad.write_bytes(data[:offset_3] + b"\x00\x00\x00\x00" + data[offset_3 + 4:])
    (tmp_path / "bad.idx").write_text((tmp_path / "train.idx").read_text())
    with pytest.raises(InputError, match=rf"bad.rec: bad magic number 0x00000000 at offset {offset_3}"):
        RecordFile(bad).read(3)
    past = tmp_path / "past.rec"
    past.write_bytes(data)
    (tmp_path / "past.idx").write_text(f"0\t0\n1\t{len(data) + 100}\n")
    with pytest.raises(InputError, match=rf"past.idx: record 1 points at offset {len(data) + 100}, past the end"):
        RecordFile(past)
    (tmp_path / "junk.rec").write_bytes(data)
    (tmp_path / "junk.idx").write_text("0\t0\nnot a line\n")
    with pytest.raises(InputError, match=r"junk.idx:2: expected 'key<TAB>offset'"):
        RecordFile(tmp_path / "junk.rec")


def _independent_read(rec):
    """A reader written from the published format alone: the .idx, then magic, lrecord, IRHeader, labels, bytes."""
    out = {}
    data = rec.read_bytes()
    for line in rec.with_suffix(".idx").read_text().splitlines():
        key, offset = map(int, line.split("\t"))
        magic, lrecord = struct.unpack_from("<II", data, offset)
        assert magic == MAGIC and lrecord >> 29 == 0
        payload = data[offset + 8:offset + 8 + (lrecord & (2**29 - 1))]
        flag, label, _, _ = struct.unpack_from("<IfQQ", payload)
        labels = struct.unpack_from(f"<{flag}f", payload, 24) if flag else (label,)
        out[key] = (labels, payload[24 + 4 * flag:])
    return out


def test_pack_writes_insightface_layout_read_back_by_both_readers(tmp_path):
    """Issue 28: `facekit pack` on an identities root writes train.rec / train.idx / property as insightface
    lays them out; facekit's reader and an independent one read back every crop's bytes and label."""
    from facekit.cli.main import main
    from facekit.manifests.io import read_manifest

    for person, n in (("ann", 2), ("bob", 3), ("cy", 1)):
        (tmp_path / "in" / person).mkdir(parents=True)
        for i in range(n):
            Image.fromarray(np.full((112, 112, 3), (30 * i, 90, len(person) * 40), np.uint8)).save(
                tmp_path / "in" / person / f"{i}.png")
    ids = tmp_path / "ids"
    assert main(["build", "identities", str(tmp_path / "in"), "-o", str(ids), "--aligned", "-q"]) == 0
    assert main(["pack", str(ids), "-q"]) == 0
    df = read_manifest(ids, "identities").sort_values(["class_index", "crop_path"])
    assert (ids / "packed" / "property").read_text() == "3,112,112"
    theirs = _independent_read(ids / "packed" / "train.rec")
    assert theirs[0][0] == (7.0, 10.0)  # images 1..6, identities 7..9
    assert [theirs[k][0] for k in (7, 8, 9)] == [(1.0, 3.0), (3.0, 6.0), (6.0, 7.0)]
    faces = read_face_records(ids / "packed" / "train.rec")
    assert faces.labels.tolist() == df["class_index"].tolist() == [0, 0, 1, 1, 1, 2]
    for key, rel in zip(faces.image_keys, df["crop_path"]):
        crop = (ids / rel).read_bytes()
        assert theirs[int(key)][1] == crop and faces.file.read(int(key)).data == crop
        assert rel.endswith(".jpg") and crop[:2] == b"\xff\xd8"  # identity crops are JPEG (quality 95)
