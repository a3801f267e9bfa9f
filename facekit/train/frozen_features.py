"""F of the aggregation paper: a facekit feature extractor, frozen, behind a differentiable re-alignment."""

from __future__ import annotations

import torch
from torch import nn

from facekit.align.templates import Template, get_template
from facekit.align.warp import template_warp
from facekit.embed.extractors import load_extractor


class FrozenFeatures(nn.Module):
    """F of the paper: a facekit feature extractor, frozen. Takes [-1, 1] images aligned to ``template`` (the
    aggregator's: its training frames' template at its image size) and re-aligns them to F's own template and input
    size (``facekit.align.warp``, differentiable) before F; ``None``: the images are on F's template already.
    ``scale`` multiplies the features (``model.feature_scale``)."""

    def __init__(self, spec: str, device: torch.device, template: Template | None = None, scale: float = 1.0) -> None:
        super().__init__()
        self.scale = scale
        self.extractor = load_extractor(spec, device)
        self.net = self.extractor.frozen()
        self.size = self.extractor.input_size
        self.own = get_template(self.extractor.template, self.size)
        self.template = template

    def train(self, mode: bool = True) -> "FrozenFeatures":
        return super().train(False)  # always eval: F's batch norm statistics never move

    def forward(self, images_b3hw: torch.Tensor) -> torch.Tensor:
        src = self.template or self.own.resized(images_b3hw.shape[-1])
        return self.extractor.forward(template_warp(images_b3hw, src, self.own)).float() * self.scale
