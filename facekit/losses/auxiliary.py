"""SeqFace's auxiliary losses by name (``loss.auxiliary``): each is built from the centre table and the recipe's
``loss`` section, and called as ``aux(x_bd, labels_b, generator)`` (the generator: DSA's seeded centre subset;
the others ignore it). ``none`` trains the chief loss alone."""

from __future__ import annotations

from typing import Any

from facekit.losses.centres import CentreLoss, CentreTable
from facekit.losses.dsa import DSALoss
from facekit.registry import Registry

AUXILIARY: Registry = Registry("auxiliary loss")  # name -> builder(table, loss_cfg) -> module or None


@AUXILIARY.register("dsa")
def dsa(table: CentreTable, loss_cfg: Any) -> DSALoss:
    """Eq. 6-11: discriminative sequence agglomeration, ``loss.dsa`` settings."""
    return DSALoss(table, **vars(loss_cfg.dsa))


@AUXILIARY.register("centre")
def centre(table: CentreTable, loss_cfg: Any) -> CentreLoss:
    """Eq. 2: the centre loss over identity and sequence centres alike."""
    return CentreLoss(table)


@AUXILIARY.register("none")
def none(table: CentreTable, loss_cfg: Any) -> None:
    return None
