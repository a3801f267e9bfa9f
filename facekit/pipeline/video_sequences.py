"""One video -> face sequences: decode, cut into shots, detect, track, align, filter, write crops.

Streaming: frames are decoded ``batch_frames`` at a time and nothing else is held. Tracks end at shot cuts and
after ``max_gap`` frames unseen.
"""

from __future__ import annotations

import io
import shutil
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from facekit.align import align_faces, get_template
from facekit.detect.mtcnn import MTCNN, Detections
from facekit.errors import VideoError
from facekit.manifests.schemas import DROP_REASONS
from facekit.memory import release_free_memory
from facekit.pipeline.batches import detected_ahead, key_interval, sample_rate
from facekit.pipeline.config import ExtractConfig
from facekit.pipeline.stages import CLOCK
from facekit.pipeline.tracked import Observation, backfill, tracked_run
from facekit.quality import duplicate_signature, laplacian_variance, pose_proxy
from facekit.track.tracker import FaceTracker
from facekit.video.decode import VideoStream
from facekit.video.prefetch import prefetch
from facekit.video.shots import ShotCutDetector


@dataclass
class VideoResult:
    video: dict
    sequences: list[dict]
    faces: list[dict]


@dataclass
class _Sequence:
    shot_index: int
    rows: list[dict] = field(default_factory=list)
    pending_jpegs: list[tuple[str, bytes]] = field(default_factory=list)  # held until min length is reached
    number: int | None = None  # assigned when the sequence reaches the minimum length
    last_signature: np.ndarray | None = None


class _SequenceWriter:
    """Filters observations, groups them by track, writes crops of sequences that reach the minimum length."""

    def __init__(self, root: Path, video_id: str, cfg: ExtractConfig, device: torch.device) -> None:
        self.root, self.video_id, self.cfg, self.device = root, video_id, cfg, device
        self.template = get_template(cfg.template, cfg.crop_size)
        self.open: dict[int, _Sequence] = {}
        self.sequences: list[dict] = []
        self.faces: list[dict] = []
        self.dropped: Counter = Counter()
        self.seen = 0

    def add(self, observations: list[Observation], frames: list[np.ndarray]) -> None:
        if not observations:
            return
        self.seen += len(observations)
        f = self.cfg.filters
        sides = [float(min(o.box_xyxy[2] - o.box_xyxy[0], o.box_xyxy[3] - o.box_xyxy[1])) for o in observations]
        # faces the score or size filter drops are never aligned; slot[i]: face i's crop
        aligned = [i for i, o in enumerate(observations) if o.score >= f.min_score and sides[i] >= f.min_face_px]
        slot = np.zeros(len(observations), np.int64)
        slot[aligned] = np.arange(len(aligned))
        marks = np.stack([o.landmarks_5x2 for o in observations])
        with CLOCK("alignment"):
            crops = align_faces(frames, np.array([observations[i].slot for i in aligned], np.int64), marks[aligned],
                                self.template, self.device)
        with CLOCK("filters"):
            blur = laplacian_variance(crops)
            sigs = duplicate_signature(crops)
            pose = pose_proxy(marks)
        for i, o in enumerate(observations):
            side, c = sides[i], slot[i]
            seq = self.open.setdefault(o.track_id, _Sequence(o.shot_index))
            reason = None
            if o.score < f.min_score:
                reason = "score"
            elif side < f.min_face_px:
                reason = "size"
            elif blur[c] < f.min_blur:
                reason = "blur"
            elif abs(pose.yaw[i]) > f.max_abs_yaw:
                reason = "pose"
            elif seq.last_signature is not None and np.abs(sigs[c] - seq.last_signature).mean() < f.duplicate_threshold:
                reason = "duplicate"
            if reason:
                self.dropped[reason] += 1
                continue
            seq.last_signature = sigs[c]
            row = {
                "video_id": self.video_id, "frame_index": o.frame_index, "timestamp_sec": o.timestamp_sec,
                "box_x1": o.box_xyxy[0], "box_y1": o.box_xyxy[1], "box_x2": o.box_xyxy[2], "box_y2": o.box_xyxy[3],
                "landmarks_5x2": o.landmarks_5x2.reshape(-1).astype(np.float32).tolist(), "score": o.score,
                "blur": float(blur[c]), "yaw": float(pose.yaw[i]), "roll_deg": float(pose.roll_deg[i]),
                "tracked": o.tracked, "_side": side,
            }
            seq.rows.append(row)
            with CLOCK("writing"):
                self._store_crop(seq, row, crops[c])

    def _store_crop(self, seq: _Sequence, row: dict, crop_3hw: torch.Tensor) -> None:
        buf = io.BytesIO()
        Image.fromarray(crop_3hw.permute(1, 2, 0).numpy()).save(buf, format="JPEG", quality=self.cfg.jpeg_quality)
        seq.pending_jpegs.append((f"{row['frame_index']:06d}.jpg", buf.getvalue()))
        if seq.number is None and len(seq.rows) >= self.cfg.filters.min_sequence_length:
            seq.number = len(self.sequences) + sum(1 for s in self.open.values() if s.number is not None)
        if seq.number is not None:
            folder = self.root / "crops" / self.video_id / f"{seq.number:04d}"
            folder.mkdir(parents=True, exist_ok=True)
            for name, data in seq.pending_jpegs:
                (folder / name).write_bytes(data)
            seq.pending_jpegs.clear()

    def close(self, track_ids: list[int]) -> None:
        for tid in track_ids:
            seq = self.open.pop(tid, None)
            if seq is None or not seq.rows:
                continue
            if seq.number is None:
                self.dropped["short_sequence"] += len(seq.rows)
                continue
            sid = f"{self.video_id}#{seq.number}"
            for r in seq.rows:
                r["sequence_id"] = sid
                r["crop_path"] = f"crops/{self.video_id}/{seq.number:04d}/{r['frame_index']:06d}.jpg"
            self.sequences.append({
                "sequence_id": sid, "video_id": self.video_id, "shot_index": seq.shot_index,
                "first_frame": seq.rows[0]["frame_index"], "last_frame": seq.rows[-1]["frame_index"],
                "first_sec": seq.rows[0]["timestamp_sec"], "last_sec": seq.rows[-1]["timestamp_sec"],
                "num_faces": len(seq.rows),
                "mean_score": float(np.mean([r["score"] for r in seq.rows])),
                "mean_blur": float(np.mean([r["blur"] for r in seq.rows])),
                "min_blur": float(np.min([r["blur"] for r in seq.rows])),
                "mean_face_px": float(np.mean([r.pop("_side") for r in seq.rows])),
                "mean_abs_yaw": float(np.mean([abs(r["yaw"]) for r in seq.rows])),
            })
            self.faces.extend(seq.rows)


def empty_video_row(video_id: str, path: str) -> dict:
    row = {"video_id": video_id, "path": path, "status": "error", "error": None, "num_frames": 0, "fps": 0.0,
           "duration_sec": 0.0, "width": 0, "height": 0, "vfr": False, "num_sequences": 0, "num_faces": 0,
           "num_detections": 0, "num_shots": 0}
    row.update({f"dropped_{r}": 0 for r in DROP_REASONS})
    return row


def process_video(path: str | Path, video_id: str, root: Path, cfg: ExtractConfig, detector: MTCNN,
                  progress=None) -> VideoResult:
    """Extract the face sequences of one video. Never raises for a bad video: the ``videos`` row says why.
    ``progress``: a tqdm bar that counts the video's frames (its total is set once the video is opened)."""
    row = empty_video_row(video_id, str(path))
    crop_dir = root / "crops" / video_id
    shutil.rmtree(crop_dir, ignore_errors=True)  # a rerun starts the video clean
    try:
        stream = VideoStream(path)
        info = stream.info
        row.update(num_frames=info.num_frames, fps=info.fps, duration_sec=info.duration_sec, width=info.width,
                   height=info.height, vfr=info.vfr)
        if info.vfr and cfg.skip_vfr:
            row.update(status="skipped_vfr", error="variable frame rate (--skip-vfr)")
            return VideoResult(row, [], [])
        writer = _SequenceWriter(root, video_id, cfg, detector.device)
        if progress is not None:
            progress.reset(total=info.num_frames)
        threads = torch.get_num_threads()
        torch.set_num_threads(max(1, threads // 2))  # two busy threads (detection a batch ahead, tracking): half each
        try:
            shots = _run(stream, cfg, detector, writer, progress)
        finally:
            torch.set_num_threads(threads)
    except VideoError as err:
        shutil.rmtree(crop_dir, ignore_errors=True)
        row.update(status="error", error=str(err), num_sequences=0, num_faces=0)
        return VideoResult(row, [], [])
    row.update(status="ok" if writer.sequences else "no_faces", num_sequences=len(writer.sequences),
               num_faces=len(writer.faces), num_detections=writer.seen, num_shots=shots)
    row.update({f"dropped_{r}": int(writer.dropped[r]) for r in DROP_REASONS})
    return VideoResult(row, writer.sequences, writer.faces)


def _run(stream: VideoStream, cfg: ExtractConfig, detector: MTCNN, writer: _SequenceWriter, progress) -> int:
    """Full MTCNN on every ``detect_every``-th frame of a shot (batched); in between, O-Net alone re-finds each
    tracked face around the box the tracker predicts. A face first found at a full detection is also followed
    backwards (O-Net, frame by frame, within its shot, up to the previous full detection), so sequences that
    start between two detector runs are as long as with the detector on every frame."""
    cuts = ShotCutDetector(cfg.shot_threshold)
    tracker = FaceTracker(cfg.tracker)
    k = key_interval(cfg, stream.info.fps)
    shot_index, shot_start = -1, 0
    prev: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None  # the previous decoded batch, for backfilling
    pool_orig_prev, passed = np.zeros(0, np.int64), 0
    # ``index`` counts the frames used (all, or ``fps`` per second of video time): the tracker, the detector's
    # rhythm and the backfill work on it; ``orig`` is the video's own frame index, written to the manifests
    decoded = CLOCK.timed_iter(prefetch(sample_rate(stream.batches(cfg.batch_frames), cfg.fps)), "decode")
    batches = detected_ahead(decoded, cuts, detector, k)
    if not CLOCK.enabled:  # the next batch's full detections run while this batch is tracked, aligned, written
        batches = prefetch(batches)
    for number, (index, orig, frames, stamps, is_cut, key, found) in enumerate(batches):
        dets = iter(found)
        # frames addressable by slot: the previous batch, then this one (views, no copies)
        pool = ([*prev[1]] if prev is not None else []) + [*frames]
        first = int(index[0]) - (len(prev[0]) if prev is not None else 0)  # frame index of pool[0]
        pool_stamps = np.concatenate([prev[2], stamps]) if prev is not None else stamps
        pool_orig = np.concatenate([pool_orig_prev, orig])
        observations: list[Observation] = []
        ended: list[int] = []

        def observe(j: int, d: Detections, tracked: bool) -> None:
            """Frame ``j``'s faces to the tracker; a face a full detection finds for the first time is also
            followed backwards to where it appeared (since the last full detection, within the shot)."""
            f, known = int(index[j]), set(tracker.active_ids)
            ids, gone = tracker.update(f, d.boxes_xyxy, d.landmarks_5x2)
            ended.extend(gone)
            for n, tid in enumerate(ids):
                observations.append(Observation(tid, f, float(stamps[j]), f - first, d.boxes_xyxy[n],
                                                d.landmarks_5x2[n], float(d.scores[n]), tracked, shot_index))
                if not tracked and tid not in known and f > shot_start:
                    lowest = max(shot_start, f - k + 1, first)
                    observations.extend(backfill(detector, cfg, pool, pool_stamps, first, lowest, observations[-1]))

        j = 0
        while j < len(index):
            if is_cut[j]:
                ended += tracker.end_all()
                shot_index, shot_start = shot_index + 1, int(index[j])
            with CLOCK("tracking"):
                if key[j]:
                    observe(j, next(dets), tracked=False)
                else:  # a run of frames between full detections: O-Net on all their tracked boxes at once
                    for j, d in tracked_run(tracker, detector, cfg, frames, index, key, j):
                        observe(j, d, tracked=True)
            j += 1
        for o in observations:  # the manifests name the video's own frames
            o.frame_index = int(pool_orig[o.slot])
        # one batched alignment per decoded batch; track ids are never reused, so closing after adding is safe
        observations.sort(key=lambda o: (o.track_id, o.frame_index))
        writer.add(observations, pool)
        writer.close(ended)
        prev, pool_orig_prev = (index, frames, stamps), orig
        if number % 4 == 3:  # every 4th batch: a trim takes milliseconds while the detection thread allocates
            release_free_memory()
        if progress is not None:
            progress.update(int(orig[-1]) + 1 - passed)  # video frames passed, used or not
        passed = int(orig[-1]) + 1
    writer.close(tracker.end_all())
    if progress is not None and passed < stream.info.num_frames:  # frames after the last one used
        progress.update(stream.info.num_frames - passed)
    return shot_index + 1
