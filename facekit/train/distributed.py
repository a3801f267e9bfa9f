"""DistributedDataParallel plumbing. A trainer calls ``setup()`` once: launched by ``torchrun`` (RANK /
WORLD_SIZE / LOCAL_RANK / MASTER_ADDR in the environment, one node or several) or by SLURM's ``srun`` alone
(SLURM_PROCID / SLURM_NTASKS / SLURM_LOCALID, the address from the job's node list), it joins the process group;
alone it does nothing.

On CUDA the group is ``cpu:gloo,cuda:nccl``: NCCL has no CPU backend, so a group created as NCCL alone stops at
the first collective handed a CPU tensor ("No backend type associated with device type cpu"). Collectives here
also put their tensors on the rank's device, which every backend of the group can take.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field

import torch
import torch.distributed as dist

from facekit.errors import InputError


@dataclass(frozen=True)
class Dist:
    rank: int = 0
    world: int = 1
    local_rank: int = 0
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))  # where collective tensors live

    @property
    def main(self) -> bool:
        return self.rank == 0


def backend_for(device: torch.device) -> str:
    """The process-group backend for a rank on ``device``: NCCL for CUDA tensors with gloo beside it for CPU ones."""
    return "cpu:gloo,cuda:nccl" if device.type == "cuda" else "gloo"


def first_host(nodelist: str) -> str:
    """The first host of a SLURM node list: ``gpu[07-09,12],cpu01`` -> ``gpu07``; ``a1,a2`` -> ``a1``."""
    m = re.match(r"([^,\[]+)(?:\[([^\]]+)\])?", nodelist.strip())
    if not m or not m.group(1):
        raise InputError(f"SLURM_JOB_NODELIST {nodelist!r}: cannot read its first host")
    prefix, ranges = m.group(1), m.group(2)
    return prefix + ranges.split(",")[0].split("-")[0] if ranges else prefix


def launch_env(environ: dict | None = None) -> dict[str, str]:
    """RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR and MASTER_PORT as ``init_process_group`` reads them: torchrun's
    when present, else derived from SLURM's for an ``srun`` launch without torchrun (MASTER_PORT from the
    environment or 29500), else {} (one process)."""
    env = os.environ if environ is None else environ
    if "WORLD_SIZE" in env:
        return {}  # torchrun (or the user) set them
    if int(env.get("SLURM_NTASKS", "1")) <= 1 or "SLURM_PROCID" not in env:
        return {}
    nodelist = env.get("SLURM_JOB_NODELIST") or env.get("SLURM_NODELIST")
    if not nodelist and "MASTER_ADDR" not in env:
        raise InputError("srun with several tasks but no SLURM_JOB_NODELIST: launch with torchrun inside srun "
                         "(one task per node), see the README's SLURM script")
    return {"RANK": env["SLURM_PROCID"], "WORLD_SIZE": env["SLURM_NTASKS"],
            "LOCAL_RANK": env.get("SLURM_LOCALID", "0"),
            "MASTER_ADDR": env.get("MASTER_ADDR") or first_host(nodelist),
                "MASTER_PORT": env.get("MASTER_PORT", "29500")}


def launch_rank() -> int:
    """This process's global rank as its launcher (torchrun or srun) gives it, before any process group exists."""
    return int({**os.environ, **launch_env()}.get("RANK", "0"))


def setup(device: torch.device) -> tuple[Dist, torch.device]:
    """Join the process group when launched by torchrun or srun; returns the rank info and this rank's device."""
    os.environ.update(launch_env())
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world == 1:
        return Dist(device=device), device
    rank, local = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
    if device.type == "cuda":
        device = torch.device("cuda", local)
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        dist.init_process_group(backend_for(device))
    return Dist(rank, world, local, device), device


def barrier(d: Dist) -> None:
    if d.world > 1:
        dist.barrier()


def teardown(d: Dist) -> None:
    if d.world > 1 and dist.is_initialized():
        dist.destroy_process_group()


def clip_global_grad_norm(replicated: list[torch.nn.Parameter], sharded: list[torch.nn.Parameter],
                          max_norm: float) -> torch.Tensor:
    """The gradient norm over the whole model when some parameters are split over the ranks (Partial FC's class
    shards; the ``replicated`` ones are equal on every rank after DDP's all-reduce), and every gradient scaled by
    min(1, max_norm / norm): the same norm, hence the same clipping and skip verdict, on every rank."""
    grads_r = [p.grad for p in replicated if p.grad is not None]
    grads_s = [p.grad for p in sharded if p.grad is not None]
    sq = torch.nn.utils.get_total_norm(grads_r).float() ** 2 if grads_r else torch.zeros(())
    shard_sq = sum((g.float().pow(2).sum() for g in grads_s), torch.zeros((), device=sq.device))
    if dist.is_available() and dist.is_initialized():
        dist.all_reduce(shard_sq)
    norm = (sq + shard_sq).sqrt()
    coef = (max_norm / (norm + 1e-6)).clamp(max=1.0)
    if grads_r or grads_s:
        torch._foreach_mul_(grads_r + grads_s, coef)
    return norm


def all_mean(values: dict[str, float], d: Dist) -> dict[str, float]:
    """Mean of each scalar over ranks (for logging): one collective for all of them, on the rank's device."""
    if d.world == 1:
        return dict(values)
    t = torch.tensor(list(values.values()), dtype=torch.float64, device=d.device)
    dist.all_reduce(t)
    return dict(zip(values, (t / d.world).tolist()))
