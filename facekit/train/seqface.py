"""``facekit train seqface``: SeqFace (chief loss with LSR + eta x auxiliary loss, Eq. 1) from manifests.

One loop for one process, or K processes under ``torchrun`` (DDP). A run directory holds ``recipe.yaml`` (the
resolved settings), ``checkpoints/`` (``last.pt`` + every ``checkpoint_every`` steps, atomic), ``metrics.csv``,
``tb/`` (TensorBoard), ``batch_preview.png``, ``loss.png``, ``model.pt`` (the backbone, for ``facekit bench`` /
``facekit export``) and ``summary.json`` (settings, versions, git revision, data fingerprint, final metrics).
"""

from __future__ import annotations

import time
from pathlib import Path

import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader

from facekit.errors import InputError
from facekit.images import normalise
from facekit.losses import AUXILIARY, CentreTable, build_head, lsr_cross_entropy
from facekit.losses.centres import ShardedCentreTable
from facekit.losses.partial_fc import PartialFC
from facekit.models import build_backbone, input_scale
from facekit.models.checkpoint import save_backbone
from facekit.progress import progress_bar
from facekit.recipes import to_dict
from facekit.report.grids import captioned_tiles
from facekit.train import distributed
from facekit.train.distributed import clip_global_grad_norm
from facekit.train.precision import StepGuard, autotune_convolutions, channels_last_for, resolve_amp, speed_up
from facekit.train.run import (
    CostEstimate,
    RunResult,
    load_checkpoint,
    load_shard,
    plot_metrics,
    save_checkpoint,
    save_shard,
    write_summary,
)
from facekit.train.runlog import MetricWindow, RunLog
from facekit.train.seqface_config import SeqFaceConfig
from facekit.train.seqface_data import FaceTrainingSet, MixedBatchSampler, load_training_data
from facekit.train.verify import load_pair_set, verify

CKPT_FORMAT = "facekit-seqface-run-v1"


class SeqFaceNet(nn.Module):
    """Backbone + chief head: what DDP wraps. The centre table stays outside (it is not trained by gradients, and
    DDP would broadcast it every step); its update is synchronised by ``CentreTable.update``."""

    def __init__(self, backbone: nn.Module, head: nn.Module | None) -> None:
        super().__init__()
        self.backbone, self.head = backbone, head  # head None: Partial FC, outside DDP (its shards differ by rank)

    def forward(self, x_b3ss: torch.Tensor, labels_b: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        feats_bd = self.backbone(x_b3ss)
        return feats_bd, None if self.head is None else self.head(feats_bd, labels_b)


def lr_at(cfg: SeqFaceConfig, step: int) -> float:
    """Step schedule: lr x gamma^(milestones passed)."""
    return cfg.optim.lr * cfg.optim.gamma ** sum(step >= m for m in cfg.optim.milestones)


def _param_groups(model: nn.Module, weight_decay: float) -> list[dict]:
    """Weight decay on conv / linear / class weights; none on biases, PReLU slopes and norm layers."""
    decay, plain = [], []
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        (decay if p.ndim > 1 else plain).append(p)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": plain, "weight_decay": 0.0}]


def train_seqface(cfg: SeqFaceConfig, run_dir: Path, device: torch.device, resume: bool = False,
                  progress: bool = True) -> RunResult:
    t_start = time.time()
    dist_info, device = distributed.setup(device)
    torch.manual_seed(cfg.seed)
    data = load_training_data(cfg.data)
    mean, std = input_scale(cfg.model.backbone)
    backbone_kwargs = {**cfg.model.kwargs, "num_features": cfg.model.embedding, "input_size": cfg.data.input_size}
    try:
        backbone = build_backbone(cfg.model.backbone, **backbone_kwargs)
    except TypeError as err:
        raise InputError(f"model.kwargs: {err}") from None
    try:
        head = PartialFC(cfg.loss.chief, cfg.model.embedding, data.num_identities, dist_info.rank, dist_info.world,
                         cfg.loss.sample_rate, **cfg.loss.chief_kwargs) if cfg.loss.partial_fc else \
            build_head(cfg.loss.chief, cfg.model.embedding, data.num_identities, **cfg.loss.chief_kwargs)
    except TypeError as err:
        raise InputError(f"loss.chief_kwargs: {err}") from None
    shards = head.to(device) if cfg.loss.partial_fc else None  # this rank's class weights
    model = SeqFaceNet(backbone, None if shards else head)
    if cfg.model.init is not None and not resume:
        _init_from(model, cfg.model.init, shards)
    model = model.to(device)
    table = (ShardedCentreTable(data.num_identities, data.num_sequences, cfg.model.embedding, dist_info.rank,
                                dist_info.world) if cfg.loss.shard_centres else
             CentreTable(data.num_identities, data.num_sequences, cfg.model.embedding)).to(device)
    per_rank = shards or cfg.loss.shard_centres  # parts of the model that differ by rank: saved by each rank
    aux = AUXILIARY.build(cfg.loss.auxiliary, table, cfg.loss)
    # fused: one kernel per step, and it takes the step guard's skip flag on the device (StepGuard.step)
    trained = nn.ModuleList([model, *([shards] if shards else [])])
    opt = torch.optim.SGD(_param_groups(trained, cfg.optim.weight_decay), lr=cfg.optim.lr,
                          momentum=cfg.optim.momentum, fused=True)
    precision = resolve_amp(cfg.optim.amp, device)
    autotune_convolutions(device)
    scaler = torch.amp.GradScaler("cuda", enabled=precision.scaler)
    guard = StepGuard(cfg.optim.max_nonfinite, device)
    nhwc = channels_last_for(cfg.optim.channels_last, precision)

    start = 0
    if resume:
        ckpt = load_checkpoint(run_dir, CKPT_FORMAT, device, data.fingerprint)
        model.load_state_dict(ckpt["model"])
        part = load_shard(run_dir, int(ckpt["step"]), dist_info, device) if per_rank else {}
        if shards:
            shards.load_state_dict(part["head"])
        table.centres.copy_(part["centres"] if cfg.loss.shard_centres else ckpt["centres"])
        opt.load_state_dict(ckpt["optimizer"])
        scaler.load_state_dict(ckpt["scaler"])
        start = int(ckpt["step"])
    net = speed_up(model, nhwc, False)
    if dist_info.world > 1:
        net = DistributedDataParallel(model, device_ids=[device] if device.type == "cuda" else None)
    net = speed_up(net, False, cfg.optim.compile)

    sampler = MixedBatchSampler(data, cfg.optim.batch_size, cfg.data.identity_share, cfg.seed, start,
                                cfg.optim.steps, dist_info.rank, dist_info.world)
    loader = DataLoader(FaceTrainingSet(data, cfg.data), batch_sampler=sampler,
                        num_workers=cfg.data.workers, pin_memory=device.type == "cuda",
                        persistent_workers=False, prefetch_factor=4 if cfg.data.workers else None)
    pairs = load_pair_set(cfg.verify) if dist_info.main else None
    log = RunLog(run_dir, start, enabled=dist_info.main)
    if dist_info.main:
        print(data.summary())
    cost = CostEstimate(device, start, cfg.optim.steps, "recipes/seqface_small_real.yaml", dist_info.main)
    bar = progress_bar(total=cfg.optim.steps, initial=start, unit="step", desc="train seqface",
               disable=not (progress and dist_info.main), dynamic_ncols=True)
    window = MetricWindow(("loss", "chief", "auxiliary", "hits", "identity_samples"), device)
    t_window, seen = time.time(), 0
    generator = torch.Generator()
    step, verification, final = start, None, {}
    model.train()
    replicated, sharded = list(model.parameters()), list(shards.parameters()) if shards else []
    t_ready = time.perf_counter()
    for step, (x_b3ss_u8, labels_b) in enumerate(loader, start=start + 1):
        # how long the host waited for this batch (with no sync per step, the device may still be busy meanwhile)
        loader_wait = time.perf_counter() - t_ready
        if step == 1 and dist_info.main:
            _batch_preview(x_b3ss_u8, labels_b, run_dir / "batch_preview.png")
        x_b3ss = normalise(x_b3ss_u8.to(device, non_blocking=True), mean, std)  # uint8 travels, float on the device
        if nhwc:
            x_b3ss = x_b3ss.contiguous(memory_format=torch.channels_last)
        labels_b = labels_b.to(device, non_blocking=True)
        for group in opt.param_groups:
            group["lr"] = lr_at(cfg, step - 1)
        if hasattr(head, "set_step"):
            head.set_step(step - 1)
        with precision.autocast():
            feats_bd, logits_bc = net(x_b3ss, labels_b)
        if shards:  # Partial FC: Eq. 5 across the ranks, accuracy counted over the global batch
            chief, hits_sum, ids_sum = shards(feats_bd, labels_b)
        else:
            chief = lsr_cross_entropy(logits_bc, labels_b)                                  # Eq. 5
            is_id = labels_b >= 0
            hits_sum = ((logits_bc.detach().argmax(1) == labels_b) & is_id).sum()
            ids_sum = is_id.sum()
        if aux is not None:
            generator.manual_seed(cfg.seed * 1_000_003 + step)  # the same centre subset on every rank
            auxiliary = aux(feats_bd, labels_b, generator)
        else:
            auxiliary = torch.zeros((), device=device)
        loss = chief + cfg.loss.weight * auxiliary                                         # Eq. 1
        opt.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.unscale_(opt)
        # the global gradient norm: the same on every rank after DDP's all-reduce (and the shards' all-reduce),
        # so all ranks skip alike
        grad_norm = clip_global_grad_norm(replicated, sharded, cfg.optim.grad_clip or float("inf"))
        # no host sync: the verdict stays on the device and gates the weights, momenta and centres alike
        ok = guard.assess(grad_norm)
        guard.step(opt, ok)
        if aux is not None:
            table.update(feats_bd, labels_b, cfg.loss.centre_lr, ok)                       # Eq. 11
        scaler.update()
        window.add(ok, loss, chief, auxiliary, hits_sum, ids_sum)
        window.host("loader_wait_ms", 1000 * loader_wait)
        seen += len(labels_b) * dist_info.world
        bar.update(1)
        if (line := cost.note(step)) is not None:
            bar.write(line)
        if step % cfg.log_every == 0 or step == cfg.optim.steps:
            guard.check(step)
            means = window.read()
            hit_share, id_share = means.pop("hits"), means.pop("identity_samples")
            means["accuracy"] = hit_share / id_share if id_share else float("nan")
            final = distributed.all_mean(means, dist_info)
            final.update(lr=lr_at(cfg, step - 1), images_per_sec=seen / max(time.time() - t_window, 1e-9),
                         skipped_steps=guard.skipped)
            bar.set_postfix(loss=f"{final['loss']:.3f}", acc=f"{final['accuracy']:.3f}")
            t_window, seen = time.time(), 0
            if pairs is not None and cfg.verify.every and step % cfg.verify.every == 0:
                verification = verify(model.backbone, pairs, cfg.data, mean, std, device, data.template)
                final["verify_accuracy"] = verification["accuracy"]
            log.log(step, final)
        if step % cfg.checkpoint_every == 0 or step == cfg.optim.steps:
            if per_rank:
                save_shard(run_dir, step, {"head": shards.state_dict() if shards else None,
                                           "centres": table.centres if cfg.loss.shard_centres else None}, dist_info)
            save_checkpoint(run_dir, step, {"format": CKPT_FORMAT, "model": model.state_dict(),
                                            "centres": None if cfg.loss.shard_centres else table.centres,
                                            "optimizer": opt.state_dict(),
                                            "scaler": scaler.state_dict(), "config": to_dict(cfg),
                                            "data_fingerprint": data.fingerprint}, cfg.checkpoint_every, dist_info,
                            cfg.checkpoint_keep)
        t_ready = time.perf_counter()
    bar.close()
    if dist_info.main:
        if pairs is not None and (verification is None or not cfg.verify.every or step % cfg.verify.every):
            verification = verify(model.backbone, pairs, cfg.data, mean, std, device, data.template)
        save_backbone(run_dir / "model.pt", cfg.model.backbone, backbone_kwargs, model.backbone,
                      template=data.template, input_size=cfg.data.input_size, mean=mean, std=std, flip=False)
        plot_metrics(log.path, run_dir / "loss.png", [("training loss", ["loss", "chief", "auxiliary"]),
                                                       ("accuracy", ["accuracy", "verify_accuracy"])])
        write_summary(run_dir, "train seqface", cfg, step, final, time.time() - t_start, verification=verification,
                      data={"fingerprint": data.fingerprint, "summary": data.summary(),
                            "num_identities": data.num_identities, "num_sequences": data.num_sequences})
    log.close()
    distributed.barrier(dist_info)
    distributed.teardown(dist_info)
    details = [f"precision: {precision.name}" + (f"; {guard.skipped} steps skipped for a non-finite loss or gradient"
                                                 if guard.skipped else "")]
    if verification:
        details.append(f"verification on {verification['set']} ({verification['pairs']} pairs): accuracy "
                       f"{verification['accuracy']:.4f} +- {verification['std']:.4f}")
    details.append(f"model: {run_dir / 'model.pt'}  (facekit bench ... --model facekit:{run_dir / 'model.pt'})")
    return RunResult(run_dir, step, final, time.time() - t_start, details, verification)


def _init_from(model: SeqFaceNet, path: Path, shards: PartialFC | None = None) -> None:
    """Backbone (and head, when the class count matches; under Partial FC this rank's rows of it) from a run
    checkpoint, a run dir or a model.pt."""
    from facekit.embed.extractors import _strict, _torch_load

    if str(path).startswith("dlib-torch:"):  # dlib's pretrained weights, read from its .dat
        from facekit.embed.extractors import dlib_model_path
        from facekit.models.dlib_resnet import DlibBackbone, read_dlib_resnet

        if not isinstance(model.backbone, DlibBackbone):
            raise InputError(f"model.init {path}: needs model.backbone: dlib_resnet")
        model.backbone.net.load_state_dict(read_dlib_resnet(dlib_model_path(str(path).partition(":")[2])).state_dict())
        return
    if path.is_dir():
        path = path / "checkpoints" / "last.pt"
    if not path.is_file():
        raise InputError(f"{path}: model.init file not found")
    blob = _torch_load(path)
    if blob.get("format") == CKPT_FORMAT:
        state = blob["model"]
        _strict(model.backbone, {k[9:]: v for k, v in state.items() if k.startswith("backbone.")}, path)
        head = {k[5:]: v for k, v in state.items() if k.startswith("head.")}
        if shards is not None and head:  # a full head: this rank's classes
            rows = slice(shards.start, shards.start + shards.num_local)
            if all(len(v) == shards.num_classes for v in head.values()):
                shards.head.load_state_dict({k: v[rows] for k, v in head.items()})
        elif model.head is not None and all(model.head.state_dict()[k].shape == v.shape for k, v in head.items()):
            model.head.load_state_dict(head)
    elif "state_dict" in blob:
        _strict(model.backbone, blob["state_dict"], path)
    else:
        raise InputError(f"{path}: model.init must be a facekit run checkpoint or model.pt")


def _batch_preview(x_b3ss_u8: torch.Tensor, labels_b: torch.Tensor, target: Path) -> None:
    """The first training batch as the network sees it (after crop and flip), label under each face."""
    captions = [f"id {lab}" if lab >= 0 else f"seq {-lab - 1}" for lab in labels_b[:64].tolist()]
    captioned_tiles(x_b3ss_u8[:64].permute(0, 2, 3, 1).numpy(), captions, target)
