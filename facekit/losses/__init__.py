"""SeqFace's losses: chief classification heads with LSR (Eq. 3-5), centre loss (Eq. 2), DSA loss (Eq. 6-11).

Label convention everywhere (SeqFace reference code): identity samples carry their class 0..C-1; sequence samples
carry -1..-S. The centre table holds identity centres first, then sequence centres: label l < 0 -> centre C - 1 - l.
"""

from facekit.losses.auxiliary import AUXILIARY
from facekit.losses.centres import CentreLoss, CentreTable, centre_index
from facekit.losses.dsa import DSALoss
from facekit.losses.heads import HEADS, ArcFaceHead, CosFaceHead, L2SphereFaceHead, SoftmaxHead, build_head
from facekit.losses.lsr import lsr_cross_entropy

__all__ = ["AUXILIARY", "ArcFaceHead", "CentreLoss", "CentreTable", "CosFaceHead", "DSALoss", "HEADS",
           "L2SphereFaceHead", "SoftmaxHead", "build_head", "centre_index", "lsr_cross_entropy"]
