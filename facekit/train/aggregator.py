"""``facekit train aggregator``: the Face Aggregation Network as a GAN (section 3), from a frame-set manifest.

Each step: the aggregator G fuses every set into A; the discriminator D takes one Adam step on L_adv^D (Eq. 12,
A against the positive face P as the real image); then G takes one Adam step on
L_G = l_dis L_dis + l_rec L_rec + l_adv L_adv^G + l_tv L_tv (Eq. 5), the features coming from the frozen
extractor F (gradients flow through F into G; F's weights never change); then the identity centres move (Eq. 10).

The run directory is laid out as for ``train seqface`` (recipe.yaml, checkpoints/, metrics.csv, tb/,
summary.json) plus ``grids/`` (input set -> A -> P, saved every ``grid_every`` steps), ``aggregator.pt`` and, with
held-out identities, ``heldout.json`` / ``heldout.png`` (does A sit closer to the person's other videos than the
input frames do? the paper's Eq. 2)."""

from __future__ import annotations

import time
from pathlib import Path

import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader

from facekit.aggregation.apply import save_aggregator
from facekit.losses.aggregation import (
    IdentityCentres,
    adversarial_d_loss,
    adversarial_g_loss,
    discriminative_loss,
    reconstruction_avg_loss,
    total_variation_loss,
)
from facekit.models.aggregator import Discriminator, FaceAggregator
from facekit.progress import progress_bar
from facekit.recipes import to_dict
from facekit.report.set_grids import save_grid
from facekit.train import distributed
from facekit.train.aggregator_config import AggregatorConfig
from facekit.train.framesets import (
    FrameSetDataset,
    FrameSetSampler,
    frames_template,
    load_frame_sets,
    to_unit,
)
from facekit.train.frozen_features import FrozenFeatures
from facekit.train.heldout import METHODS, evaluate_heldout
from facekit.train.precision import StepGuard, autotune_convolutions, channels_last_for, resolve_amp, speed_up
from facekit.train.run import CostEstimate, RunResult, load_checkpoint, plot_metrics, save_checkpoint, write_summary
from facekit.train.runlog import MetricWindow, RunLog

CKPT_FORMAT = "facekit-aggregator-run-v1"


def lr_at(cfg: AggregatorConfig, step: int) -> float:
    return cfg.optim.lr if step < cfg.optim.drop_step else cfg.optim.lr_late


def train_aggregator(cfg: AggregatorConfig, run_dir: Path, device: torch.device, resume: bool = False,
                     progress: bool = True) -> RunResult:
    t_start = time.time()
    dist_info, device = distributed.setup(device)
    torch.manual_seed(cfg.seed)
    data = load_frame_sets(cfg.data)
    template = frames_template(cfg.data)
    feats = FrozenFeatures(cfg.model.extractor, device, template, cfg.model.feature_scale)
    G = FaceAggregator(cfg.model.widths, cfg.model.stem).to(device)
    D = Discriminator(cfg.model.discriminator_widths, cfg.data.image_size).to(device)
    with torch.no_grad():
        dim = feats(torch.zeros(1, 3, cfg.data.image_size, cfg.data.image_size, device=device)).shape[1]
    centres = IdentityCentres(len(data.identities), dim, cfg.loss.centre_rate).to(device)
    # fused: they take the step guard's skip flag on the device (StepGuard.step)
    opt_g = torch.optim.Adam(G.parameters(), lr=cfg.optim.lr, betas=tuple(cfg.optim.betas), fused=True)
    opt_d = torch.optim.Adam(D.parameters(), lr=cfg.optim.lr, betas=tuple(cfg.optim.betas), fused=True)
    precision = resolve_amp(cfg.optim.amp, device)
    autotune_convolutions(device)
    scaler_g = torch.amp.GradScaler("cuda", enabled=precision.scaler)
    guard = StepGuard(cfg.optim.max_nonfinite, device)
    nhwc = channels_last_for(cfg.optim.channels_last, precision)
    scaler_d = torch.amp.GradScaler("cuda", enabled=precision.scaler)
    start = 0
    if resume:
        ckpt = load_checkpoint(run_dir, CKPT_FORMAT, device, data.fingerprint)
        G.load_state_dict(ckpt["G"]), D.load_state_dict(ckpt["D"]), centres.load_state_dict(ckpt["centres"])
        opt_g.load_state_dict(ckpt["opt_g"]), opt_d.load_state_dict(ckpt["opt_d"])
        scaler_g.load_state_dict(ckpt["scaler_g"]), scaler_d.load_state_dict(ckpt["scaler_d"])
        start = int(ckpt["step"])
    g_net, d_net = speed_up(G, nhwc, False), speed_up(D, nhwc, False)
    speed_up(feats, nhwc, False)
    if dist_info.world > 1:
        ids = [device] if device.type == "cuda" else None
        g_net, d_net = DistributedDataParallel(G, device_ids=ids), DistributedDataParallel(D, device_ids=ids)
    g_net, d_net = speed_up(g_net, False, cfg.optim.compile), speed_up(d_net, False, cfg.optim.compile)
    sampler = FrameSetSampler(data, cfg.optim.batch_size, cfg.seed, start, cfg.optim.steps, dist_info.rank,
                              dist_info.world)
    loader = DataLoader(FrameSetDataset(data, cfg.data), batch_sampler=sampler, num_workers=cfg.data.workers,
                        pin_memory=device.type == "cuda", prefetch_factor=4 if cfg.data.workers else None)
    log = RunLog(run_dir, start, enabled=dist_info.main)
    if dist_info.main:
        print(data.summary())
    cost = CostEstimate(device, start, cfg.optim.steps, "recipes/aggregator_small_real.yaml", dist_info.main)
    bar = progress_bar(total=cfg.optim.steps, initial=start, unit="step", desc="train aggregator",
               disable=not (progress and dist_info.main), dynamic_ncols=True)
    names = ("loss_g", "loss_d", "dis", "rec", "adv", "tv", "mse")
    window = MetricWindow(names, device)
    t_window, seen, step, final = time.time(), 0, start, {}
    G.train(), D.train()
    t_ready = time.perf_counter()
    for step, batch in enumerate(loader, start=start + 1):
        loader_wait = time.perf_counter() - t_ready  # how long the host waited for this batch
        # uint8 travels; [-1, 1] floats are made on the device
        set_bn3hw, pos_b3hw, neg_b3hw = (to_unit(batch[k].to(device, non_blocking=True))
                                         for k in ("set", "positive", "negative"))
        ident_b = batch["identity"].to(device)
        for opt in (opt_g, opt_d):
            for group in opt.param_groups:
                group["lr"] = lr_at(cfg, step - 1)
        warmup = step <= cfg.loss.mse_warmup_steps
        with precision.autocast():
            agg_b3hw = g_net(set_bn3hw)
        if not warmup:
            with precision.autocast():
                # discriminator step (Eq. 12): A is fake, P is real (one forward call, as DDP wants)
                logit_a_b, logit_p_b = d_net(torch.cat([agg_b3hw.detach(), pos_b3hw])).float().chunk(2)
                loss_d = adversarial_d_loss(logit_a_b, logit_p_b)
            opt_d.zero_grad(set_to_none=True)
            scaler_d.scale(loss_d).backward()
            scaler_d.unscale_(opt_d)
            # D's global gradient norm (the same on every rank after DDP's all-reduce): a non-finite D step is skipped
            ok_d = torch.isfinite(nn.utils.clip_grad_norm_(D.parameters(), float("inf")))
            guard.step(opt_d, ok_d)
            scaler_d.update()
        else:
            loss_d, ok_d = torch.zeros((), device=device), torch.ones((), dtype=torch.bool, device=device)
        with precision.autocast():
            b, n = set_bn3hw.shape[:2]
            f_a = feats(agg_b3hw)
            with torch.no_grad():
                f_p, f_n = feats(pos_b3hw), feats(neg_b3hw)
                f_in = feats(set_bn3hw.flatten(0, 1)).view(b, n, -1)
            l_dis = discriminative_loss(f_a, f_p, f_n, f_in, beta=cfg.loss.beta)                       # Eq. 6
            l_rec = (centres.loss(f_a, ident_b) if cfg.loss.reconstruction == "centre"
                     else reconstruction_avg_loss(f_a, f_in))                                            # Eq. 9 / 8
            # Eq. 11 through the plain D (identical on every rank): its weight gradients stay local and are
            # cleared before the next D step, so DDP all-reduces D only in the D step
            l_adv = adversarial_g_loss(D(agg_b3hw).float())
            l_tv = total_variation_loss(agg_b3hw.float())                                                # Eq. 13
            l_mse = (agg_b3hw.float() - set_bn3hw.float().mean(1)).pow(2).mean()
            loss_g = (l_mse if warmup else
                      cfg.loss.dis * l_dis + cfg.loss.rec * l_rec + cfg.loss.adv * l_adv + cfg.loss.tv * l_tv)  # Eq. 5
        opt_g.zero_grad(set_to_none=True)
        scaler_g.scale(loss_g).backward()
        scaler_g.unscale_(opt_g)
        ok_g = torch.isfinite(nn.utils.clip_grad_norm_(G.parameters(), float("inf")))
        # no host sync: a non-finite G step reaches neither G, its Adam moments nor the centres; the guard counts
        # a step with either part skipped and stops the run after N in a row
        guard.record(ok_d & ok_g)
        guard.step(opt_g, ok_g)
        centres.update(f_p, f_in, ident_b, ok=ok_g)                                                     # Eq. 10
        scaler_g.update()
        window.add(ok_d & ok_g, loss_g, loss_d, l_dis, l_rec, l_adv, l_tv, l_mse)
        window.host("loader_wait_ms", 1000 * loader_wait)
        seen += b * dist_info.world
        bar.update(1)
        if (line := cost.note(step)) is not None:
            bar.write(line)
        if dist_info.main and (step % cfg.grid_every == 0 or step == start + 1):
            save_grid(set_bn3hw[:6], agg_b3hw[:6], pos_b3hw[:6], run_dir / "grids" / f"step_{step:08d}.png")
        if step % cfg.log_every == 0 or step == cfg.optim.steps:
            guard.check(step)
            final = distributed.all_mean(window.read(), dist_info)
            final.update(lr=lr_at(cfg, step - 1), sets_per_sec=seen / max(time.time() - t_window, 1e-9),
                         skipped_steps=guard.skipped)
            bar.set_postfix(g=f"{final['loss_g']:.3f}", d=f"{final['loss_d']:.3f}")
            t_window, seen = time.time(), 0
            log.log(step, final)
        if step % cfg.checkpoint_every == 0 or step == cfg.optim.steps:
            save_checkpoint(run_dir, step, {
                "format": CKPT_FORMAT, "G": G.state_dict(), "D": D.state_dict(), "centres": centres.state_dict(),
                "opt_g": opt_g.state_dict(), "opt_d": opt_d.state_dict(), "scaler_g": scaler_g.state_dict(),
                "scaler_d": scaler_d.state_dict(), "config": to_dict(cfg), "data_fingerprint": data.fingerprint},
                cfg.checkpoint_every, dist_info, cfg.checkpoint_keep)
        t_ready = time.perf_counter()
    bar.close()
    heldout = None
    if dist_info.main:
        save_aggregator(run_dir / "aggregator.pt", G, cfg.model.widths, cfg.model.stem, cfg.data.image_size,
                        cfg.model.extractor, template)
        if len(data.heldout_videos):
            heldout = evaluate_heldout(G, feats, data, cfg, device, run_dir)
        plot_metrics(log.path, run_dir / "loss.png", [("generator", ["loss_g", "dis", "rec", "adv"]),
                                                      ("discriminator", ["loss_d"])])
        write_summary(run_dir, "train aggregator", cfg, step, final, time.time() - t_start, heldout=heldout,
                      data={"fingerprint": data.fingerprint, "summary": data.summary()})
    log.close()
    distributed.barrier(dist_info)
    distributed.teardown(dist_info)
    details = []
    name = lambda k: k.replace("_", " ")  # noqa: E731
    for h in (heldout, (heldout or {}).get("blurred")):
        if h:
            c, g = h["aggregated_closer_than"], h["genuine"]
            blur = f" blur {h['blur_kernel']}" if h["blur_kernel"] else ""
            details.append(f"held-out{blur} ({h['sets']} sets, {h['genuine_pairs']} genuine pairs): squared distance "
                           "to the person's other videos: " + ", ".join(f"{name(k)} {g[k]:.4f}" for k in METHODS)
                           + "; aggregated closer than: " + ", ".join(f"{name(k)} {v:.1%}" for k, v in c.items()))
    details.append(f"aggregator: {run_dir / 'aggregator.pt'}  (facekit aggregate --model ...)")
    return RunResult(run_dir, step, final, time.time() - t_start, details, heldout)
