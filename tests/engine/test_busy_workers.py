"""Busy workers: with results taken as they finish, one long job at the head of the queue holds back no other
result; worker processes get their index, and ``--device`` spreads over a node's GPUs by it. No clock: the long
job waits until the test has seen every short job's result (and gives up after a minute, which fails the test)."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch

from facekit.device import resolve_device, set_worker_index
from facekit.engine.local import Engine


@dataclass(frozen=True)
class Job:
    job_id: str
    release: str  # the long job waits for this file


def _init() -> None:
    pass


def _work(job: Job) -> tuple[str, bool, int | None]:
    """(job id, whether the long job was released by the driver, this worker's index)."""
    from facekit import device

    released = True
    if job.job_id == "long":
        deadline = time.monotonic() + 60
        while not Path(job.release).exists() and time.monotonic() < deadline:
            time.sleep(0.02)
        released = Path(job.release).exists()
    return job.job_id, released, device._WORKER_INDEX


def _crashed(job: Job, reason: str):
    return job.job_id, False, None


def run_long_and_short(engine: Engine, tmp_path: Path, ordered: bool) -> list:
    release = tmp_path / "release"
    jobs = [Job("long", str(release))] + [Job(f"short{i}", str(release)) for i in range(7)]
    seen = []
    results = engine.map(jobs, _work, _init, (), _crashed, ordered=ordered)
    for res in results:
        seen.append(res)
        if sum(r[0].startswith("short") for r in seen) == 7:
            release.touch()  # every short result is in: let the long job end
    return seen


def test_one_long_job_holds_back_no_other_result(tmp_path):
    seen = run_long_and_short(Engine("local", 2), tmp_path, ordered=False)
    assert [r[0] for r in seen][-1] == "long" and len(seen) == 8
    assert seen[-1][1], "the long job was not released by the short results: they waited for it"
    assert {r[2] for r in seen} == {0, 1}  # two worker processes, indexed


def test_in_order_results_wait_for_the_head(tmp_path, monkeypatch):
    """The old behaviour, still what ``ordered=True`` (embeddings) gives: nothing before the head's result."""
    release = tmp_path / "release"
    release.touch()  # released at once: in order, the long job's result must come first
    seen = run_long_and_short(Engine("local", 2), tmp_path, ordered=True)
    assert [r[0] for r in seen] == ["long"] + [f"short{i}" for i in range(7)]


@pytest.mark.slow
def test_ray_takes_results_as_they_finish(tmp_path):
    pytest.importorskip("ray", reason="ray not installed (pip install 'facekit[ray]')")
    seen = run_long_and_short(Engine("ray", 2), tmp_path, ordered=False)
    assert [r[0] for r in seen][-1] == "long" and seen[-1][1]


def test_devices_round_robin_over_the_gpus(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 4)
    try:
        got = []
        for i in range(6):
            set_worker_index(i)
            got.append((str(resolve_device("cuda")), str(resolve_device("auto")),
                        str(resolve_device("cuda:0,cuda:2")), str(resolve_device("cuda:1"))))
        assert [g[0] for g in got] == ["cuda:0", "cuda:1", "cuda:2", "cuda:3", "cuda:0", "cuda:1"]
        assert [g[1] for g in got] == [g[0] for g in got]
        assert [g[2] for g in got] == ["cuda:0", "cuda:2"] * 3
        assert {g[3] for g in got} == {"cuda:1"}  # a named device stays itself
        set_worker_index(None)
        assert str(resolve_device("cuda")) == "cuda" and str(resolve_device("cuda:3,cuda:1")) == "cuda:3"
    finally:
        set_worker_index(None)


def test_a_bad_entry_of_a_device_list_is_one_line():
    from facekit.errors import InputError

    with pytest.raises(InputError, match="--device 'gpu7'"):
        resolve_device("cpu,gpu7")
