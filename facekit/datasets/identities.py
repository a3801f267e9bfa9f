"""``facekit build identities``: an image-folder tree (one folder per person) -> aligned crops + ``identities``.

- class indices: the rank of the folder name among all folder names, so they do not depend on the shard, on
  resume, or on which images had a face;
- each image: MTCNN, the largest face kept, aligned onto the template; ``aligned=True`` takes the images as
  crops (resized to the template size) for datasets that ship aligned faces;
- unreadable images are recorded (`error`) and skipped, images without a face are recorded (`no_face`);
- sharding by identity hash (``--shard i/n``); resume: identities are processed in fixed chunks, each written as
  one atomic part file, and a rerun skips chunks whose part exists;
- images run on an :class:`~facekit.engine.local.Engine` (this process, ``--workers`` processes, or Ray);
  the driver writes the parts.
"""

from __future__ import annotations

import io
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image, UnidentifiedImageError

from facekit.align.similarity import align_faces
from facekit.align.templates import get_template
from facekit.engine.failures import raise_if_too_many
from facekit.engine.local import Engine
from facekit.errors import InputError
from facekit.fsutil import atomic_path
from facekit.manifests.compact import writer
from facekit.manifests.io import read_manifest, table_dir, write_part
from facekit.manifests.schemas import IDENTITIES
from facekit.pipeline.extract_sequences import in_shard
from facekit.progress import progress_bar
from facekit.quality import laplacian_variance
from facekit.recordio import RecordFile, is_recordio, read_face_records
from facekit.report.grids import sequence_grid

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp"}
JPEG_QUALITY = 95  # identity crops (issue 28: 30 KiB and 1.15 ms to decode as PNG at 144 px, 8.5 KiB and 0.54 ms)


@dataclass
class IdentityBuildSummary:
    out: Path
    identities: int = 0
    images: int = 0
    ok: int = 0
    no_face: int = 0
    error: int = 0
    chunks_done_before: int = 0
    seconds: float = 0.0
    errors: list[str] = field(default_factory=list)
    engine: Engine = field(default_factory=Engine)
    template_note: str = ""  # how the template was chosen when the command did not name one
    preview: Path | None = None  # identities_preview.png

    def lines(self) -> list[str]:
        return [*([self.template_note] if self.template_note else []),
                f"identities: {self.identities}, images: {self.images} -> {self.ok} faces kept, "
                f"{self.no_face} without a face, {self.error} unreadable ({self.chunks_done_before} chunks resumed)",
                *(f"  skipped {e}" for e in self.errors[:10]), *self.engine.summary_lines(),
                f"manifest: {table_dir(self.out, 'identities')}  ({self.seconds:.1f} s)",
                *([f"preview: {self.preview}"] if self.preview else [])]

    def check(self, allowed: float = 0.0) -> None:
        """``InputsFailed`` (exit 3) when more than ``allowed`` (a share) of the images are unreadable."""
        if self.error:
            raise_if_too_many(self.error, self.images, allowed, "images unreadable", self.errors[0])


@dataclass(frozen=True)
class ImageJob:
    path: Path
    job_id: str  # the path relative to the root: the manifest's source_path
    identity: str
    class_index: int
    key: int | None = None  # the record of a RecordIO file (``path``), None for an image file


def discover_identities(root: Path, labels: Path | None = None) -> dict[str, list[Path]]:
    """Person -> its image files (sorted): from the folder tree, or from a ``labels`` CSV with columns ``path``
    (relative to ``root``) and ``identity`` (or ``identity_id``). Raises InputError when there is none."""
    if labels is not None:
        return _from_labels(root, labels)
    if not root.is_dir():
        raise InputError(f"{root}: not a folder (expected one sub-folder of images per person)")
    people = {}
    for folder in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
        images = sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
        if images:
            people[folder.name] = images
    if not people:
        raise InputError(f"{root}: no person folders with images ({', '.join(sorted(IMAGE_SUFFIXES))})")
    return people


def _from_labels(root: Path, labels: Path) -> dict[str, list[Path]]:
    try:
        df = pd.read_csv(labels, dtype=str)
    except (OSError, pd.errors.ParserError, pd.errors.EmptyDataError) as err:
        raise InputError(f"{labels}: cannot read as CSV ({str(err).splitlines()[0][:120]})") from None
    who = "identity" if "identity" in df.columns else "identity_id"
    missing = [c for c in ("path", who) if c not in df.columns]
    if missing:
        raise InputError(f"{labels}: missing column {missing[0]!r} (need path and identity or identity_id)")
    people: dict[str, list[Path]] = {}
    for line, (rel, name) in enumerate(zip(df["path"], df[who]), start=2):
        if not isinstance(rel, str) or not isinstance(name, str):
            raise InputError(f"{labels}:{line}: empty path or identity")
        people.setdefault(name, []).append(root / rel)
    return {k: sorted(v) for k, v in sorted(people.items())}


def _read_rgb(path: Path, key: int | None = None) -> np.ndarray:
    if key is not None:
        files = _WORKER.setdefault("records", {})
        if path not in files:  # open (and index) the file once per process, not once per image
            files[path] = RecordFile(path)
        data = io.BytesIO(files[path].read(key).data)
        with Image.open(data) as im:
            return np.asarray(im.convert("RGB"))
    with Image.open(path) as im:
        return np.asarray(im.convert("RGB"))


CHIP_TEMPLATES = {112: "arcface", 144: "seqface", 150: "dlib"}  # aligned chips: the template their side implies


def choose_template(root: Path, people: dict, template: str | None, aligned: bool) -> tuple[str, str]:
    """(template, note): the one named; for aligned chips (a RecordIO file, ``--aligned``) the one the chips'
    side implies (insightface's 112 px: arcface), said in the note; else seqface (144, SeqFace's training crops)."""
    if template is not None:
        return template, ""
    if not aligned:
        return "seqface", ""
    first = next(iter(people.values()))[0]
    side = _read_rgb(root, first) if isinstance(first, int) else _read_rgb(first)
    name = CHIP_TEMPLATES.get(side.shape[1]) if side.shape[0] == side.shape[1] else None
    if name is None:
        raise InputError(f"{root}: aligned chips of {side.shape[1]}x{side.shape[0]} px match no template "
                         f"({', '.join(f'{k} px: {v}' for k, v in CHIP_TEMPLATES.items())}); pass --template")
    return name, f"template: {name} (inferred from the {side.shape[1]} px aligned chips; --template to override)"


_WORKER: dict = {}


def _init(out: Path, template: str, size: int | None, aligned: bool, min_face_size: float,
          device: str) -> None:
    from facekit.device import resolve_device

    device = str(resolve_device(device))  # on the worker: a Ray actor sees only its own GPUs
    detector = None
    if not aligned:
        from facekit.detect import MTCNN

        detector = MTCNN(device=device, min_face_size=min_face_size, max_side=1280)
    _WORKER.update(out=out, tpl=get_template(template, size), detector=detector, device=device)


def _run(job: ImageJob) -> dict:
    w = _WORKER
    return _one_image(job.path, job.job_id, w["out"], job.identity, job.class_index, w["tpl"], w["detector"],
                      w["device"], job.key)


def _crashed(job: ImageJob, reason: str) -> dict:
    return {**_empty_row(job.job_id, job.identity, job.class_index), "status": "error", "error": reason}


@writer("build identities")
def build_identities(root: Path, out: Path, labels: Path | None = None, template: str | None = None,
                     size: int | None = None,
                     aligned: bool = False, min_face_size: float = 20.0, shard: tuple[int, int] = (0, 1),
                     chunk: int = 256, device: str = "cpu", progress: bool = True,
                     engine: Engine | None = None) -> IdentityBuildSummary:
    t0 = time.time()
    engine = engine or Engine()
    if is_recordio(root):  # insightface's face sets: aligned chips, one identity per label
        faces, aligned = read_face_records(root), True
        order = np.argsort(faces.labels, kind="stable")  # one sort, not one scan of all images per identity
        classes, starts = np.unique(faces.labels[order], return_index=True)
        people = {f"{c:07d}": faces.image_keys[keys].tolist() for c, keys in zip(classes, np.split(order, starts[1:]))}
    else:
        people = discover_identities(root, labels)
    template, note = choose_template(root, people, template, aligned)
    tpl = get_template(template, size)
    class_of = {name: i for i, name in enumerate(sorted(people))}
    mine = [name for name in sorted(people) if in_shard(name, shard)]
    summary = IdentityBuildSummary(out, identities=len(mine), engine=engine, template_note=note)
    tag = f"s{shard[0]:05d}of{shard[1]:05d}"
    chunks = [(f"{tag}-{c // chunk:06d}", mine[c:c + chunk]) for c in range(0, len(mine), chunk)]
    written = sorted(table_dir(out, "identities").glob(f"{tag}-*.parquet"))  # a chunk's part is written whole
    done = set(pd.concat([read_manifest(f, "identities", columns=["identity"]) for f in written])["identity"]) \
        if written else set()  # by the rows, not the part names: 'manifest compact' merges parts
    todo = [(part, names) for part, names in chunks
            if not (table_dir(out, "identities") / f"{part}.parquet").exists() and not set(names) <= done]
    summary.chunks_done_before = len(chunks) - len(todo)
    jobs = [ImageJob(root, f"{root.stem}/{name}/{item}", name, class_of[name], item) if isinstance(item, int) else
            ImageJob(item, item.relative_to(root).as_posix(), name, class_of[name])
            for _, names in todo for name in names for item in people[name]]
    results = engine.map(jobs, _run, _init, (out, template, size, aligned, min_face_size, device), _crashed)
    bar = progress_bar(total=len(jobs), unit="img", desc="build identities", disable=not progress, dynamic_ncols=True)
    try:
        for part, names in todo:  # results come in job order: chunk by chunk
            rows = []
            for _ in range(sum(len(people[n]) for n in names)):
                rows.append(next(results))
                bar.update(1)
            write_part(out, IDENTITIES, part, rows)
    finally:
        bar.close()
        results.close()
    df = read_manifest(out, "identities", columns=["status", "error", "source_path"])
    summary.images = len(df)
    for status in ("ok", "no_face", "error"):
        setattr(summary, status, int((df["status"] == status).sum()))
    summary.errors = [f"{r.source_path}: {r.error}" for r in df[df["status"] == "error"].itertuples()]
    from facekit.manifests.lineage import write_lineage

    write_lineage(out, "build identities", {"root": str(root), "labels": str(labels) if labels else None,
                                            "template": template, "crop_size": tpl.size, "aligned": aligned,
                                            "min_face_size": min_face_size})
    ok = read_manifest(out, "identities", columns=["identity", "status", "crop_path"])
    summary.preview = sequence_grid(ok[ok["status"] == "ok"], out, out / "identities_preview.png", group="identity")
    summary.seconds = time.time() - t0
    return summary


def _empty_row(rel: str, name: str, class_index: int) -> dict:
    return dict(identity=name, class_index=class_index, source_path=rel, status="ok", error=None, num_faces=0,
                score=None, face_px=None, blur=None, crop_path=None)


def _one_image(path: Path, rel: str, out: Path, name: str, class_index: int, tpl, detector, device,
               key: int | None = None) -> dict:
    row = _empty_row(rel, name, class_index)
    try:
        image = _read_rgb(path, key)
    except (UnidentifiedImageError, OSError, ValueError) as err:
        return {**row, "status": "error", "error": f"unreadable image ({type(err).__name__}: {str(err)[:120]})"}
    if detector is None:
        crop = np.asarray(Image.fromarray(image).resize((tpl.size, tpl.size), Image.BILINEAR))[None]
        crop_n3hw = np.ascontiguousarray(crop.transpose(0, 3, 1, 2))
    else:
        det = detector.detect(image[None])[0]
        row["num_faces"] = len(det)
        if not len(det):
            return {**row, "status": "no_face"}
        wh = det.boxes_xyxy[:, 2:] - det.boxes_xyxy[:, :2]
        k = int(np.argmax(wh[:, 0] * wh[:, 1]))
        row.update(score=float(det.scores[k]), face_px=float(np.sqrt(wh[k, 0] * wh[k, 1])))
        crop_n3hw = align_faces([image], np.zeros(1, np.int64), det.landmarks_5x2[k:k + 1], tpl, device).numpy()
    import torch

    row["blur"] = float(laplacian_variance(torch.from_numpy(crop_n3hw))[0])
    crop_rel = f"crops/{Path(rel).with_suffix('').as_posix()}.jpg"  # mirrors the input tree: stable, unique
    target = out / crop_rel
    target.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(target) as tmp:  # JPEG as the sequence crops and insightface's sets: a quarter of PNG's bytes
        Image.fromarray(crop_n3hw[0].transpose(1, 2, 0)).save(tmp, format="JPEG", quality=JPEG_QUALITY)
    row["crop_path"] = crop_rel
    return row
