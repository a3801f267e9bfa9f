"""Manifest schemas, defined once. Each table is versioned; the version is stored in every Parquet file's metadata.

A manifest table ``T`` under an output root is the folder ``<root>/manifests/T/`` of Parquet part files
(``*.parquet``), each written atomically. Readers take all parts; DuckDB sees the table as one view named ``T``.
``manifests/README.md`` is generated from this module (``facekit manifest schema --markdown``).
"""

from __future__ import annotations

from dataclasses import dataclass

import pyarrow as pa


@dataclass(frozen=True)
class Column:
    name: str
    type: pa.DataType
    doc: str
    nullable: bool = False


@dataclass(frozen=True)
class TableSchema:
    name: str
    version: int
    doc: str
    columns: tuple[Column, ...]

    @property
    def arrow(self) -> pa.Schema:
        fields = [pa.field(c.name, c.type, nullable=c.nullable) for c in self.columns]
        return pa.schema(fields, metadata={b"facekit.table": self.name.encode(),
                                           b"facekit.schema_version": str(self.version).encode()})

    def markdown(self) -> str:
        rows = [f"### `{self.name}` (schema version {self.version})", "", self.doc, "",
                "| column | type | meaning |", "|---|---|---|"]
        rows += [f"| `{c.name}` | `{c.type}`{' (nullable)' if c.nullable else ''} | {c.doc} |" for c in self.columns]
        return "\n".join(rows) + "\n"


DROP_REASONS: tuple[str, ...] = ("score", "size", "blur", "pose", "duplicate", "short_sequence")

VIDEOS = TableSchema("videos", 1, "One row per input video, whatever happened to it.", (
    Column("video_id", pa.string(), "input path relative to its input root, without extension"),
    Column("path", pa.string(), "path of the video as given on the command line"),
    Column("status", pa.string(), "`ok` (sequences found), `no_faces`, `error` (unreadable; see `error`) or "
        "`skipped_vfr`"),
    Column("error", pa.string(), "one-line reason when status is `error`/`skipped_vfr`", nullable=True),
    Column("num_frames", pa.int64(), "decoded frame count (0 when unreadable)"),
    Column("fps", pa.float64(), "average frame rate reported by the container"),
    Column("duration_sec", pa.float64(), "duration from frame timestamps"),
    Column("width", pa.int32(), "frame width, px"),
    Column("height", pa.int32(), "frame height, px"),
    Column("vfr", pa.bool_(), "variable frame rate (frame intervals vary by more than 5%); timestamps are then exact "
        "pts"),
    Column("num_sequences", pa.int32(), "sequences kept"),
    Column("num_faces", pa.int64(), "faces kept"),
    Column("num_detections", pa.int64(), "faces seen (detected or tracked) before filtering"),
    *(Column(f"dropped_{r}", pa.int64(), f"faces dropped by the `{r}` filter") for r in DROP_REASONS),
    Column("num_shots", pa.int32(), "shots found (cuts + 1)"),
))

SEQUENCES = TableSchema("sequences", 1, "One row per kept face sequence (one tracked person inside one shot).", (
    Column("sequence_id", pa.string(), "`<video_id>#<n>`, n counting kept sequences of the video from 0"),
    Column("video_id", pa.string(), "joins `videos.video_id`"),
    Column("shot_index", pa.int32(), "shot of the video the sequence lies in (0-based)"),
    Column("first_frame", pa.int64(), "frame index of its first kept face"),
    Column("last_frame", pa.int64(), "frame index of its last kept face"),
    Column("first_sec", pa.float64(), "timestamp of the first kept face"),
    Column("last_sec", pa.float64(), "timestamp of the last kept face"),
    Column("num_faces", pa.int32(), "kept faces"),
    Column("mean_score", pa.float32(), "mean detection score"),
    Column("mean_blur", pa.float32(), "mean Laplacian variance (higher is sharper)"),
    Column("min_blur", pa.float32(), "lowest Laplacian variance"),
    Column("mean_face_px", pa.float32(), "mean detected box side, px"),
    Column("mean_abs_yaw", pa.float32(), "mean |yaw proxy| (0 frontal)"),
))

FACES = TableSchema("faces", 1, "One row per kept face. Crops are files under the output root.", (
    Column("sequence_id", pa.string(), "joins `sequences.sequence_id`"),
    Column("video_id", pa.string(), "joins `videos.video_id`"),
    Column("frame_index", pa.int64(), "0-based decoded frame index"),
    Column("timestamp_sec", pa.float64(), "presentation time of the frame"),
    Column("box_x1", pa.float32(), "detected (or tracked) box, px, xyxy"),
    Column("box_y1", pa.float32(), ""),
    Column("box_x2", pa.float32(), ""),
    Column("box_y2", pa.float32(), ""),
    Column("landmarks_5x2", pa.list_(pa.float32(), 10),
           "x0,y0,...,x4,y4 in frame px: left eye, right eye, nose, left mouth, right mouth"),
    Column("score", pa.float32(), "MTCNN O-Net face probability"),
    Column("blur", pa.float32(), "Laplacian variance of the aligned grey crop"),
    Column("yaw", pa.float32(), "pose proxy from landmarks (nose offset in eye distances)"),
    Column("roll_deg", pa.float32(), "eye-line angle"),
    Column("tracked", pa.bool_(), "True when found by O-Net around the tracked box between full detector runs "
           "(`--detect-every` > 1), False when found by the full detector"),
    Column("crop_path", pa.string(), "aligned crop, relative to the output root"),
))

IDENTITIES = TableSchema("identities", 1, "One row per source image of an identity dataset (a folder per person), "
                        "whatever happened to it; training uses the rows with status `ok`.", (
    Column("identity", pa.string(), "person: the image's folder name"),
    Column("class_index", pa.int32(), "0..C-1, the rank of `identity` among all folder names (stable across runs)"),
    Column("source_path", pa.string(), "image path relative to the input root"),
    Column("status", pa.string(), "`ok`, `no_face` (nothing detected) or `error` (unreadable; see `error`)"),
    Column("error", pa.string(), "one-line reason when status is `error`", nullable=True),
    Column("num_faces", pa.int32(), "faces detected in the image (the largest is kept; 0 with `--aligned`)"),
    Column("score", pa.float32(), "detection score of the kept face (null with `--aligned`)", nullable=True),
    Column("face_px", pa.float32(), "side of the kept face's box, px (null with `--aligned`)", nullable=True),
    Column("blur", pa.float32(), "Laplacian variance of the aligned grey crop (null without a crop)", nullable=True),
    Column("crop_path", pa.string(), "aligned crop relative to the output root (null unless status is `ok`)",
           nullable=True),
))

UTTERANCES = TableSchema("utterances", 1, "One row per input clip of `facekit extract-frames` (VoxCeleb2 layout "
                        "`<root>/[mp4/]<identity>/<video>/<utterance>.mp4`), whatever happened to it.", (
    Column("utterance_id", pa.string(), "`<identity>/<video>/<utterance>`"),
    Column("identity", pa.string(), "person folder, e.g. id00012"),
    Column("video", pa.string(), "source video folder (YouTube id)"),
    Column("path", pa.string(), "clip path as found under the input root"),
    Column("status", pa.string(), "`ok` (frames kept), `no_face` or `error` (unreadable; see `error`)"),
    Column("error", pa.string(), "one-line reason when status is `error`", nullable=True),
    Column("num_frames", pa.int64(), "frames in the clip (0 when unreadable)"),
    Column("fps", pa.float64(), "average frame rate"),
    Column("frames_kept", pa.int32(), "sampled frames with a face"),
    Column("split", pa.string(), "`dev`/`test` from the meta CSV or the path, else empty"),
    Column("vggface2_id", pa.string(), "from the VoxCeleb2 meta CSV when given", nullable=True),
    Column("gender", pa.string(), "from the VoxCeleb2 meta CSV when given", nullable=True),
))

FRAMES = TableSchema("frames", 1, "One row per kept frame of `facekit extract-frames` (k evenly spaced frames per "
                     "utterance, the largest face of each, aligned).", (
    Column("utterance_id", pa.string(), "joins `utterances.utterance_id`"),
    Column("identity", pa.string(), "person"),
    Column("video", pa.string(), "source video: sets are drawn from one video, positives from another"),
    Column("frame_index", pa.int64(), "0-based frame index in the clip"),
    Column("timestamp_sec", pa.float64(), "presentation time of the frame"),
    Column("box_x1", pa.float32(), "detected box, px, xyxy"),
    Column("box_y1", pa.float32(), ""),
    Column("box_x2", pa.float32(), ""),
    Column("box_y2", pa.float32(), ""),
    Column("landmarks_5x2", pa.list_(pa.float32(), 10), "x0,y0,...,x4,y4 in frame px (facekit landmark order)"),
    Column("score", pa.float32(), "MTCNN face probability"),
    Column("blur", pa.float32(), "Laplacian variance of the aligned grey crop"),
    Column("crop_path", pa.string(), "aligned crop, relative to the output root"),
))

AGGREGATES = TableSchema("aggregates", 1, "One row per set fused by `facekit aggregate`: the aggregated face and "
                         "its feature.", (
    Column("group", pa.string(), "the set: a folder name, or the value(s) of the grouping column(s) joined by '/'"),
    Column("num_inputs", pa.int32(), "faces in the set"),
    Column("used_inputs", pa.int32(), "faces fed to the aggregator (sets above --max-set are subsampled evenly)"),
    Column("image_path", pa.string(), "aggregated face (PNG), relative to the output root"),
    Column("feature", pa.list_(pa.float32()), "the extractor's feature of the aggregated face (not normalised); "
           "null with --no-features", nullable=True),
    Column("extractor", pa.string(), "feature extractor spec", nullable=True),
))

SEQUENCE_CLUSTERS = TableSchema("sequence_clusters", 1, "Written by `facekit curate clusters`: sequences that look "
                                "like one person (SeqFace allows several sequences per person, but they must be "
                                    "known).", (
    Column("sequence_id", pa.string(), "joins `sequences.sequence_id`"),
    Column("cluster", pa.int64(), "cluster label; sequences sharing it look like one person"),
    Column("cluster_size", pa.int32(), "sequences in the cluster"),
    Column("model", pa.string(), "feature extractor (name-fingerprint) the clustering used"),
))

REVIEW = TableSchema("review", 1, "Written by `facekit view`: a person's marks on a root's items, one part file per "
                     "mark (`review-<UTC>-<pid>-<n>`), never touched by the commands that made the root. The latest "
                     "mark of an item decides; `facekit curate review` writes a root without the rejected ones.", (
    Column("item_kind", pa.string(), "`sequence`, `identity`, `utterance` or `face`"),
    Column("item_id", pa.string(), "`sequence_id`, `identity`, `utterance_id`, or a face's `crop_path`"),
    Column("decision", pa.string(), "`rejected`, or `restored` (takes an earlier rejection back)"),
    Column("reason", pa.string(), "free text given with the mark", nullable=True),
    Column("reviewer", pa.string(), "who marked it (`--reviewer`, default user@host)"),
    Column("marked_utc", pa.string(), "when, ISO 8601 UTC with microseconds"),
))

SCHEMAS: dict[str, TableSchema] = {s.name: s for s in (VIDEOS, SEQUENCES, FACES, IDENTITIES, UTTERANCES, FRAMES,
                                                        AGGREGATES, SEQUENCE_CLUSTERS, REVIEW)}


def register(schema: TableSchema) -> TableSchema:
    """Add a table schema (later stages register theirs); names are unique."""
    if schema.name in SCHEMAS and SCHEMAS[schema.name] != schema:
        raise ValueError(f"manifest table {schema.name!r} is already defined")
    SCHEMAS[schema.name] = schema
    return schema
