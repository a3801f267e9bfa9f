"""Training data from manifests: identity images (labels 0..C-1) and sequence faces (labels -1..-S), mixed in
every batch (SeqFace section 4; the reference reads 32 identity + 32 sequence images per batch).

Every batch is a pure function of (seed, step): each source is read in epochs, each epoch a seeded permutation,
and each sample's augmentation is seeded by its position in the stream. So a resumed run continues exactly, and
K DDP ranks, each taking its share of the global batch, see the same samples as one process would.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch.utils.data import Dataset

from facekit.datasets.crops import CropFiles, PackedCrops, crop_store
from facekit.errors import InputError
from facekit.images import to_chw
from facekit.manifests.io import read_manifest, table_files
from facekit.provenance import fingerprint_files
from facekit.recordio import FaceRecords, is_recordio, read_face_records
from facekit.train.seqface_config import DataConfig
from facekit.train.streams import EpochStream, sample_seed

IDENTITY, SEQUENCE = 0, 1


@dataclass
class Source:
    images: CropFiles | PackedCrops | FaceRecords  # len() and load(i, size): crop files, packed shards or a .rec
    labels: np.ndarray  # (n,) int64: class index (identities) or -(sequence index + 1) (sequences)


@dataclass
class TrainingData:
    identities: Source | None
    sequences: Source | None
    num_identities: int  # C: classes of the chief loss, identity centres
    num_sequences: int  # S: sequence centres after the identity centres
    fingerprint: str  # of the manifest files read
    template: str  # what the network sees: the crops' template at load_size, centre crop input_size ("name@load")

    def summary(self) -> str:
        n_id = len(self.identities.images) if self.identities else 0
        n_seq = len(self.sequences.images) if self.sequences else 0
        return (f"identity data: {self.num_identities} identities, {n_id} images; "
                f"sequence data: {self.num_sequences} sequences, {n_seq} faces")


def load_training_data(cfg: DataConfig) -> TrainingData:
    files, ids, seqs, num_c, num_s = [], None, None, 0, 0
    if cfg.identities is not None and is_recordio(cfg.identities):
        faces = read_face_records(cfg.identities)
        if not len(faces):
            raise InputError(f"{cfg.identities}: holds no image records")
        files.append(faces.file.idx)  # the index names every record and its offset (hashing a .rec of 170 GB
        num_c, ids = faces.num_classes, Source(faces, faces.labels)  # would take longer than the training start)
    elif cfg.identities is not None:
        files += table_files(cfg.identities, "identities")
        df = read_manifest(cfg.identities, "identities", columns=["class_index", "status", "crop_path"])
        num_c = int(df["class_index"].max()) + 1 if len(df) else 0  # every folder keeps its class, used or not
        df = df[df["status"] == "ok"]
        if df.empty:
            raise InputError(f"{cfg.identities}: the identities manifest has no usable (status ok) images")
        ids = Source(crop_store(cfg.identities, "identities", df["crop_path"].tolist()),
                     df["class_index"].to_numpy(np.int64))
    if cfg.sequences is not None:
        files += table_files(cfg.sequences, "faces")
        df = read_manifest(cfg.sequences, "faces", columns=["sequence_id", "crop_path"])
        size = df.groupby("sequence_id")["crop_path"].transform("size")
        df = df[size >= cfg.min_sequence_faces]
        if df.empty:
            raise InputError(f"{cfg.sequences}: no sequence has {cfg.min_sequence_faces}+ faces")
        codes, uniques = df["sequence_id"].factorize(sort=True)
        num_s = len(uniques)
        seqs = Source(crop_store(cfg.sequences, "faces", df["crop_path"].tolist()), -(codes.astype(np.int64) + 1))
    if num_c == 0:
        raise InputError("the chief classification loss needs identity data (data.identities)")
    return TrainingData(ids, seqs, num_c, num_s, fingerprint_files(files), training_template(cfg))


def training_template(cfg: DataConfig) -> str:
    """The one alignment template of every training root, read from their lineage (``data.template`` for roots
    that record none), as ``name@load_size``: crops are resized to load_size, then cropped to input_size.

    Roots aligned to different templates (``build identities`` defaults to seqface 144, ``extract-sequences`` to
    arcface 112) would put faces at two scales, 12.5% apart, in one batch: refused."""
    from facekit.align.templates import get_template
    from facekit.manifests.lineage import crop_template

    found = []
    for key in ("identities", "sequences"):
        root = getattr(cfg, key)
        if root is None:
            continue
        if is_recordio(root):  # insightface's face sets: 112 px on the ArcFace template, unless data.template says
            found.append((key, root, get_template(cfg.template or "arcface").name))
            continue
        try:
            name = crop_template(root).name
        except InputError:
            if cfg.template is None:
                raise InputError(f"{root}: cannot tell which template its crops are aligned to (no lineage.json); "
                                 "set data.template (arcface, seqface, dlib)") from None
            name = get_template(cfg.template).name
        found.append((key, root, name))
    if len({name for *_, name in found}) > 1:
        (ka, ra, na), (kb, rb, nb) = found
        raise InputError(f"data.{ka} {ra} is aligned to the {na!r} template and data.{kb} {rb} to {nb!r}: one batch "
                         f"would mix faces at two scales; rebuild one with the other's template (build identities "
                         f"--template, or extract-sequences with template: in its config)")
    return f"{found[0][2]}@{cfg.load_size}"


class MixedBatchSampler:
    """Yields, for steps ``start .. steps-1``, this rank's share of the global batch as (source, index, seed)
    triples. ``identity_share`` of the global batch comes from the identity data, the rest from sequences."""

    def __init__(self, data: TrainingData, batch_size: int, identity_share: float, seed: int, start: int,
                 steps: int, rank: int = 0, world: int = 1) -> None:
        if data.sequences is None:
            identity_share = 1.0
        n_id = round(batch_size * identity_share)
        self.parts = [(IDENTITY, n_id, data.identities), (SEQUENCE, batch_size - n_id, data.sequences)]
        for _, n, _ in self.parts:
            if n % world:
                raise InputError(f"batch of {batch_size} ({n_id} identity + {batch_size - n_id} sequence samples) "
                                 f"does not split evenly over {world} ranks")
        self.seed, self.start, self.steps, self.rank, self.world = seed, start, steps, rank, world
        self.streams = {source: EpochStream(len(src.images), seed, source) for source, n, src in self.parts if n}

    def __len__(self) -> int:
        return max(0, self.steps - self.start)

    def batch(self, step: int) -> list[tuple[int, int, int]]:
        out = []
        for source, n, src in self.parts:
            if n == 0:
                continue
            local = n // self.world
            first = step * n + self.rank * local
            for position in range(first, first + local):
                out.append((source, self.streams[source][position], sample_seed(self.seed, source, position)))
        return out

    def __iter__(self):
        for step in range(self.start, self.steps):
            yield self.batch(step)


class FaceTrainingSet(Dataset):
    """Item (source, index, seed) -> (uint8 image (3, s, s), label): random ``input_size`` crop and flip (SeqFace
    4.1). The trainer normalises on its device (``images.normalise``)."""

    def __init__(self, data: TrainingData, cfg: DataConfig) -> None:
        self.sources = {IDENTITY: data.identities, SEQUENCE: data.sequences}
        self.cfg = cfg

    def __getitem__(self, item: tuple[int, int, int]) -> tuple[torch.Tensor, int]:
        source, index, seed = item
        src = self.sources[source]
        crop = src.images.load(index, self.cfg.load_size)
        rng = np.random.default_rng(seed)
        y, x = rng.integers(0, self.cfg.load_size - self.cfg.input_size + 1, size=2)
        crop = crop[y:y + self.cfg.input_size, x:x + self.cfg.input_size]
        if self.cfg.flip and rng.random() < 0.5:
            crop = crop[:, ::-1]
        return to_chw(crop), int(src.labels[index])
