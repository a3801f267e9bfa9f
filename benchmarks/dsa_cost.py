"""What does the DSA loss cost at MS-Celeb + Celeb-Seq scale? (issue 4)

In one process: a ResNet-27 (SeqFace Figure 5, the centre-loss layout) training step on a 128x128 batch
(forward, L2-SphereFace +
LSR loss, backward, SGD step) against the DSA loss on the same batch's features with N = 1,000,000 centres,
d = 512, p = 0.001 (forward + backward + the Eq. 11 centre update). Prints both times, their ratio (target:
DSA < 10% of the step) and the centre table's memory. Median of ``--repeats`` runs after one warm-up.

    python benchmarks/dsa_cost.py                      # batch 128 as the paper (~a few minutes on 2 CPU cores)
    python benchmarks/dsa_cost.py --batch 32 --device cuda
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from facekit.device import resolve_device
from facekit.losses import CentreTable, DSALoss, L2SphereFaceHead, lsr_cross_entropy
from facekit.models import build_backbone


def timed(fn, repeats: int, device: torch.device) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        if device.type == "cuda":
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        fn()
        if device.type == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--centres", type=int, default=1_000_000)
    ap.add_argument("--dim", type=int, default=512)
    ap.add_argument("--p", type=float, default=0.001)
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--classes", type=int, default=79_000, help="identity classes of the chief head (MS-Celeb)")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--device", default="auto")
    args = ap.parse_args()
    device = resolve_device(args.device)
    torch.manual_seed(0)
    net = build_backbone("resnet27", num_features=args.dim, input_size=128).to(device)
    head = L2SphereFaceHead(args.dim, args.classes).to(device)
    opt = torch.optim.SGD(list(net.parameters()) + list(head.parameters()), lr=1e-3, momentum=0.9)
    x = torch.randn(args.batch, 3, 128, 128, device=device)
    half = args.batch // 2
    labels = torch.cat([torch.randint(0, args.classes, (half,)), -1 - torch.randint(0, args.centres - args.classes,
                                                                                      (args.batch - half,))]).to(device)

    def step():
        loss = lsr_cross_entropy(head(net(x), labels), labels)
        opt.zero_grad()
        loss.backward()
        opt.step()

    t_step = timed(step, args.repeats, device)
    table = CentreTable(args.classes, args.centres - args.classes, args.dim).to(device)
    table.centres.normal_()
    dsa = DSALoss(table, p=args.p)
    feats = torch.randn(args.batch, args.dim, device=device, requires_grad=True)
    gen = torch.Generator().manual_seed(0)

    def dsa_step():
        loss = dsa(feats, labels, gen)
        loss.backward()
        table.update(feats, labels, lr=0.5)

    t_dsa = timed(dsa_step, max(args.repeats, 10), device)
    mem = table.centres.numel() * table.centres.element_size() / 2**20
    print(f"device: {device}, batch {args.batch}")
    print(f"ResNet-27 128x128 training step: {t_step * 1e3:9.1f} ms")
    print(f"DSA N={args.centres:,} d={args.dim} p={args.p} (subset {dsa.subset_size}), fwd+bwd+update: "
          f"{t_dsa * 1e3:9.2f} ms")
    print(f"ratio DSA / step: {t_dsa / t_step:.4f} ({100 * t_dsa / t_step:.2f}%, target < 10%)")
    print(f"centre table: {args.centres:,} x {args.dim} float32 = {mem:,.0f} MiB (no optimiser state: updated by Eq. "
        "11)")


if __name__ == "__main__":
    main()
