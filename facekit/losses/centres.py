"""The centre table shared by the centre loss and the DSA loss, its update (SeqFace Eq. 11) and the centre loss
(Eq. 2).

Centres are a buffer, not a parameter: the optimiser never sees them (no weight decay, no momentum) and the loss
gradient flows only to the features. Under DistributedDataParallel the update gathers every rank's features and
labels first, so all ranks apply the same update to identical tables.
"""

from __future__ import annotations

import torch
import torch.distributed as dist
from torch import nn

from facekit.losses.collectives import distributed, gather


def centre_index(labels_b: torch.Tensor, num_identities: int) -> torch.Tensor:
    """Identity label y >= 0 -> centre y; sequence label l < 0 -> centre C - 1 - l (after the C identities)."""
    return torch.where(labels_b >= 0, labels_b, num_identities - 1 - labels_b)


class CentreTable(nn.Module):
    """``centres`` (N, d), N = C identities + S sequences, initialised at zero (as the reference code). The losses
    read rows by global centre id (``rows``); ``update`` is Eq. 11."""

    def __init__(self, num_identities: int, num_sequences: int, dim: int) -> None:
        super().__init__()
        self.num_identities, self.num_sequences = num_identities, num_sequences
        self.register_buffer("centres", torch.zeros(num_identities + num_sequences, dim))

    @property
    def num_centres(self) -> int:
        return self.num_identities + self.num_sequences

    def index(self, labels_b: torch.Tensor) -> torch.Tensor:
        return centre_index(labels_b, self.num_identities)

    def rows(self, idx_k: torch.Tensor, gathered: bool = False) -> torch.Tensor:
        """Centres ``idx_k`` (global ids) -> (k, d). ``gathered``: ``idx_k`` is the same on every rank."""
        return self.centres[idx_k]

    def _write(self, idx_k: torch.Tensor, rows_kd: torch.Tensor) -> None:
        self.centres[idx_k] = rows_kd

    @torch.no_grad()
    def update(self, x_bd: torch.Tensor, labels_b: torch.Tensor, lr: float, ok: torch.Tensor | None = None) -> None:
        """Eq. 11: delta c_n = -sum_{k: y_k = n} (x_k - c_n) / 2 / (1 + #{k: y_k = n}); c_n <- c_n - lr * delta c_n.
        Only the centres of the batch's labels move (a sparse update: cost O(B^2 + B d), not O(N d)), with no
        data-dependent shapes, so the host never waits for the device. ``ok`` (a 0-d bool on the device): false
        leaves the table as it was (a skipped step)."""
        x_bd, labels_b = gather(x_bd.detach().float()), gather(labels_b)
        idx_b = self.index(labels_b)
        same_bb = (idx_b[:, None] == idx_b[None, :]).to(x_bd.dtype)  # samples that share a centre
        c_bd = self.rows(idx_b, gathered=True)
        diff_sum_bd = same_bb @ (x_bd - c_bd)  # row b: sum over the samples of b's centre
        delta_bd = -(diff_sum_bd / 2) / (1 + same_bb.sum(1, keepdim=True))
        new_bd = c_bd - lr * delta_bd
        if ok is not None:
            new_bd = torch.where(ok, new_bd, c_bd)
        # every sample of one centre writes its first sample's row: one value per centre, bit for bit
        self._write(idx_b, new_bd[same_bb.argmax(1)])


class ShardedCentreTable(CentreTable):
    """The table split over the ranks by contiguous id ranges (``loss.shard_centres``): each rank holds N / world
    rows (1.36 M x 512 float32 is 2.8 GB; 8 ranks hold 350 MB each) plus one scratch row. A step's rows (the
    batch's centres, DSA's subset) are assembled with one all-reduce (each row from its owner, zeros elsewhere);
    Eq. 11's new rows, the same on every rank (the features are gathered), are written by their owners. No
    data-dependent shapes: the host never waits for the device. Checkpoints keep each rank's rows beside last.pt."""

    def __init__(self, num_identities: int, num_sequences: int, dim: int, rank: int, world: int) -> None:
        nn.Module.__init__(self)
        from facekit.losses.partial_fc import shard_range

        self.num_identities, self.num_sequences = num_identities, num_sequences
        self.start, self.num_local = shard_range(num_identities + num_sequences, rank, world)
        self.register_buffer("centres", torch.zeros(self.num_local + 1, dim))  # + the scratch row

    def _local(self, idx_k: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        local_k = idx_k - self.start
        mine_k = (local_k >= 0) & (local_k < self.num_local)
        return torch.where(mine_k, local_k, self.num_local), mine_k  # others point at the scratch row

    def rows(self, idx_k: torch.Tensor, gathered: bool = False) -> torch.Tensor:
        """Each rank fills the rows it owns, one all-reduce. Every rank's request is gathered first (each may ask
        for other rows: its own batch's centres), unless ``gathered`` says it is the same on every rank already
        (Eq. 11's, after its features were gathered); this rank's part comes back."""
        if not distributed():
            return self.centres[self._local(idx_k)[0]]
        all_k = idx_k if gathered else gather(idx_k)
        at_k, mine_k = self._local(all_k)
        rows_kd = torch.where(mine_k[:, None], self.centres[at_k], 0.0)
        dist.all_reduce(rows_kd)
        if gathered:
            return rows_kd
        k, rank = len(idx_k), dist.get_rank()
        return rows_kd[rank * k:(rank + 1) * k]

    def _write(self, idx_k: torch.Tensor, rows_kd: torch.Tensor) -> None:
        at_k, _ = self._local(idx_k)
        self.centres[at_k] = rows_kd  # the scratch row takes the others' rows: never read


class CentreLoss(nn.Module):
    """Centre loss (Wen et al.; SeqFace Eq. 2) averaged over the batch: L_C = 1/(2K) sum_k ||x_k - c_{y_k}||^2.
    Identity and sequence samples are treated alike, each pulled to its own centre."""

    def __init__(self, table: CentreTable) -> None:
        super().__init__()
        self.table = table

    def forward(self, x_bd: torch.Tensor, labels_b: torch.Tensor,
                generator: torch.Generator | None = None) -> torch.Tensor:  # generator: unused (one call for all)
        c_bd = self.table.rows(self.table.index(labels_b))
        return 0.5 * (x_bd.float() - c_bd).pow(2).sum(dim=1).mean()
