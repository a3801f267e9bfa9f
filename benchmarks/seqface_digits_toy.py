"""SeqFace section 3.3.1 / Figure 3 on scikit-learn's digits (8x8, 10 classes) instead of MNIST: a small CNN with
a 2-D feature layer trained with (a) softmax, (b) softmax + centre loss, (c) softmax + DSA (Euclidean, Eq. 6),
(d) softmax + DSA (angular, Eq. 7). The paper's settings: lambda 0.5, alpha 2, beta 1, p 1, loss weight 0.04,
batch 32, lr 0.01 / 10 at 70% of the steps (the paper: 14K of 20K; default here 5K, ``--steps 20000`` for the
paper's length).

Writes ``out/digits_toy/features.png`` (the 2-D test features, as Figure 3) and prints, per loss, the test
accuracy and the ratio of the mean distance between class centres to the mean within-class spread (larger:
more discriminative), all measured in this run.

    python benchmarks/seqface_digits_toy.py                  # 5K steps x 4 models, ~4 min on 2 CPU cores
    python benchmarks/seqface_digits_toy.py --steps 20000    # the paper's schedule
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from torch import nn

from facekit.losses import CentreLoss, CentreTable, DSALoss, SoftmaxHead, lsr_cross_entropy
from facekit.report.plots import pyplot, save_figure


class LeNetPP(nn.Module):
    """LeNet++ shrunk for 8x8 inputs: conv stages with PReLU, a 2-D feature layer (Wen et al. 2016)."""

    def __init__(self) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(1, 32, 3, padding=1), nn.PReLU(32), nn.Conv2d(32, 32, 3, padding=1), nn.PReLU(32),
            nn.MaxPool2d(2),
            nn.Conv2d(32, 64, 3, padding=1), nn.PReLU(64), nn.Conv2d(64, 64, 3, padding=1), nn.PReLU(64),
            nn.MaxPool2d(2), nn.Flatten(), nn.Linear(64 * 2 * 2, 2))

    def forward(self, x):
        return self.body(x)


def train(kind: str, x_tr, y_tr, steps: int, seed: int) -> tuple[nn.Module, CentreTable]:
    torch.manual_seed(seed)
    net, head = LeNetPP(), SoftmaxHead(2, 10)
    table = CentreTable(10, 0, 2)
    aux = {"softmax": None, "centre": CentreLoss(table), "dsa": DSALoss(table, p=1.0),
           "dsa_angular": DSALoss(table, p=1.0, normalise=True)}[kind]
    params = list(net.parameters()) + list(head.parameters())
    opt = torch.optim.SGD(params, lr=0.01, momentum=0.9, weight_decay=5e-4)
    rng = np.random.default_rng(seed)
    milestone = int(steps * 0.7)
    for step in range(steps):
        if step == milestone:
            for g in opt.param_groups:
                g["lr"] = 0.001
        idx = rng.integers(0, len(x_tr), 32)
        x, y = x_tr[idx], y_tr[idx]
        f = net(x)
        loss = lsr_cross_entropy(head(f, y), y)
        if aux is not None:
            loss = loss + 0.04 * aux(f, y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        if aux is not None:
            table.update(f, y, lr=0.5)
    return net.eval(), head.eval()


def separation(f: np.ndarray, y: np.ndarray) -> float:
    """mean distance between class centres / mean distance of a feature to its class centre."""
    centres = np.stack([f[y == c].mean(0) for c in range(10)])
    within = np.mean([np.linalg.norm(f[y == c] - centres[c], axis=1).mean() for c in range(10)])
    between = np.mean([np.linalg.norm(centres[i] - centres[j]) for i in range(10) for j in range(i + 1, 10)])
    return float(between / within)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--steps", type=int, default=5_000)
    ap.add_argument("--out", type=Path, default=Path("out/digits_toy"))
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    torch.set_num_threads(2)
    digits = load_digits()
    x = torch.tensor(digits.images / 16.0, dtype=torch.float32)[:, None]
    y = torch.tensor(digits.target)
    x_tr, x_te, y_tr, y_te = train_test_split(x, y, test_size=0.3, random_state=0, stratify=y)
    plt = pyplot()
    fig, axes = plt.subplots(1, 4, figsize=(18, 4.6))
    results = {}
    titles = {"softmax": "(a) softmax", "centre": "(b) softmax + centre", "dsa": "(c) softmax + DSA (Euclidean)",
              "dsa_angular": "(d) softmax + DSA (angular)"}
    for ax, kind in zip(axes, titles):
        t0 = time.time()
        net, head = train(kind, x_tr, y_tr, args.steps, args.seed)
        with torch.no_grad():
            f = net(x_te)
            acc = float((head(f, y_te).argmax(1) == y_te).float().mean())
        f, yy = f.numpy(), y_te.numpy()
        results[kind] = {"test_accuracy": acc, "separation": separation(f, yy), "seconds": time.time() - t0}
        for c in range(10):
            ax.scatter(f[yy == c, 0], f[yy == c, 1], s=4, label=str(c))
        ax.set_title(f"{titles[kind]}\nacc {acc:.3f}, separation {results[kind]['separation']:.2f}")
        print(f"{kind:12s} test accuracy {acc:.3f}  separation {results[kind]['separation']:.2f}  "
              f"({results[kind]['seconds']:.0f} s)")
    axes[-1].legend(markerscale=4, fontsize=7, loc="best")
    args.out.mkdir(parents=True, exist_ok=True)
    save_figure(fig, args.out / "features.png")
    (args.out / "results.json").write_text(json.dumps({"steps": args.steps, "seed": args.seed, **results}, indent=2))
    print(f"figure: {args.out / 'features.png'}")


if __name__ == "__main__":
    main()
