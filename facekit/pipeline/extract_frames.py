"""``facekit extract-frames``: VoxCeleb2-style frame sets, k evenly spaced frames per utterance clip, the largest
face of each detected (MTCNN) and aligned (ArcFace 112 by default). The Face Aggregation Network trains on these
(5 frames per utterance, section 4.1).

- layout: ``<root>/[mp4/]<identity>/<video>/<utterance>.mp4`` (VoxCeleb2 dev and test are both this);
- frames come from decord random access (``get_batch`` of the k indices; the reader is closed after each clip);
- sharding by utterance id hash (``--shard i/n``), workers, resume: results are flushed every ``flush_every``
  clips, ``frames`` part first and ``utterances`` part last (the commit), so a rerun redoes only unfinished clips;
- a clip that cannot be decoded is recorded (status ``error`` with the reason) and skipped.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

from facekit.engine.failures import Failures, stop_after_commit
from facekit.engine.local import Engine
from facekit.errors import InputError
from facekit.fsutil import atomic_path
from facekit.manifests.compact import writer
from facekit.manifests.io import PartWriter, read_manifest, table_dir
from facekit.manifests.schemas import FRAMES, UTTERANCES
from facekit.pipeline.extract_sequences import check_run_config, clean_leftovers, in_shard
from facekit.progress import progress_bar
from facekit.report.grids import sequence_grid

CLIP_SUFFIXES = (".mp4", ".avi", ".mkv", ".mov", ".webm")


@dataclass(frozen=True)
class FramesConfig:
    frames_per_utterance: int = 5
    template: str = "arcface"
    crop_size: int = 112
    min_face_size: float = 40.0
    min_score: float = 0.9
    jpeg_quality: int = 95


@dataclass(frozen=True)
class Utterance:
    utterance_id: str
    identity: str
    video: str
    path: Path
    split: str


@dataclass
class FramesSummary:
    out: Path
    shard: tuple[int, int]
    total: int
    done_before: int
    status: Counter = field(default_factory=Counter)
    frames: int = 0
    seconds: float = 0.0
    failures: Failures = field(default_factory=lambda: Failures("utterances", "clips"))
    engine: Engine = field(default_factory=Engine)
    preview: Path | None = None  # frames_preview.png

    def lines(self) -> list[str]:
        return [f"shard {self.shard[0]}/{self.shard[1]}: {self.total} utterances ({self.done_before} done before), "
                f"{self.seconds:.1f} s",
                "utterances by status: " + ", ".join(f"{k} {v}" for k, v in sorted(self.status.items())),
                f"frames kept: {self.frames}", *self.failures.lines(), *self.engine.summary_lines(),
                f"manifests: {self.out / 'manifests'}", *([f"preview: {self.preview}"] if self.preview else [])]

    def check(self, allowed: float = 0.0) -> None:
        """Raise when inputs failed (see ``Failures.check``); call after the summary is printed."""
        self.failures.check(self.total - self.done_before, self.total, allowed)


def read_meta(path: Path) -> dict[str, dict]:
    """VoxCeleb2 ``vox2_meta.csv`` (columns VoxCeleb2 ID, VGGFace2 ID, Gender, Set; padded with spaces)."""
    try:
        df = pd.read_csv(path, dtype=str, skipinitialspace=True)
    except (OSError, pd.errors.ParserError, pd.errors.EmptyDataError) as err:
        raise InputError(f"{path}: cannot read the meta CSV ({str(err).splitlines()[0][:120]})") from None
    df.columns = [c.strip().lower() for c in df.columns]
    need = ["voxceleb2 id", "vggface2 id", "gender", "set"]
    missing = [c for c in need if c not in df.columns]
    if missing:
        raise InputError(f"{path}: missing column {missing[0]!r} (expected {', '.join(need)})")
    return {r["voxceleb2 id"].strip(): {"vggface2_id": str(r["vggface2 id"]).strip(),
                                        "gender": str(r["gender"]).strip(),
                                        "split": str(r["set"]).strip()} for _, r in df.iterrows()}


def discover_utterances(root: Path) -> list[Utterance]:
    if not root.is_dir():
        raise InputError(f"{root}: not a folder (expected <root>/[mp4/]<identity>/<video>/<utterance>.mp4)")
    base = root / "mp4" if (root / "mp4").is_dir() else root
    split = {"dev": "dev", "test": "test"}.get(root.name, "")
    found = []
    for p in sorted(base.glob("*/*/*")):
        if p.suffix.lower() in CLIP_SUFFIXES and p.is_file():
            rel = p.relative_to(base)
            found.append(Utterance(rel.with_suffix("").as_posix(), rel.parts[0], rel.parts[1], p, split))
    if not found:
        raise InputError(f"{base}: no clips found at <identity>/<video>/<utterance>.mp4")
    return found


def sample_indices(num_frames: int, k: int) -> np.ndarray:
    """k evenly spaced frame indices, centred in k equal parts of the clip (distinct when num_frames >= k)."""
    return np.unique(np.floor((np.arange(k) + 0.5) * num_frames / k).astype(np.int64))


def utterance_row(u: Utterance) -> dict:
    """The ``utterances`` row of a clip before anything is known about it."""
    return dict(utterance_id=u.utterance_id, identity=u.identity, video=u.video, path=str(u.path), status="ok",
                error=None, num_frames=0, fps=0.0, frames_kept=0, split=u.split, vggface2_id=None, gender=None)


def process_utterance(u: Utterance, out: Path, cfg: FramesConfig, detector) -> tuple[dict, list[dict]]:
    import decord

    from facekit.align import align_faces, get_template
    from facekit.quality import laplacian_variance

    row = utterance_row(u)
    try:
        reader = decord.VideoReader(str(u.path), ctx=decord.cpu(0))
        n = len(reader)
        if n == 0:
            raise RuntimeError("no frames")
        idx = sample_indices(n, cfg.frames_per_utterance)
        frames = reader.get_batch(list(idx)).asnumpy()
        stamps = reader.get_frame_timestamp(list(idx))[:, 0]
        row.update(num_frames=n, fps=float(reader.get_avg_fps()))
        del reader
    except Exception as err:
        from facekit.video.decode import unreadable_reason

        return {**row, "status": "error", "error": unreadable_reason(Path(u.path), err)}, []
    dets = detector.detect(frames)
    keep, marks, boxes, scores = [], [], [], []
    for i, d in enumerate(dets):
        ok = d.scores >= cfg.min_score
        if not ok.any():
            continue
        wh = d.boxes_xyxy[:, 2:] - d.boxes_xyxy[:, :2]
        k = int(np.argmax(np.where(ok, wh[:, 0] * wh[:, 1], -1)))  # the speaker: the largest confident face
        keep.append(i), marks.append(d.landmarks_5x2[k]), boxes.append(d.boxes_xyxy[k]), scores.append(d.scores[k])
    if not keep:
        return {**row, "status": "no_face"}, []
    crops = align_faces(frames, np.array(keep), np.stack(marks), get_template(cfg.template, cfg.crop_size))
    blur = laplacian_variance(crops)
    rows = []
    for j, i in enumerate(keep):
        rel = f"crops/{u.utterance_id}_{int(idx[i]):06d}.jpg"
        target = out / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(target) as tmp:
            Image.fromarray(crops[j].permute(1, 2, 0).numpy()).save(tmp, format="JPEG", quality=cfg.jpeg_quality)
        b = boxes[j]
        rows.append(dict(utterance_id=u.utterance_id, identity=u.identity, video=u.video, frame_index=int(idx[i]),
                         timestamp_sec=float(stamps[i]), box_x1=float(b[0]), box_y1=float(b[1]), box_x2=float(b[2]),
                         box_y2=float(b[3]), landmarks_5x2=[float(v) for v in marks[j].ravel()],
                         score=float(scores[j]), blur=float(blur[j]), crop_path=rel))
    row["frames_kept"] = len(rows)
    return row, rows


_WORKER: dict = {}


def _detector(cfg: FramesConfig, device: str):
    from facekit.detect import MTCNN

    return MTCNN(device=device, min_face_size=cfg.min_face_size, max_side=1280)


def _init(cfg: FramesConfig, device: str, out: str) -> None:
    from facekit.device import resolve_device

    _WORKER.update(cfg=cfg, out=Path(out), detector=_detector(cfg, str(resolve_device(device))))


def _crashed(u: Utterance, reason: str) -> tuple[dict, list[dict]]:
    return {**utterance_row(u), "status": "error", "error": reason}, []


def _run(u: Utterance):
    return process_utterance(u, _WORKER["out"], _WORKER["cfg"], _WORKER["detector"])


@writer("extract-frames")
def extract_frames(root: Path, out: Path, cfg: FramesConfig = FramesConfig(), meta: Path | None = None,
                   shard: tuple[int, int] = (0, 1), workers: int = 0, device: str = "cpu", flush_every: int = 64,
                   progress: bool = True, engine: Engine | None = None) -> FramesSummary:
    meta_of = read_meta(meta) if meta is not None else {}
    jobs = [u for u in discover_utterances(root) if in_shard(u.utterance_id, shard)]
    tag = f"s{shard[0]:05d}of{shard[1]:05d}"
    out.mkdir(parents=True, exist_ok=True)
    check_run_config(out, asdict(cfg), "frames_config.json")
    done = clean_leftovers(out, tag, commit="utterances", others=("frames",), key="utterance_id")
    todo = [u for u in jobs if u.utterance_id not in done]
    engine = engine or Engine("local", workers)
    summary = FramesSummary(out, shard, len(jobs), len(jobs) - len(todo), engine=engine)
    parts = PartWriter(out, tag, [FRAMES, UTTERANCES])  # utterances last: the commit
    t0 = time.perf_counter()

    results = engine.map(todo, _run, _init, (cfg, device, str(out)), _crashed,
                         ordered=False)  # commit as they finish: a long video holds back no other
    bar = progress_bar(total=len(todo), unit="utt", desc="extract-frames", disable=not progress, dynamic_ncols=True)
    handed = 0  # utterances whose results are in ``parts`` (written or pending)
    try:
        for row, rows in results:
            info = meta_of.get(row["identity"], {})
            row.update(vggface2_id=info.get("vggface2_id"), gender=info.get("gender"),
                       split=info.get("split", row["split"]) or row["split"])
            if row["status"] == "error":  # a worker that died mid-utterance may have written crops
                stem = Path(row["utterance_id"]).name
                for crop in (out / "crops" / row["utterance_id"]).parent.glob(f"{stem}_*.jpg"):
                    crop.unlink()
            parts.add("utterances", [row])
            parts.add("frames", rows)
            summary.failures.now += row["status"] == "error"
            handed += 1
            bar.update(1)
            if parts.pending >= flush_every:
                parts.flush()
        parts.flush()
    except KeyboardInterrupt:
        raise stop_after_commit(parts, summary.done_before, handed, len(jobs), "utterances", shard) from None
    finally:
        bar.close()
        if hasattr(results, "close"):
            results.close()
    summary.seconds = time.perf_counter() - t0
    from facekit.manifests.lineage import write_lineage

    write_lineage(out, "extract-frames", {"root": str(root), "meta": str(meta) if meta else None, **asdict(cfg)})
    files = sorted(table_dir(out, "utterances").glob(f"{tag}-*.parquet"))
    if files:
        utts = pd.concat([read_manifest(f, "utterances", columns=["path", "status", "error", "frames_kept"])
                          for f in files])
        summary.status = Counter(utts["status"].tolist())
        summary.frames = int(utts["frames_kept"].sum())
        summary.failures.read(utts)
    if summary.frames:
        summary.preview = sequence_grid(read_manifest(out, "frames", columns=["utterance_id", "crop_path"]), out,
                                        out / "frames_preview.png", group="utterance_id")
    return summary
