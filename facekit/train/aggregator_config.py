"""Settings of ``facekit train aggregator`` (recipes/aggregator_*.yaml). Defaults are the paper's (section 4.1)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from facekit.errors import InputError


@dataclass
class AugmentConfig:
    flip: bool = True
    brightness: float = 0.2  # factor drawn from [1 - b, 1 + b]
    contrast: float = 0.2
    saturation: float = 0.2
    blur_p: float = 0.5  # motion blur probability (section 4.1: 50 %)
    blur_max: int = 9  # largest kernel, px (section 4.1: up to 9)


@dataclass
class FrameSetDataConfig:
    frames: Path | None = None  # output root of `facekit extract-frames` (manifests/frames)
    set_size: int = 10  # N faces per set, all from one video (section 4.1: N = 10)
    image_size: int = 112  # crops resized to this if needed (ArcFace-aligned 112 in the paper)
    template: str | None = None  # the frames' alignment, for roots whose lineage records none (arcface, dlib, ...)
    holdout_identities: int | list[str] = 0  # k: the last k identities (sorted); or a list of identity names;
    # kept out of training for evaluation
    min_videos: int = 2  # identities need another video for the positive face
    workers: int = 2
    augment: AugmentConfig = field(default_factory=AugmentConfig)


@dataclass
class AggregatorModelConfig:
    widths: tuple[int, ...] = (32, 64, 128, 256)  # encoder blocks (not given in the paper)
    stem: int = 32
    discriminator_widths: tuple[int, ...] = (32, 64, 64, 32)
    extractor: str = ""  # frozen F: "iresnet50:backbone.pth", "facekit:runs/x/model.pt", ...
    feature_scale: float = 1.0  # F's features are multiplied by this in the losses: the paper's beta = 32 and
    # lambdas were set for ArcFace's unnormalised 512-d features; an F on another scale (dlib's 128-d descriptors:
    # squared distances ~0.7 between people) is brought to it here instead of retuning every loss weight


@dataclass
class AggregatorLossConfig:
    dis: float = 1.0  # lambda_dis (Eq. 5)
    rec: float = 0.5  # lambda_rec
    adv: float = 1.0  # lambda_adv
    tv: float = 1e-4  # lambda_tv
    reconstruction: str = "centre"  # centre (Eq. 9-10, the paper's choice) | avg (Eq. 8, DAN)
    beta: float = 32.0  # margin of L_dis (Eq. 6)
    centre_rate: float = 0.5  # r of Eq. 10
    mse_warmup_steps: int = 0  # DAN's pretraining (not this paper's: "converges with randomly initialised
    # weights" at VoxCeleb2 scale): the first K steps train G alone to output the pixel mean of its set


@dataclass
class AggregatorOptimConfig:
    batch_size: int = 6  # global (section 4.1)
    steps: int = 1_100_000  # ~6 epochs of 1.1 M VoxCeleb2 videos at batch 6
    lr: float = 5e-5  # Adam, generator and discriminator
    lr_late: float = 1.25e-5  # from step `drop_step` on (section 4.1: after 3 of 6 epochs)
    drop_step: int = 550_000
    betas: tuple[float, ...] = (0.9, 0.999)
    amp: str = "auto"  # mixed precision on CUDA: auto, off, float16, bfloat16 (facekit.train.precision)
    max_nonfinite: int = 20  # stop after this many non-finite D or G steps in a row (each skipped)
    channels_last: str | bool = "auto"  # NHWC convolutions: auto (on for CUDA with mixed precision), true, false
    compile: bool = False  # torch.compile the network: compiles for minutes at the start; for long runs


@dataclass
class AggregatorConfig:
    data: FrameSetDataConfig = field(default_factory=FrameSetDataConfig)
    model: AggregatorModelConfig = field(default_factory=AggregatorModelConfig)
    loss: AggregatorLossConfig = field(default_factory=AggregatorLossConfig)
    optim: AggregatorOptimConfig = field(default_factory=AggregatorOptimConfig)
    seed: int = 0
    checkpoint_every: int = 5000
    checkpoint_keep: int = 5  # kept step_*.pt copies (the last K; 0: all); last.pt is always there
    log_every: int = 50
    grid_every: int = 1000  # image grids (input set -> aggregated face) under grids/
    heldout_blur: int = 17  # held-out check repeated with 9 of 10 set members motion-blurred, kernel K (0: off)

    def check(self, where: str) -> None:
        if self.data.frames is None:
            raise InputError(f"{where}: set data.frames (a `facekit extract-frames` output root)")
        if not self.model.extractor:
            raise InputError(f"{where}: set model.extractor, the frozen feature extractor (e.g. "
                "iresnet50:backbone.pth)")
        if self.data.set_size < 1:
            raise InputError(f"{where}: data.set_size must be >= 1")
        if self.data.image_size % 16:
            raise InputError(f"{where}: data.image_size must be a multiple of 16 (four stride-2 blocks)")
        if self.loss.reconstruction not in ("centre", "avg"):
            raise InputError(f"{where}: loss.reconstruction must be centre or avg")
