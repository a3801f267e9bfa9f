"""Settings of ``facekit train seqface`` (recipes/seqface_*.yaml). Defaults are the paper's (section 4)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from facekit.errors import InputError


@dataclass
class DataConfig:
    identities: Path | None = None  # identity data (Z = 0): an output root of `facekit build identities`, or
    # insightface's train.rec (train.idx beside it; MS1MV2/V3, Glint360K ...; template arcface unless data.template)
    sequences: Path | None = None  # output root of `facekit extract-sequences` (sequence data, Z = 1)
    identity_share: float = 0.5  # identity samples per batch (reference: 32 + 32, i.e. 1:1)
    min_sequence_faces: int = 2  # sequences with fewer faces teach nothing about intra-sequence compactness
    load_size: int = 144  # crops are resized to this side if they are not already
    input_size: int = 128  # random crop in training, centre crop in verification (SeqFace 4.1)
    flip: bool = True
    workers: int = 2
    template: str | None = None  # alignment of roots whose lineage does not record one (arcface, seqface, dlib)


@dataclass
class ModelConfig:
    backbone: str = "sphereface20"
    embedding: int = 512
    kwargs: dict = field(default_factory=dict)  # more backbone settings, e.g. {widths: [32, 64, 128, 256]}
    init: Path | None = None  # start from a trained run (its checkpoints/last.pt: backbone + head) or a model.pt
    # (backbone only): SeqFace 4.3 fine-tunes an L2-SphereFace baseline trained on the identity data


@dataclass
class DSAConfig:
    lambda_: float = 0.5
    alpha: float = 2.0
    beta: float = 1.0
    p: float = 0.001
    normalise: bool = False  # Eq. 7 angular distance; the paper's face models use Eq. 6 (Euclidean)


@dataclass
class LossConfig:
    chief: str = "l2sphereface"  # softmax | l2sphereface | arcface | cosface (LSR for sequence samples in all)
    chief_kwargs: dict = field(default_factory=dict)  # e.g. {scale: 32.0, m: 4, lambda_base: 5.0}
    auxiliary: str = "dsa"  # dsa | centre | none
    weight: float = 0.04  # eta (Eq. 1)
    dsa: DSAConfig = field(default_factory=DSAConfig)
    centre_lr: float = 0.5  # step size of the centre update (Eq. 11)
    partial_fc: bool = False  # class weights sharded over the ranks (insightface's Partial FC): 4 bytes x 512 x C
    # per rank / world instead of a full C x 512 head all-reduced every step; needed from ~100 K classes on
    sample_rate: float = 1.0  # Partial FC: share of each rank's classes in a step's softmax (positives always in)
    shard_centres: bool = False  # the centre table split over the ranks (1.36 M x 512 float32 = 2.8 GB otherwise on
    # every GPU and in every checkpoint)


@dataclass
class OptimConfig:
    batch_size: int = 128  # global: split over DDP ranks
    steps: int = 300_000
    lr: float = 0.01
    milestones: tuple[int, ...] = (200_000,)  # lr / 10 at each (paper: 200K of 300K; 300K, 600K of 800K)
    gamma: float = 0.1
    momentum: float = 0.9
    weight_decay: float = 5e-4
    grad_clip: float = 5.0  # max global gradient norm (0: off). Not in the paper; insightface's value. Without it a
    # normalised head (features scaled by s / |x|) blows up from scratch when |x| is small
    amp: str = "auto"  # mixed precision on CUDA: auto (bfloat16 where supported, else float16), off, float16,
    # bfloat16 (facekit.train.precision); CPU trains in float32
    max_nonfinite: int = 20  # stop after this many steps in a row with a non-finite loss or gradient (each skipped)
    channels_last: str | bool = "auto"  # NHWC convolutions: auto (on for CUDA with mixed precision), true, false
    compile: bool = False  # torch.compile the network: compiles for minutes at the start; for long runs


@dataclass
class VerifyConfig:
    every: int = 0  # steps between verifications (0: only at the end, when a pairs set is given)
    bin: Path | None = None  # insightface .bin pairs set
    lfw_root: Path | None = None  # aligned LFW tree + pairs.txt
    lfw_pairs: Path | None = None
    identities: Path | None = None  # held-out identities manifest root: all genuine pairs + as many impostors
    max_pairs: int = 6000


@dataclass
class SeqFaceConfig:
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    verify: VerifyConfig = field(default_factory=VerifyConfig)
    seed: int = 0
    checkpoint_every: int = 1000
    checkpoint_keep: int = 5  # kept step_*.pt copies (the last K; 0: all); last.pt is always there
    log_every: int = 20

    def check(self, where: str) -> None:
        if self.data.identities is None and self.data.sequences is None:
            raise InputError(f"{where}: set data.identities and/or data.sequences (manifest output roots)")
        if not 0.0 <= self.data.identity_share <= 1.0:
            raise InputError(f"{where}: data.identity_share must lie in [0, 1]")
        if self.data.input_size > self.data.load_size:
            raise InputError(f"{where}: data.input_size {self.data.input_size} > data.load_size {self.data.load_size}")
        from facekit.losses import AUXILIARY, HEADS
        from facekit.models import BACKBONES

        AUXILIARY.check(self.loss.auxiliary, f"{where}: loss.auxiliary")
        HEADS.check(self.loss.chief, f"{where}: loss.chief")
        BACKBONES.check(self.model.backbone, f"{where}: model.backbone")
        if not 0.0 < self.loss.sample_rate <= 1.0:
            raise InputError(f"{where}: loss.sample_rate must lie in (0, 1]")
        if self.loss.sample_rate < 1.0 and not self.loss.partial_fc:
            raise InputError(f"{where}: loss.sample_rate < 1 samples Partial FC's classes; set loss.partial_fc: true")
        if self.optim.batch_size < 2:
            raise InputError(f"{where}: optim.batch_size must be >= 2")
