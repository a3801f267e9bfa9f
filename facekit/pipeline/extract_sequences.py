"""``facekit extract-sequences``: a corpus of videos -> crops + ``videos``/``sequences``/``faces`` manifests.

Scale and faults:
- sharding: video ``v`` belongs to shard ``i`` of ``n`` when ``sha1(video_id) % n == i``, so machines split a corpus
  with no coordination;
- resume: results are flushed every ``flush_every`` videos as part files (faces and sequences first, ``videos``
  last, each atomic); a video is done when its ``videos`` row exists. Parts without their ``videos`` part are
  leftovers of a killed run and are deleted on resume; their videos are redone from scratch;
- bad inputs become ``videos`` rows with status ``error`` and a reason, never a crash.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from facekit.engine.failures import Failures, stop_after_commit
from facekit.engine.local import Engine
from facekit.errors import InputError
from facekit.fsutil import jsonable, write_json
from facekit.manifests.compact import writer
from facekit.manifests.io import PartWriter, read_manifest, table_dir
from facekit.manifests.schemas import DROP_REASONS, FACES, SEQUENCES, VIDEOS
from facekit.pipeline.config import ExtractConfig
from facekit.progress import progress_bar
from facekit.provenance import __version__
from facekit.report.grids import sequence_grid
from facekit.video.decode import VIDEO_EXTENSIONS

RUN_CONFIG = "extract_config.json"


@dataclass(frozen=True)
class VideoJob:
    path: str
    video_id: str


@dataclass
class RunSummary:
    out: Path
    shard: tuple[int, int]
    videos_total: int  # in this shard
    videos_done_before: int  # skipped because a previous run finished them
    videos_processed: int
    status: Counter = field(default_factory=Counter)
    sequences: int = 0
    faces: int = 0
    dropped: Counter = field(default_factory=Counter)
    frames: int = 0
    seconds: float = 0.0
    failures: Failures = field(default_factory=lambda: Failures("videos", "videos"))
    engine: Engine = field(default_factory=Engine)
    preview: Path | None = None  # sequences_preview.png: first, middle and last face of some sequences

    def lines(self) -> list[str]:
        fps = self.frames / self.seconds if self.seconds > 0 else 0.0
        drops = ", ".join(f"{r} {self.dropped[r]}" for r in DROP_REASONS if self.dropped[r]) or "none"
        status = ", ".join(f"{k} {v}" for k, v in sorted(self.status.items())) or "none"
        return [
            f"shard {self.shard[0]}/{self.shard[1]}: {self.videos_total} videos ({self.videos_done_before} done "
            f"before, {self.videos_processed} processed now, {self.frames} frames in {self.seconds:.1f} s, "
            f"{fps:.1f} frames/s)",
            f"videos by status: {status}",
            f"kept: {self.sequences} sequences, {self.faces} faces; dropped faces: {drops}",
            *self.failures.lines(),
            *self.engine.summary_lines(),
            f"manifests: {self.out / 'manifests'}",
            *([f"preview: {self.preview}"] if self.preview else []),
        ]

    def check(self, allowed: float = 0.0) -> None:
        """Raise when inputs failed (see ``Failures.check``); call after the summary is printed."""
        self.failures.check(self.videos_processed, self.videos_total, allowed)


def parse_shard(text: str) -> tuple[int, int]:
    """``"i/n"`` -> (i, n) with 0 <= i < n."""
    try:
        i, n = (int(x) for x in text.split("/"))
    except ValueError:
        raise InputError(f"--shard {text!r}: expected i/n, e.g. 0/4") from None
    if n < 1 or not 0 <= i < n:
        raise InputError(f"--shard {text!r}: need 0 <= i < n")
    return i, n


def in_shard(video_id: str, shard: tuple[int, int]) -> bool:
    digest = hashlib.sha1(video_id.encode()).digest()
    return int.from_bytes(digest[:8], "big") % shard[1] == shard[0]


def discover_videos(inputs: list[Path]) -> list[VideoJob]:
    """Video files named or found (recursively) under folders; a ``.txt`` input lists one path per line.

    ``video_id`` is the path relative to the folder it was found in (or the file stem), without extension.
    """
    jobs: list[VideoJob] = []
    for item in inputs:
        item = Path(item)
        if item.is_dir():
            for p in sorted(item.rglob("*")):
                if p.suffix.lower() in VIDEO_EXTENSIONS and p.is_file():
                    jobs.append(VideoJob(str(p), p.relative_to(item).with_suffix("").as_posix()))
        elif item.suffix == ".txt" and item.is_file():
            for n, line in enumerate(item.read_text().splitlines(), 1):
                if line.strip() and not line.startswith("#"):
                    p = Path(line.strip())
                    p = p if p.is_absolute() else item.parent / p
                    jobs.append(VideoJob(str(p), p.with_suffix("").name))
        elif item.is_file():
            jobs.append(VideoJob(str(item), item.with_suffix("").name))  # any file: not-a-video is recorded
        else:
            raise InputError(f"{item}: no such file or folder")
    seen: dict[str, str] = {}
    for job in jobs:
        if job.video_id in seen:
            raise InputError(f"{job.path}: video id '{job.video_id}' is also used by {seen[job.video_id]}; "
                             "give the videos under one folder so ids are relative paths")
        seen[job.video_id] = job.path
    return jobs


def check_run_config(out: Path, config: dict, name: str = RUN_CONFIG) -> None:
    """The first run into ``out`` saves its settings as ``out/name``; a rerun (resume) must bring the same ones, so
    a root never mixes outputs made two ways."""
    saved = out / name
    if saved.exists():
        try:
            previous = json.loads(saved.read_text())["config"]
        except (ValueError, KeyError):
            raise InputError(f"{saved}: unreadable run config; remove it or use a new --out") from None
        if previous != jsonable(config):
            raise InputError(f"{out}: made with other settings (see {saved}); use a new --out, or the same settings")
    else:
        write_json(saved, {"facekit_version": __version__, "config": jsonable(config)})


def clean_leftovers(out: Path, shard_tag: str, commit: str = "videos", others: tuple[str, ...] = ("faces", "sequences"),
                    key: str = "video_id") -> set[str]:
    """Delete part files of this shard that have no ``commit`` part (the table written last); return the ``key``
    values already committed."""
    cdir = table_dir(out, commit)
    committed = {p.stem for p in cdir.glob(f"{shard_tag}-*.parquet")} if cdir.is_dir() else set()
    for table in others:
        tdir = table_dir(out, table)
        for p in tdir.glob(f"{shard_tag}-*.parquet") if tdir.is_dir() else []:
            if p.stem not in committed:
                p.unlink()
    for tdir in (table_dir(out, t) for t in (commit, *others)):
        for tmp in tdir.glob(".*.tmp") if tdir.is_dir() else []:
            tmp.unlink()
    if not committed:
        return set()
    return set(pd.concat([read_manifest(p, commit,
                                        columns=[key]) for p in sorted(cdir.glob(f"{shard_tag}-*.parquet"))])[key])


# -- workers --------------------------------------------------------------------------------------------------------
_WORKER: dict = {}


def _make_detector(cfg: ExtractConfig, device: str):
    from facekit.detect.mtcnn import MTCNN

    return MTCNN(device=device, min_face_size=cfg.min_face_size, thresholds=cfg.thresholds,
                 max_side=cfg.detect_max_side)


def _worker_init(cfg: ExtractConfig, device: str, out: str) -> None:
    from facekit.device import resolve_device

    _WORKER.update(cfg=cfg, out=Path(out), detector=_make_detector(cfg, str(resolve_device(device))))


def _crashed(job: VideoJob, reason: str):
    from facekit.pipeline.video_sequences import VideoResult, empty_video_row

    return VideoResult({**empty_video_row(job.video_id, str(job.path)), "status": "error", "error": reason}, [], [])


def _worker_run(job: VideoJob):
    from facekit.pipeline.video_sequences import process_video

    if not _WORKER.get("frame_bar"):
        return process_video(job.path, job.video_id, _WORKER["out"], _WORKER["cfg"], _WORKER["detector"])
    # in this process: a second bar counts the frames of the video at hand, so a long video shows progress
    with progress_bar(unit="frame", desc=job.video_id[-24:], leave=False, position=1, dynamic_ncols=True) as bar:
        return process_video(job.path, job.video_id, _WORKER["out"], _WORKER["cfg"], _WORKER["detector"], bar)


@writer("extract-sequences")
def extract_sequences(inputs: list[Path], out: Path, cfg: ExtractConfig = ExtractConfig(),
                      shard: tuple[int, int] = (0, 1), workers: int = 0, device: str = "cpu",
                      flush_every: int = 8, progress: bool = True, engine: Engine | None = None) -> RunSummary:
    """Run (or resume) extraction of every video of ``inputs`` that falls in ``shard`` into ``out``, on
    ``engine`` (default: the local engine with ``workers`` processes)."""

    out = Path(out)
    found = discover_videos(inputs)
    if not found:
        raise InputError(f"{', '.join(map(str, inputs))}: no videos found (extensions: "
                         f"{', '.join(sorted(VIDEO_EXTENSIONS))})")
    jobs = [j for j in found if in_shard(j.video_id, shard)]
    out.mkdir(parents=True, exist_ok=True)
    check_run_config(out, cfg.to_dict())
    shard_tag = f"s{shard[0]:05d}of{shard[1]:05d}"
    done = clean_leftovers(out, shard_tag)
    todo = [j for j in jobs if j.video_id not in done]
    engine = engine or Engine("local", workers)
    summary = RunSummary(out, shard, len(jobs), len(jobs) - len(todo), len(todo), engine=engine)
    parts = PartWriter(out, shard_tag, [FACES, SEQUENCES, VIDEOS])  # videos last: the commit
    start = time.perf_counter()
    results = engine.map(todo, _worker_run, _worker_init, (cfg, device, str(out)), _crashed,
                         ordered=False)  # commit as they finish: a long video holds back no other
    _WORKER["frame_bar"] = progress  # read only when the jobs run in this process (workers have their own dict)
    bar = progress_bar(total=len(todo), unit="video", desc="extract-sequences", disable=not progress,
                       dynamic_ncols=True)
    handed = 0  # videos whose results are in ``parts`` (written or pending)
    try:
        for res in results:
            if res.video["status"] == "error":  # a worker that died mid-video left crops: no rows, no crops
                shutil.rmtree(out / "crops" / res.video["video_id"], ignore_errors=True)
            parts.add("videos", [res.video])
            parts.add("sequences", res.sequences)
            parts.add("faces", res.faces)
            summary.frames += res.video["num_frames"]
            summary.faces += len(res.faces)
            summary.failures.now += res.video["status"] == "error"
            handed += 1
            bar.update(1)
            bar.set_postfix(faces=summary.faces, refresh=False)
            if parts.pending >= flush_every:
                parts.flush()
        parts.flush()
    except KeyboardInterrupt:
        raise stop_after_commit(parts, summary.videos_done_before, handed, len(jobs), "videos", shard) from None
    finally:
        bar.close()
        if hasattr(results, "close"):
            results.close()
    summary.seconds = time.perf_counter() - start
    from facekit.manifests.lineage import write_lineage

    write_lineage(out, "extract-sequences", jsonable(cfg.to_dict()))
    _fill_totals(summary, out, shard_tag)
    if summary.faces:
        summary.preview = sequence_grid(read_manifest(out, "faces", columns=["sequence_id", "crop_path"]), out,
                                        out / "sequences_preview.png")
    return summary


def _fill_totals(summary: RunSummary, out: Path, shard_tag: str) -> None:
    """Totals over every finished video of this shard, including those of earlier (resumed) runs."""
    files = sorted(table_dir(out, "videos").glob(f"{shard_tag}-*.parquet"))
    if not files:
        return
    videos = pd.concat([read_manifest(f, "videos") for f in files])
    summary.status = Counter(videos["status"].tolist())
    summary.sequences = int(videos["num_sequences"].sum())
    summary.faces = int(videos["num_faces"].sum())
    summary.dropped = Counter({r: int(videos[f"dropped_{r}"].sum()) for r in DROP_REASONS})
    summary.failures.read(videos)
