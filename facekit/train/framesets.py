"""Frame-set training samples for the aggregator, from an ``extract-frames`` manifest (section 4.1): a set of N
faces of one video, a positive face of the same person from another video, a negative face of another person.

Videos are read in seeded epochs (``facekit.train.streams``) and every choice inside a sample is seeded by its
position, so resume and DDP give the samples one uninterrupted process would draw.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch.utils.data import Dataset

from facekit.align.templates import Template, get_template
from facekit.datasets.crops import CropFiles, PackedCrops, crop_store
from facekit.errors import InputError
from facekit.images import normalise, to_chw
from facekit.manifests.io import read_manifest, table_files
from facekit.manifests.lineage import crop_template
from facekit.provenance import fingerprint_files
from facekit.train.aggregator_config import FrameSetDataConfig
from facekit.train.streams import EpochStream, sample_seed
from facekit.transforms.photometric import augment_face


@dataclass
class FrameSets:
    paths: CropFiles | PackedCrops  # every kept frame (files, or the packed shards)
    video_of: np.ndarray  # (frames,) video index
    identity_of_video: np.ndarray  # (videos,) identity index
    video_frames: list[np.ndarray]  # frames of each video
    identity_videos: list[np.ndarray]  # videos of each identity
    identities: list[str]
    train_videos: np.ndarray  # videos whose sets are drawn in training
    heldout_videos: np.ndarray  # videos of the held-out identities
    fingerprint: str
    scores: np.ndarray  # (frames,) detection score of each frame

    def summary(self) -> str:
        return (f"frame sets: {len(self.identities)} identities, {len(self.video_frames)} videos, "
                f"{len(self.paths)} frames; {len(self.train_videos)} training videos, "
                f"{len(self.heldout_videos)} held-out videos")


def frames_template(cfg: FrameSetDataConfig) -> Template | None:
    """The template of the frames as the aggregator sees them (resized to ``image_size``): from the root's lineage,
    else ``data.template``; ``None`` when neither says (the frames are taken to be on F's own template)."""
    try:
        tpl = crop_template(cfg.frames)
    except InputError:
        if cfg.template is None:
            return None
        tpl = get_template(cfg.template)
    return tpl.resized(cfg.image_size)


def load_frame_sets(cfg: FrameSetDataConfig) -> FrameSets:
    files = table_files(cfg.frames, "frames")
    df = read_manifest(cfg.frames, "frames", columns=["identity", "video", "crop_path", "score"])
    if df.empty:
        raise InputError(f"{cfg.frames}: the frames manifest is empty")
    df = df.sort_values(["identity", "video", "crop_path"]).reset_index(drop=True)
    per_identity = df.groupby("identity")["video"].nunique()
    keep = per_identity[per_identity >= cfg.min_videos].index
    df = df[df["identity"].isin(keep)].reset_index(drop=True)
    identities = sorted(keep)
    n_held = len(cfg.holdout_identities) if isinstance(cfg.holdout_identities, list) else cfg.holdout_identities
    if len(identities) < 2 + n_held:
        raise InputError(f"{cfg.frames}: need at least {2 + n_held} identities with "
                         f"{cfg.min_videos}+ videos (positives come from another video, negatives from another "
                         f"person), found {len(identities)}")
    video_key = df["identity"] + "/" + df["video"]
    video_codes, videos = video_key.factorize(sort=True)
    ident_index = {name: i for i, name in enumerate(identities)}
    identity_of_video = np.array([ident_index[v.split("/", 1)[0]] for v in videos], np.int64)
    video_frames = _members(video_codes, len(videos))  # one pass over the frames (5 M frames, 1 M videos)
    identity_videos = _members(identity_of_video, len(identities))
    held = _heldout_indices(cfg, identities)
    is_held = np.isin(identity_of_video, np.fromiter(held, np.int64, len(held)))
    crops = crop_store(cfg.frames, "frames", df["crop_path"].tolist())
    return FrameSets(crops, video_codes.astype(np.int64), identity_of_video,
                     video_frames, identity_videos, identities, np.flatnonzero(~is_held), np.flatnonzero(is_held),
                     fingerprint_files(files), df["score"].to_numpy(np.float32))


def _members(codes: np.ndarray, n: int) -> list[np.ndarray]:
    """Positions of each code 0..n-1 in ``codes``, ascending: one stable sort, not one scan per code."""
    order = np.argsort(codes, kind="stable")
    return np.split(order, np.cumsum(np.bincount(codes, minlength=n))[:-1])


def _heldout_indices(cfg: FrameSetDataConfig, identities: list[str]) -> set[int]:
    if not isinstance(cfg.holdout_identities, list):
        return set(range(len(identities) - cfg.holdout_identities, len(identities)))
    unknown = sorted(set(cfg.holdout_identities) - set(identities))
    if unknown:
        raise InputError(f"data.holdout_identities: {', '.join(unknown[:5])} not among the identities with "
                         f"{cfg.min_videos}+ videos of {cfg.frames}")
    return {identities.index(name) for name in cfg.holdout_identities}


def draw_sample(data: FrameSets, video: int, set_size: int, rng: np.random.Generator,
                identities: np.ndarray | None = None) -> tuple[np.ndarray, int, int]:
    """(set frame indices (N,), positive frame, negative frame) for ``video``. Members are drawn without
    replacement when the video has N frames, else with replacement. Negatives come from ``identities``
    (default: all) other than the video's own."""
    frames = data.video_frames[video]
    members = rng.choice(frames, set_size, replace=len(frames) < set_size)
    ident = data.identity_of_video[video]
    others = [v for v in data.identity_videos[ident] if v != video]
    positive = int(rng.choice(data.video_frames[int(rng.choice(others))]))
    pool = np.arange(len(data.identities)) if identities is None else identities
    neg_ident = int(rng.choice(pool[pool != ident]))
    neg_video = int(rng.choice(data.identity_videos[neg_ident]))
    negative = int(rng.choice(data.video_frames[neg_video]))
    return members, positive, negative


class FrameSetSampler:
    """This rank's share of each global batch: (video, seed) pairs, steps ``start .. steps-1``."""

    def __init__(self, data: FrameSets, batch_size: int, seed: int, start: int, steps: int, rank: int = 0,
                 world: int = 1) -> None:
        if batch_size % world:
            raise InputError(f"batch of {batch_size} does not split evenly over {world} ranks")
        self.videos, self.batch_size = data.train_videos, batch_size
        self.stream = EpochStream(len(self.videos), seed)
        self.seed, self.start, self.steps, self.rank, self.world = seed, start, steps, rank, world

    def __len__(self) -> int:
        return max(0, self.steps - self.start)

    def batch(self, step: int) -> list[tuple[int, int]]:
        local = self.batch_size // self.world
        first = step * self.batch_size + self.rank * local
        return [(int(self.videos[self.stream[p]]), sample_seed(self.seed, 0, p)) for p in range(first, first + local)]

    def __iter__(self):
        for step in range(self.start, self.steps):
            yield self.batch(step)


def to_unit(x_uint8: torch.Tensor) -> torch.Tensor:
    """uint8 pixels -> the aggregator's [-1, 1] scale."""
    return normalise(x_uint8, 127.5, 127.5)


class FrameSetDataset(Dataset):
    """(video, seed) -> set (N, 3, S, S), positive (3, S, S), negative (3, S, S), identity index; uint8 pixels
    (the trainer maps them to [-1, 1] on its device, ``to_unit``), each face augmented independently (4.1)."""

    def __init__(self, data: FrameSets, cfg: FrameSetDataConfig, augment: bool = True) -> None:
        self.data, self.cfg, self.augment = data, cfg, augment
        self.train_identities = np.unique(data.identity_of_video[data.train_videos])

    def raw(self, frame: int, rng: np.random.Generator | None, blur: bool = True) -> torch.Tensor:
        """uint8 (3, S, S)."""
        crop = self.data.paths.load(frame, self.cfg.image_size)
        if self.augment:
            crop = augment_face(crop, rng, **{**vars(self.cfg.augment), **({} if blur else {"blur_p": 0.0})})
        return to_chw(crop)

    def image(self, frame: int, rng: np.random.Generator | None, blur: bool = True) -> torch.Tensor:
        """[-1, 1] float (3, S, S)."""
        return to_unit(self.raw(frame, rng, blur))

    def __getitem__(self, item: tuple[int, int]) -> dict:
        video, seed = item
        rng = np.random.default_rng(seed)
        members, pos, neg = draw_sample(self.data, video, self.cfg.set_size, rng, self.train_identities)
        # motion blur degrades the inputs only (section 4.1); P is the discriminator's real image and stays sharp
        return {"set": torch.stack([self.raw(int(m), rng) for m in members]),
                "positive": self.raw(pos, rng, blur=False), "negative": self.raw(neg, rng, blur=False),
                "identity": int(self.data.identity_of_video[video])}
