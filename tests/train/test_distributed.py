"""Collectives that work on every backend, and the launchers' rank variables (torchrun, SLURM's srun)."""

from __future__ import annotations

import pytest
import torch

from facekit.errors import InputError
from facekit.train import distributed


def test_a_cuda_rank_joins_a_group_that_takes_cpu_and_cuda_tensors(monkeypatch):
    """Under torchrun on GPUs the group must have a CPU backend too: a group made as NCCL alone stops at the first
    collective handed a CPU tensor. (Before the fix: init_process_group("nccl").)"""
    seen = {}
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "1")
    monkeypatch.setenv("LOCAL_RANK", "1")
    monkeypatch.setattr(torch.cuda, "set_device", lambda dev: seen.setdefault("device", dev))
    monkeypatch.setattr(distributed.dist, "is_initialized", lambda: False)
    monkeypatch.setattr(distributed.dist, "init_process_group", lambda backend: seen.setdefault("backend", backend))
    d, device = distributed.setup(torch.device("cuda"))
    assert seen["backend"] == "cpu:gloo,cuda:nccl" and device == torch.device("cuda", 1) == d.device
    assert (d.rank, d.world, d.local_rank) == (1, 2, 1)
    assert distributed.backend_for(torch.device("cpu")) == "gloo"


def test_all_mean_is_one_collective_on_the_ranks_device(monkeypatch):
    calls = []

    def fake_all_reduce(t):
        calls.append(t.device)
        t.mul_(2)  # as if the other rank held the same values

    monkeypatch.setattr(distributed.dist, "all_reduce", fake_all_reduce)
    d = distributed.Dist(0, 2, 0, torch.device("cpu"))
    assert distributed.all_mean({"loss": 1.5, "accuracy": 0.25}, d) == {"loss": 1.5, "accuracy": 0.25}
    assert calls == [torch.device("cpu")]
    assert distributed.all_mean({"x": 3.0}, distributed.Dist()) == {"x": 3.0}


@pytest.mark.parametrize("nodelist, host", [("gpu[07-09,12],cpu01", "gpu07"), ("a1,a2", "a1"), ("node042", "node042"),
                                            ("dgx-[001-004]", "dgx-001"), ("h[3,5]", "h3")])
def test_first_host_of_a_slurm_node_list(nodelist, host):
    assert distributed.first_host(nodelist) == host


def test_srun_rank_variables():
    env = {"SLURM_PROCID": "3", "SLURM_NTASKS": "8", "SLURM_LOCALID": "1", "SLURM_JOB_NODELIST": "gpu[10-13]"}
    assert distributed.launch_env(env) == {"RANK": "3", "WORLD_SIZE": "8", "LOCAL_RANK": "1", "MASTER_ADDR": "gpu10",
                                           "MASTER_PORT": "29500"}
    assert distributed.launch_env({**env, "WORLD_SIZE": "8"}) == {}  # torchrun inside srun: its variables win
    assert distributed.launch_env({"SLURM_PROCID": "0", "SLURM_NTASKS": "1"}) == {}  # one task: one process
    with pytest.raises(InputError, match="launch with torchrun inside srun"):
        distributed.launch_env({"SLURM_PROCID": "0", "SLURM_NTASKS": "2"})
