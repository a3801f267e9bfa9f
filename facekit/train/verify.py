"""Verification during training: a pairs set (insightface ``.bin``, LFW ``pairs.txt`` + aligned tree, or a
held-out identities manifest) -> 10-fold accuracy of the current backbone (cosine distance, SeqFace 4.1)."""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from facekit.images import centre_crop, load_crop, to_tensor
from facekit.manifests.io import read_manifest
from facekit.metrics import kfold_accuracy, squared_distances
from facekit.train.seqface_config import DataConfig, VerifyConfig


@dataclass
class PairSet:
    name: str
    images: list  # Path or JPEG/PNG bytes
    a: np.ndarray  # (P,) image index
    b: np.ndarray
    same: np.ndarray  # (P,) bool
    fold: np.ndarray  # (P,) 0..9
    template: str | None = None  # the images' alignment ("arcface": insightface's 112 px chips); None: the training's


def _folds(n: int) -> np.ndarray:
    return np.arange(n) * 10 // max(n, 1)


def pairs_from_identities(root: Path, max_pairs: int, seed: int = 0) -> PairSet:
    """Every genuine pair of a held-out identities manifest (up to max_pairs/2) and as many random impostors."""
    df = read_manifest(root, "identities", columns=["identity", "status", "crop_path"])
    df = df[df["status"] == "ok"].reset_index(drop=True)
    who = df["identity"].to_numpy()
    rng = np.random.default_rng(seed)
    ii, jj = np.triu_indices(len(df), k=1)
    same = who[ii] == who[jj]
    gen, imp = np.flatnonzero(same), np.flatnonzero(~same)
    half = min(len(gen), len(imp), max_pairs // 2)
    pick = np.concatenate([rng.choice(gen, half, replace=False), rng.choice(imp, half, replace=False)])
    pick = pick[rng.permutation(len(pick))]
    images = [Path(root) / p for p in df["crop_path"]]
    return PairSet(f"identities:{Path(root).name}", images, ii[pick], jj[pick], same[pick], _folds(len(pick)))


def load_pair_set(cfg: VerifyConfig) -> PairSet | None:
    if cfg.bin is not None:
        from facekit.datasets.lfw import read_bin

        images, issame = read_bin(cfg.bin)
        n = len(issame)
        return PairSet(f"bin:{cfg.bin.name}", images, np.arange(n) * 2, np.arange(n) * 2 + 1, np.asarray(issame),
                       _folds(n), "arcface")
    if cfg.lfw_pairs is not None:
        from facekit.datasets.lfw import read_pairs

        pairs = read_pairs(cfg.lfw_pairs)
        names = sorted(set(pairs.image_a) | set(pairs.image_b))
        pos = {n: i for i, n in enumerate(names)}
        return PairSet("lfw", [Path(cfg.lfw_root) / n for n in names], np.array([pos[n] for n in pairs.image_a]),
                       np.array([pos[n] for n in pairs.image_b]), pairs.same, pairs.fold)
    if cfg.identities is not None:
        return pairs_from_identities(cfg.identities, cfg.max_pairs)
    return None


def _image(item, load_size: int, template: str | None = None, training: str | None = None) -> np.ndarray:
    """An image at ``load_size`` on the training geometry: chips aligned to another template (insightface's
    ``.bin``: arcface at 112) are re-aligned to the training template (``name@load_size``), not just resized."""
    if isinstance(item, (bytes, bytearray)):
        with Image.open(io.BytesIO(item)) as im:
            chip = np.asarray(im.convert("RGB"))
    else:
        chip = load_crop(item, load_size)
    if template is not None and training is not None:
        from facekit.align.templates import get_template
        from facekit.align.warp import warp_crops

        src = get_template(template, chip.shape[0])
        return warp_crops(chip[None], src, get_template(training, load_size))[0]
    if chip.shape[:2] != (load_size, load_size):
        chip = np.asarray(Image.fromarray(chip).resize((load_size, load_size), Image.BILINEAR))
    return chip


@torch.no_grad()
def embed_images(backbone: torch.nn.Module, images: list, data: DataConfig, mean: float, std: float,
                 device: torch.device, batch: int = 64, template: str | None = None,
                 training: str | None = None) -> np.ndarray:
    """L2-normalised features of the centre ``input_size`` crop (SeqFace: original image only, no flip); images on
    another ``template`` than the ``training`` one (``name@load_size``) are re-aligned first."""
    was_training = backbone.training
    backbone.eval()
    out = []
    for s in range(0, len(images), batch):
        x = torch.stack([to_tensor(centre_crop(_image(it, data.load_size, template, training), data.input_size),
                                   mean, std)
                         for it in images[s:s + batch]]).to(device)
        out.append(torch.nn.functional.normalize(backbone(x).float(), dim=1).cpu().numpy())
    backbone.train(was_training)
    return np.concatenate(out)


def verify(backbone: torch.nn.Module, pairs: PairSet, data: DataConfig, mean: float, std: float,
           device: torch.device, training: str | None = None) -> dict:
    """``training``: the training crops' geometry (``name@load_size``), which pairs on another template take."""
    feats = embed_images(backbone, pairs.images, data, mean, std, device, template=pairs.template,
                         training=training)
    acc = kfold_accuracy(squared_distances(feats[pairs.a], feats[pairs.b]), pairs.same, pairs.fold)
    return {"set": pairs.name, "pairs": int(len(pairs.same)), "accuracy": acc.mean, "std": acc.std}
