"""``facekit train seqface`` end to end on data the test makes: learns, resumes exactly, runs under torchrun with
the same result as one process, exports to state_dict / ONNX, and its model.pt feeds ``facekit bench``."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch
import yaml
from PIL import Image

from facekit.cli.main import main
from facekit.manifests.io import write_part
from facekit.manifests.lineage import write_lineage
from facekit.manifests.schemas import FACES, IDENTITIES
from tests.conftest import torchrun_facekit

COLOURS = [(220, 40, 40), (40, 200, 40), (40, 40, 220), (220, 220, 40)]


def _img(rng, colour, size=40):
    base = np.array(colour, np.float32)[None, None] * rng.uniform(0.7, 1.0)
    pattern = np.zeros((size, size, 3), np.float32)
    pattern[: size // 2] += 30 * (colour[0] > 100)  # identity-dependent layout, not only colour
    return np.clip(base + pattern + rng.normal(0, 12, (size, size, 3)), 0, 255).astype(np.uint8)


@pytest.fixture(scope="module")
def toy(tmp_path_factory):
    """4 identities x 6 images (identities manifest) and 3 sequences x 5 faces (faces manifest), 40x40 crops."""
    root = tmp_path_factory.mktemp("toy")
    rng = np.random.default_rng(0)
    rows = []
    for c, colour in enumerate(COLOURS):
        for i in range(6):
            rel = f"crops/id{c}/{i}.png"
            (root / "ids" / rel).parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(_img(rng, colour)).save(root / "ids" / rel)
            rows.append(dict(identity=f"id{c}", class_index=c, source_path=rel, status="ok", error=None, num_faces=1,
                             score=1.0, face_px=40.0, blur=100.0, crop_path=rel))
    write_part(root / "ids", IDENTITIES, "part", rows)
    write_lineage(root / "ids", "test", {"template": "seqface", "size": 40})
    faces = []
    for s in range(3):
        colour = (rng.integers(0, 255), rng.integers(0, 255), rng.integers(0, 255))
        for i in range(5):
            rel = f"crops/v{s}/{i}.png"
            (root / "seqs" / rel).parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(_img(rng, colour)).save(root / "seqs" / rel)
            faces.append(dict(sequence_id=f"v{s}#0", video_id=f"v{s}", frame_index=i, timestamp_sec=i / 25,
                              box_x1=0.0, box_y1=0.0, box_x2=40.0, box_y2=40.0, landmarks_5x2=[0.0] * 10, score=1.0,
                              blur=100.0, yaw=0.0, roll_deg=0.0, tracked=False, crop_path=rel))
    write_part(root / "seqs", FACES, "part", pd.DataFrame(faces))
    write_lineage(root / "seqs", "test", {"template": "seqface", "crop_size": 40})
    held = []  # 3 identities never trained on (colours and layout of their own), 5 images each
    for c, colour in enumerate([(200, 100, 200), (90, 200, 200), (130, 90, 40)]):
        for i in range(5):
            rel = f"crops/held{c}/{i}.png"
            (root / "held" / rel).parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(_img(rng, colour)).save(root / "held" / rel)
            held.append(dict(identity=f"held{c}", class_index=c, source_path=rel, status="ok", error=None,
                             num_faces=1, score=1.0, face_px=40.0, blur=100.0, crop_path=rel))
    write_part(root / "held", IDENTITIES, "part", held)
    recipe = {"data": {"identities": str(root / "ids"), "sequences": str(root / "seqs"), "load_size": 36,
                       "input_size": 32, "workers": 0},
              "model": {"backbone": "sphereface20", "embedding": 16},
              "loss": {"dsa": {"p": 0.5}},
              "optim": {"batch_size": 8, "steps": 6, "lr": 0.01, "milestones": [4]},
              "checkpoint_every": 3, "log_every": 1}
    (root / "recipe.yaml").write_text(yaml.safe_dump(recipe))
    return root


def _state(run):
    return torch.load(run / "model.pt", weights_only=True)["state_dict"]


@pytest.mark.slow
def test_train_resume_is_exact(toy, tmp_path):
    base = ["train", "seqface", "-r", str(toy / "recipe.yaml"), "-q"]
    assert main(base + ["-o", str(tmp_path / "a")]) == 0
    assert main(base + ["-o", str(tmp_path / "b"), "--set", "optim.steps=3"]) == 0
    assert main(["train", "seqface", "-o", str(tmp_path / "b"), "--resume", "--set", "optim.steps=6", "-q"]) == 0
    a, b = _state(tmp_path / "a"), _state(tmp_path / "b")
    assert all(torch.equal(a[k], b[k]) for k in a)
    metrics_a = pd.read_csv(tmp_path / "a" / "metrics.csv")
    metrics_b = pd.read_csv(tmp_path / "b" / "metrics.csv")
    assert list(metrics_b["step"]) == [1, 2, 3, 4, 5, 6]
    assert np.allclose(metrics_a["loss"], metrics_b["loss"])
    assert metrics_a["lr"].tolist() == pytest.approx([0.01] * 4 + [0.001] * 2)  # lr / 10 at the milestone
    ckpts = sorted(p.name for p in (tmp_path / "a" / "checkpoints").iterdir())
    assert ckpts == ["last.pt", "step_00000003.pt", "step_00000006.pt"]
    summary = json.loads((tmp_path / "a" / "summary.json").read_text())
    assert summary["data"]["num_identities"] == 4 and summary["data"]["num_sequences"] == 3
    assert summary["config"]["optim"]["batch_size"] == 8 and len(summary["data"]["fingerprint"]) == 16
    for png in ("batch_preview.png", "loss.png"):
        assert (tmp_path / "a" / png).stat().st_size > 1000
    assert any((tmp_path / "a" / "tb").iterdir())


@pytest.mark.slow
def test_loss_falls_and_verification_runs(toy, tmp_path):
    run = tmp_path / "run"
    assert main(["train", "seqface", "-r", str(toy / "recipe.yaml"), "-o", str(run), "-q", "--set", "optim.steps=40",
                 "--set", "optim.milestones=[]", "--set", "log_every=5", "--set", f"verify.identities={toy / 'held'}",
                 "--set", "verify.every=20"]) == 0
    m = pd.read_csv(run / "metrics.csv")
    assert m["loss"].iloc[-1] < 0.6 * m["loss"].iloc[0]
    assert m["accuracy"].iloc[-1] >= 0.75  # 4 identities: chance is 0.25
    assert m["verify_accuracy"].notna().sum() == 2
    summary = json.loads((run / "summary.json").read_text())
    # held-out identities: 3 x C(5, 2) = 30 genuine pairs and as many of the C(15, 2) - 30 = 75 impostors
    assert summary["verification"]["pairs"] == 60 and summary["verification"]["set"] == "identities:held"
    assert summary["verification"]["accuracy"] > 0.5


def test_centre_and_softmax_variants_run(toy, tmp_path):
    for i, (chief, aux) in enumerate((("softmax", "centre"), ("arcface", "none"), ("cosface", "dsa"))):
        assert main(["train", "seqface", "-r", str(toy / "recipe.yaml"), "-o", str(tmp_path / str(i)), "-q",
                     "--set", f"loss.chief={chief}", "--set", f"loss.auxiliary={aux}", "--set", "optim.steps=2"]) == 0
        m = pd.read_csv(tmp_path / str(i) / "metrics.csv")
        assert np.isfinite(m["loss"]).all() and list(m["step"]) == [1, 2]
        # Eq. 1: loss = chief + 0.04 x auxiliary; no auxiliary loss -> exactly the chief loss
        assert np.allclose(m["loss"], m["chief"] + 0.04 * m["auxiliary"], rtol=1e-5)
        assert (m["auxiliary"] == 0).all() if aux == "none" else (m["auxiliary"] > 0).all()
        # the chief loss of the first step is near ln(4 identities) for an untrained softmax, larger with margins
        assert m["chief"].iloc[0] > 0.5 * np.log(4)


def test_training_roots_with_two_templates_are_refused(toy, tmp_path, capsys):
    """build identities (seqface 144) + extract-sequences (arcface 112) would mix two face scales in a batch."""
    import shutil

    seqs = tmp_path / "seqs"
    shutil.copytree(toy / "seqs", seqs)
    write_lineage(seqs, "test", {"template": "arcface", "crop_size": 40})
    assert main(["train", "seqface", "-r", str(toy / "recipe.yaml"), "-o", str(tmp_path / "x"), "-q",
                 "--set", f"data.sequences={seqs}"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and str(toy / "ids") in err and str(seqs) in err
    assert "'seqface'" in err and "'arcface'" in err


def test_model_template_is_the_training_geometry():
    """name@A at size S = the template at A px, centre crop S. By hand: ArcFace's left eye (38.2946, 51.6963) at
    144 px is x 144/112 = (49.2359, 66.4667); the centre 128 crop shifts it by 8 -> (41.2359, 58.4667). SeqFace's
    144 template is ArcFace at 128 placed 8 px in, so its centre 128 crop is ArcFace at 128 exactly."""
    from facekit.align.templates import get_template

    eye = get_template("arcface@144", 128).as_array()[0]
    assert eye == pytest.approx([38.2946 * 144 / 112 - 8, 51.6963 * 144 / 112 - 8]) and \
        eye == pytest.approx([41.2359, 58.4667], abs=1e-4)
    assert get_template("seqface@144", 128).as_array() == pytest.approx(get_template("arcface", 128).as_array())
    assert get_template("arcface@144", 128).size == 128


def test_bad_settings_fail_in_one_line(toy, tmp_path, capsys):
    assert main(["train", "seqface", "-r", str(toy / "recipe.yaml"), "-o", str(tmp_path / "x"),
                 "--set", "optim.lrr=0.1"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("facekit: error: --set.optim: unknown setting 'lrr'") and len(err.splitlines()) == 1
    assert main(["train", "seqface", "-r", str(toy / "recipe.yaml"), "-o", str(tmp_path / "x"),
                 "--set", "optim.steps=many"]) == 2
    assert "optim.steps: expected int" in capsys.readouterr().err
    assert main(["train", "seqface", "-o", str(tmp_path / "nothing"), "--resume"]) == 2
    assert "no recipe.yaml" in capsys.readouterr().err


@pytest.mark.slow
def test_torchrun_two_processes_match_one(toy, tmp_path):
    """2 CPU ranks (gloo), each half of the global batch of 8, give the same model as one process."""
    assert main(["train", "seqface", "-r", str(toy / "recipe.yaml"), "-o", str(tmp_path / "one"), "-q"]) == 0
    proc = torchrun_facekit(["train", "seqface", "-r", str(toy / "recipe.yaml"), "-o", str(tmp_path / "two"), "-q",
                             "--device", "cpu"])
    assert proc.returncode == 0, proc.stderr[-2000:]
    one, two = _state(tmp_path / "one"), _state(tmp_path / "two")
    assert max(float((one[k] - two[k]).abs().max()) for k in one) < 1e-5
    c1 = torch.load(tmp_path / "one" / "checkpoints" / "last.pt", weights_only=True)["centres"]
    c2 = torch.load(tmp_path / "two" / "checkpoints" / "last.pt", weights_only=True)["centres"]
    assert c1.abs().sum() > 0 and torch.allclose(c1, c2, atol=1e-5)


@pytest.mark.slow
def test_export_state_dict_and_onnx_and_bench_loader(toy, tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["train", "seqface", "-r", str(toy / "recipe.yaml"), "-o", str(run), "-q", "--set",
                 "optim.steps=1"]) == 0
    assert main(["export", str(run), "-o", str(tmp_path / "w.pt")]) == 0
    assert main(["export", str(run / "model.pt"), "-o", str(tmp_path / "m.onnx")]) == 0
    out = capsys.readouterr().out
    diffs = [float(line.rsplit(" ", 1)[1]) for line in out.splitlines() if line.startswith("wrote")]
    assert diffs[0] == 0.0 and diffs[1] < 1e-4
    from facekit.embed.extractors import load_extractor

    ext = load_extractor(f"facekit:{run / 'model.pt'}")
    assert ext.input_size == 32 and ext.template == "seqface@36" and ext.flip is False  # the toy roots' template
    crops = np.random.default_rng(0).integers(0, 255, (3, 32, 32, 3), dtype=np.uint8)
    sd = torch.load(tmp_path / "w.pt", weights_only=True)
    from facekit.models import build_backbone

    bb = build_backbone("sphereface20", num_features=16, input_size=32).eval()
    bb.load_state_dict(sd)
    x = (torch.from_numpy(crops).permute(0, 3, 1, 2).float() - 127.5) / 128.0
    assert np.allclose(ext.embed(crops), bb(x).detach().numpy(), atol=1e-4)
    onnx = load_extractor(f"onnx:{tmp_path / 'm.onnx'}")  # the alignment travels in the ONNX metadata
    assert (onnx.input_size, onnx.template, onnx.flip) == (32, "seqface@36", False)
    assert np.allclose(onnx.embed(crops), bb(x).detach().numpy(), atol=1e-4)


def test_deterministic_flag(toy, tmp_path):
    """--deterministic switches torch's deterministic algorithms on for the run (recorded in summary.json) and
    off again after it; on CPU the model equals the run without it, bit for bit."""
    base = ["train", "seqface", "-r", str(toy / "recipe.yaml"), "-q", "--set", "optim.steps=2"]
    assert main(base + ["-o", str(tmp_path / "d"), "--deterministic"]) == 0
    assert not torch.are_deterministic_algorithms_enabled()
    assert main(base + ["-o", str(tmp_path / "n")]) == 0
    assert json.loads((tmp_path / "d" / "summary.json").read_text())["deterministic"] is True
    assert json.loads((tmp_path / "n" / "summary.json").read_text())["deterministic"] is False
    d, n = _state(tmp_path / "d"), _state(tmp_path / "n")
    assert all(torch.equal(d[k], n[k]) for k in d)


def test_a_new_run_needs_a_recipe_and_set_typos_blame_set(toy, tmp_path, capsys):
    assert main(["train", "seqface", "--set", "optim.steps=1", "-o", str(tmp_path / "a")]) == 2
    err = capsys.readouterr().err
    assert "a new run needs a recipe: -r recipes/seqface_" in err and "seqface_small_real.yaml" in err
    assert not (tmp_path / "a").exists()  # the paper-scale defaults never start
    assert main(["train", "seqface", "-r", str(toy / "recipe.yaml"), "--set", "optim.lrr=1", "-o",
                 str(tmp_path / "b")]) == 2
    assert capsys.readouterr().err.startswith("facekit: error: --set.optim: unknown setting 'lrr'")


def test_cpu_cost_estimate_after_the_first_steps(monkeypatch):
    """300,000 steps at 2 s each on a CPU: one note with ~167 hours and the small recipe; a GPU or a short run: none."""
    from facekit.train import run as run_mod

    clock = iter(range(0, 1000, 10))  # perf_counter is read after step 1 and after step 6: 10 s for 5 steps
    monkeypatch.setattr(run_mod.time, "perf_counter", lambda: float(next(clock)))
    est = run_mod.CostEstimate(torch.device("cpu"), 0, 300_000, "recipes/seqface_small_real.yaml", after=5)
    notes = [est.note(step) for step in range(1, 20)]
    lines = [n for n in notes if n]
    assert len(lines) == 1 and notes[5] == lines[0]
    assert "2.00 s a step" in lines[0] and "299,994 steps take about 167 hours" in lines[0]
    assert "-r recipes/seqface_small_real.yaml" in lines[0]
    assert run_mod.CostEstimate(torch.device("cpu"), 0, 30, "x").note(1) is None
    gpu = run_mod.CostEstimate(torch.device("cuda"), 0, 300_000, "x")
    assert all(gpu.note(s) is None for s in range(1, 20))


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _launch_two(commands_env: list[tuple[list[str], dict]]) -> list:
    """Start the processes together (they rendezvous), wait for both, return the CompletedProcess-like results."""
    import os
    import subprocess

    procs = [subprocess.Popen(cmd, env={**os.environ, "OMP_NUM_THREADS": "1", **env}, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for cmd, env in commands_env]
    outs = [p.communicate(timeout=300) for p in procs]
    return [(p.returncode, err) for p, (_, err) in zip(procs, outs)]


@pytest.mark.slow
def test_two_nodes_and_srun_without_torchrun_match_one_process(toy, tmp_path):
    """Multi-node: two torchrun launchers (--nnodes 2, one process each, c10d rendezvous on this machine), and
    SLURM: two processes started as srun starts them (SLURM_PROCID / SLURM_NTASKS / SLURM_LOCALID /
    SLURM_JOB_NODELIST, no torchrun): each gives the model of one process."""
    import sys

    recipe = ["train", "seqface", "-r", str(toy / "recipe.yaml"), "-q", "--device", "cpu"]
    assert main([*recipe, "-o", str(tmp_path / "one")]) == 0
    one = _state(tmp_path / "one")
    port = _free_port()
    nodes = [([sys.executable, "-m", "torch.distributed.run", "--nnodes=2", "--nproc_per_node=1",
               "--rdzv_backend=c10d", f"--rdzv_endpoint=127.0.0.1:{port}", "--rdzv_id=facekit-test", "-m", "facekit",
               *recipe, "-o", str(tmp_path / "nodes")], {}) for _ in range(2)]
    port = _free_port()
    srun = [([sys.executable, "-m", "facekit", *recipe, "-o", str(tmp_path / "srun")],
             {"SLURM_PROCID": str(r), "SLURM_NTASKS": "2", "SLURM_LOCALID": str(r), "SLURM_JOB_NODELIST": "localhost",
              "MASTER_PORT": str(port)}) for r in range(2)]
    for name, launch in (("nodes", nodes), ("srun", srun)):
        results = _launch_two(launch)
        assert all(code == 0 for code, _ in results), (name, [err[-1500:] for _, err in results])
        two = _state(tmp_path / name)
        assert max(float((one[k] - two[k]).abs().max()) for k in one) < 1e-5, name


def test_a_non_finite_step_is_skipped_before_any_centre_moves(toy, tmp_path, monkeypatch, capsys):
    """Step 3's loss is made NaN: nothing of it reaches the weights, the momenta or the centre table (the run
    equals one whose step 3 changed nothing: the other steps' centre updates are what the clean run makes), it is
    counted in metrics.csv and summary.json; steps that stay non-finite stop the run with one line."""
    import json

    import facekit.train.seqface as sf

    real = sf.lsr_cross_entropy
    calls = {"n": 0, "poison": {3}}

    def poisoned(logits, labels):
        calls["n"] += 1
        loss = real(logits, labels)
        return loss * float("nan") if calls["n"] in calls["poison"] else loss

    seen = []  # the steps whose update moved the centre table
    real_update = sf.CentreTable.update

    def spy(self, x, labels, lr, ok=None):
        before = self.centres.clone()
        real_update(self, x, labels, lr, ok)
        if not torch.equal(before, self.centres):
            seen.append(calls["n"])

    monkeypatch.setattr(sf, "lsr_cross_entropy", poisoned)
    monkeypatch.setattr(sf.CentreTable, "update", spy)
    base = ["train", "seqface", "-r", str(toy / "recipe.yaml"), "-q"]
    assert main(base + ["-o", str(tmp_path / "a")]) == 0
    assert seen == [1, 2, 4, 5, 6]  # the centre table never saw step 3
    metrics = pd.read_csv(tmp_path / "a" / "metrics.csv")
    assert metrics["skipped_steps"].tolist() == [0, 0, 1, 1, 1, 1]
    assert json.loads((tmp_path / "a" / "summary.json").read_text())["final"]["skipped_steps"] == 1
    state = _state(tmp_path / "a")
    assert all(torch.isfinite(v).all() for v in state.values())
    centres = torch.load(tmp_path / "a" / "checkpoints" / "last.pt", weights_only=True)["centres"]
    assert torch.isfinite(centres).all()
    capsys.readouterr()
    calls.update(n=0, poison={2, 3, 4, 5, 6})
    assert main(base + ["-o", str(tmp_path / "b"), "--set", "optim.max_nonfinite=3"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("facekit: error: step 4: 3 steps in a row had a non-finite loss")


def test_mixed_precision_modes(monkeypatch):
    from facekit.errors import InputError
    from facekit.train.precision import resolve_amp

    cpu, gpu = torch.device("cpu"), torch.device("cuda", 0)
    for mode in ("auto", "off", "float16", "bfloat16"):
        assert resolve_amp(mode, cpu).dtype is None  # CPU trains in float32 whatever the recipe says
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda: True)
    assert (resolve_amp("auto", gpu).dtype, resolve_amp("auto", gpu).scaler) == (torch.bfloat16, False)
    assert (resolve_amp("float16", gpu).dtype, resolve_amp("float16", gpu).scaler) == (torch.float16, True)
    assert resolve_amp("off", gpu).dtype is None
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda: False)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda d=None: "Tesla V100")
    assert (resolve_amp("auto", gpu).dtype, resolve_amp("auto", gpu).scaler) == (torch.float16, True)
    with pytest.raises(InputError, match="bfloat16 is not supported on Tesla V100"):
        resolve_amp("bfloat16", gpu)
    with pytest.raises(InputError, match="optim.amp: 'fp8' is not one of auto, off, float16, bfloat16"):
        resolve_amp("fp8", gpu)


def test_training_steps_do_not_wait_for_the_device(toy, tmp_path, monkeypatch):
    from tests.conftest import host_reads

    """Issue 23: between logging steps the host never reads a device value (loss, accuracy, the finiteness check,
    the centre updates all stay on the device); the logging step reads them once. Checked by recording every
    tensor-to-host read made from the training loop, the losses and the models during a 6-step run logging at 6."""
    import facekit.train.seqface as sf

    step = {"n": 0}
    real = sf.lsr_cross_entropy
    monkeypatch.setattr(sf, "lsr_cross_entropy", lambda *a: step.update(n=step["n"] + 1) or real(*a))
    files = ("facekit/train/seqface.py", "facekit/train/precision.py", "facekit/train/runlog.py",
             "facekit/losses/centres.py", "facekit/losses/dsa.py", "facekit/losses/heads.py", "facekit/losses/lsr.py",
             "facekit/models/sphereface.py")
    reads = host_reads(monkeypatch, files, lambda: step["n"], pictures=("_batch_preview",))
    assert main(["train", "seqface", "-r", str(toy / "recipe.yaml"), "-o", str(tmp_path / "run"), "-q",
                 "--set", "log_every=6", "--set", "checkpoint_every=6"]) == 0
    assert step["n"] == 6
    during = [r for r in reads if r[0] < 6]
    assert not during, f"host reads between logging steps: {during[:5]}"
    assert any(r[0] == 6 for r in reads)  # the logging step reads the window (the spy sees reads at all)


@pytest.mark.slow
def test_channels_last_and_compile_train_the_same_model(toy, tmp_path):
    """Issue 23's speed switches change how the network runs, not what it learns: optim.channels_last and
    optim.compile (torch.compile, inductor on CPU) give the plain run's losses and weights (float tolerance), and
    the saved model has the plain parameter names (no compile wrapper in model.pt)."""
    runs = {}
    for name, extra in (("plain", []), ("nhwc", ["--set", "optim.channels_last=true"]),
                        ("compiled", ["--set", "optim.compile=true"])):
        assert main(["train", "seqface", "-r", str(toy / "recipe.yaml"), "-o", str(tmp_path / name), "-q",
                     *extra]) == 0
        runs[name] = pd.read_csv(tmp_path / name / "metrics.csv")["loss"].to_numpy()
    plain = _state(tmp_path / "plain")
    for name in ("nhwc", "compiled"):
        np.testing.assert_allclose(runs[name], runs["plain"], rtol=1e-4)
        state = _state(tmp_path / name)
        assert state.keys() == plain.keys()
        for k in plain:
            torch.testing.assert_close(state[k], plain[k], rtol=1e-3, atol=1e-4)


def test_training_batches_travel_as_uint8(toy):
    """Issue 23: the loaders hand uint8 images to the trainer (normalised on its device)."""
    from facekit.recipes import build
    from facekit.train.seqface_config import SeqFaceConfig
    from facekit.train.seqface_data import FaceTrainingSet, MixedBatchSampler, load_training_data

    cfg = build(SeqFaceConfig, yaml.safe_load((toy / "recipe.yaml").read_text()), "recipe")
    data = load_training_data(cfg.data)
    item = MixedBatchSampler(data, 8, 0.5, 0, 0, 1, 0, 1).batch(0)[0]
    image, _ = FaceTrainingSet(data, cfg.data)[item]
    assert image.dtype == torch.uint8 and image.shape == (3, 32, 32)


@pytest.mark.slow
def test_training_from_insightface_recordio_equals_the_manifest_it_holds(toy, tmp_path):
    """Issue 28: data.identities may name insightface's train.rec (read without MXNet). A .rec holding the toy
    identities' images in manifest order (written by the test's own encoder of the published format, with
    insightface's header and identity records) trains the model the identities root trains."""
    from facekit.manifests.io import read_manifest
    from tests.datasets.test_recordio import ir_payload, write_rec

    df = read_manifest(toy / "ids", "identities")
    df = df[df["status"] == "ok"]
    images = [(k + 1, ir_payload(0, float(c), data=(toy / "ids" / p).read_bytes()))
              for k, (c, p) in enumerate(zip(df["class_index"], df["crop_path"]))]
    a = len(images) + 1
    ranges = [(1 + int(np.flatnonzero(df["class_index"].to_numpy() == c)[0]),
               1 + int(np.flatnonzero(df["class_index"].to_numpy() == c)[-1]) + 1) for c in range(4)]
    write_rec(tmp_path / "train.rec", [(0, ir_payload(2, 0.0, (float(a), float(a + 4)))), *images,
                                       *[(a + i, ir_payload(2, 0.0, r)) for i, r in enumerate(ranges)]])
    base = ["train", "seqface", "-r", str(toy / "recipe.yaml"), "-q", "--set", "optim.steps=3"]
    assert main(base + ["-o", str(tmp_path / "manifest")]) == 0
    assert main(base + ["-o", str(tmp_path / "rec"), "--set", f"data.identities={tmp_path / 'train.rec'}",
                        "--set", "data.template=seqface"]) == 0
    mine, theirs = _state(tmp_path / "manifest"), _state(tmp_path / "rec")
    for k in mine:
        torch.testing.assert_close(theirs[k], mine[k], rtol=0, atol=0)
    summary = json.loads((tmp_path / "rec" / "summary.json").read_text())
    assert summary["data"]["num_identities"] == 4 and "4 identities, 24 images" in summary["data"]["summary"]


@pytest.mark.slow
def test_checkpoints_keep_the_last_k(toy, tmp_path):
    """Issue 28: a long run does not fill the disk: only the last checkpoint_keep step copies stay (last.pt too)."""
    assert main(["train", "seqface", "-r", str(toy / "recipe.yaml"), "-o", str(tmp_path / "run"), "-q",
                 "--set", "checkpoint_every=1", "--set", "checkpoint_keep=2"]) == 0
    names = sorted(p.name for p in (tmp_path / "run" / "checkpoints").iterdir())
    assert names == ["last.pt", "step_00000005.pt", "step_00000006.pt"]


@pytest.mark.slow
def test_a_packed_root_trains_the_model_of_its_files(toy, tmp_path):
    """Issue 28: `facekit pack` puts the crops in RecordIO shards; the trainer reads them by the manifest's paths,
    so the packed roots give the same batches, hence the same model, bit for bit."""
    import shutil

    for name in ("ids", "seqs"):
        shutil.copytree(toy / name, tmp_path / name)
        assert main(["pack", str(tmp_path / name), "-q", "--shard-size", "4"]) == 0
    assert len(list((tmp_path / "seqs" / "packed").glob("faces-*.rec"))) == 4  # 15 faces in shards of 4
    base = ["train", "seqface", "-r", str(toy / "recipe.yaml"), "-q", "--set", "optim.steps=3"]
    assert main(base + ["-o", str(tmp_path / "files")]) == 0
    assert main(base + ["-o", str(tmp_path / "packed"), "--set", f"data.identities={tmp_path / 'ids'}",
                        "--set", f"data.sequences={tmp_path / 'seqs'}"]) == 0
    mine, theirs = _state(tmp_path / "files"), _state(tmp_path / "packed")
    for k in mine:
        torch.testing.assert_close(theirs[k], mine[k], rtol=0, atol=0)
    from facekit.datasets.crops import PackedCrops
    from facekit.recipes import build
    from facekit.train.seqface_config import SeqFaceConfig
    from facekit.train.seqface_data import load_training_data

    cfg = build(SeqFaceConfig, yaml.safe_load((toy / "recipe.yaml").read_text()), "recipe")
    cfg.data.identities, cfg.data.sequences = tmp_path / "ids", tmp_path / "seqs"
    data = load_training_data(cfg.data)
    assert isinstance(data.identities.images, PackedCrops) and isinstance(data.sequences.images, PackedCrops)


@pytest.mark.slow
def test_partial_fc_trains_the_model_of_the_full_head(toy, tmp_path, capsys):
    """Issue 28: loss.partial_fc shards the class weights over the ranks. One process (the head itself) and 2
    torchrun ranks (gloo; 2 of the 4 classes each) give the model of the full head in one process; each rank keeps
    its shard beside last.pt, resume needs the same number of ranks, and sampled classes (0.5) train too."""
    # the same start for all (a shard's own initialisation draws other numbers than the full head's rows)
    assert main(["train", "seqface", "-r", str(toy / "recipe.yaml"), "-q", "-o", str(tmp_path / "start"),
                 "--set", "optim.steps=1", "--set", "optim.lr=0.0"]) == 0
    base = ["train", "seqface", "-r", str(toy / "recipe.yaml"), "-q", "--set", f"model.init={tmp_path / 'start'}"]
    assert main(base + ["-o", str(tmp_path / "full")]) == 0
    assert main(base + ["-o", str(tmp_path / "pfc1"), "--set", "loss.partial_fc=true"]) == 0
    proc = torchrun_facekit(base + ["-o", str(tmp_path / "pfc2"), "--device", "cpu", "--set", "loss.partial_fc=true"])
    assert proc.returncode == 0, proc.stderr[-2000:]
    full = _state(tmp_path / "full")
    for run in ("pfc1", "pfc2"):
        mine = _state(tmp_path / run)
        assert max(float((full[k] - mine[k]).abs().max()) for k in full) < 1e-4, run
    shards = sorted(p.name for p in (tmp_path / "pfc2" / "checkpoints").glob("rank*of*.pt"))
    assert shards == ["rank000of002.pt", "rank001of002.pt"]
    w = [torch.load(tmp_path / "pfc2" / "checkpoints" / s, weights_only=True)["state"]["head"]["head.weight"]
         for s in shards]
    assert [len(x) for x in w] == [2, 2]
    capsys.readouterr()
    assert main(["train", "seqface", "-o", str(tmp_path / "pfc2"), "--resume", "--set", "optim.steps=7", "-q"]) == 2
    assert "no shard (class weights, centres) for rank 0 of 1" in capsys.readouterr().err
    proc = torchrun_facekit(base + ["-o", str(tmp_path / "sampled"), "--device", "cpu", "--set", "loss.partial_fc=true",
                                    "--set", "loss.sample_rate=0.5"])
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert np.isfinite(pd.read_csv(tmp_path / "sampled" / "metrics.csv")["loss"]).all()



@pytest.mark.slow
def test_sharded_centres_train_the_model_of_one_table(toy, tmp_path):
    """Issue 28: loss.shard_centres splits the centre table over the ranks: 2 torchrun ranks give the model and
    (their shards together) the centres of one process with one table; each rank keeps its rows beside last.pt."""
    base = ["train", "seqface", "-r", str(toy / "recipe.yaml"), "-q"]
    assert main(base + ["-o", str(tmp_path / "one")]) == 0
    proc = torchrun_facekit(base + ["-o", str(tmp_path / "two"), "--device", "cpu", "--set", "loss.shard_centres=true"])
    assert proc.returncode == 0, proc.stderr[-2000:]
    one, two = _state(tmp_path / "one"), _state(tmp_path / "two")
    assert max(float((one[k] - two[k]).abs().max()) for k in one) < 1e-5
    c1 = torch.load(tmp_path / "one" / "checkpoints" / "last.pt", weights_only=True)["centres"]
    parts = [torch.load(tmp_path / "two" / "checkpoints" / f"rank{r:03d}of002.pt", weights_only=True)
             for r in range(2)]
    c2 = torch.cat([p["state"]["centres"][:-1] for p in parts])  # each without its scratch row
    assert c1.abs().sum() > 0 and c2.shape == c1.shape and torch.allclose(c1, c2, atol=1e-5)
    assert torch.load(tmp_path / "two" / "checkpoints" / "last.pt", weights_only=True)["centres"] is None


def test_bin_verification_pairs_take_the_training_geometry():
    """Issue 24: insightface's .bin chips (arcface at 112) are re-aligned to the training template before the
    centre crop, not resized: five dots drawn at the ArcFace template's points land on the training template's."""
    import io

    from PIL import Image

    from facekit.align.templates import get_template
    from facekit.train.verify import _image

    chip = np.zeros((112, 112, 3), np.uint8)
    for x, y in get_template("arcface", 112).as_array():
        chip[int(round(y)) - 1:int(round(y)) + 2, int(round(x)) - 1:int(round(x)) + 2] = 255
    buf = io.BytesIO()
    Image.fromarray(chip).save(buf, format="PNG")
    out = _image(buf.getvalue(), 144, "arcface", "seqface@144")
    for x, y in get_template("seqface", 144).as_array():
        assert out[int(round(y)), int(round(x))].min() > 100, (x, y)  # each dot is where the template puts it
    resized = _image(buf.getvalue(), 144)  # what was done before: a resize, 12.5% off
    x, y = get_template("seqface", 144).as_array()[0]
    assert resized[int(round(y)), int(round(x))].max() < 50
    assert np.array_equal(_image(buf.getvalue(), 112, "arcface", "arcface@112"), chip)
