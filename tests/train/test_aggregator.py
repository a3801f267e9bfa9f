"""Face Aggregation Network: the U-Net's set properties and the losses against hand-computed numbers."""

from __future__ import annotations

import math

import pytest
import torch

from facekit.losses.aggregation import (
    IdentityCentres,
    adversarial_d_loss,
    adversarial_g_loss,
    discriminative_loss,
    reconstruction_avg_loss,
    total_variation_loss,
)
from facekit.models.aggregator import Discriminator, FaceAggregator

SMALL = dict(widths=(8, 8, 16, 16), stem=8)


@pytest.fixture(scope="module")
def net():
    torch.manual_seed(0)
    return FaceAggregator(**SMALL).eval()


def test_permutation_invariant(net):
    faces = torch.randn(1, 5, 3, 32, 32)
    ref = net(faces)
    for perm in [(4, 3, 2, 1, 0), (1, 0, 3, 4, 2), (2, 4, 1, 0, 3)]:
        assert torch.allclose(net(faces[:, list(perm)]), ref, atol=1e-5)


@pytest.mark.parametrize("n", [1, 2, 10, 37])
def test_any_set_size(net, n):
    out = net(torch.randn(2, n, 3, 32, 32))
    assert out.shape == (2, 3, 32, 32) and torch.isfinite(out).all()


def test_mixed_set_sizes_equal_one_by_one(net):
    sizes = [1, 3, 6]
    sets = [torch.randn(n, 3, 32, 32) for n in sizes]
    batch = torch.zeros(3, 6, 3, 32, 32)
    mask = torch.zeros(3, 6, dtype=torch.bool)
    for i, s in enumerate(sets):
        batch[i, :len(s)], mask[i, :len(s)] = s, True
    batch[0, 1:] = 100.0  # padding must never leak into the result, whatever its values
    out = net(batch, mask)
    for i, s in enumerate(sets):
        assert torch.allclose(out[i], net(s[None])[0], atol=1e-5)


def test_paper_layout_112_to_7_and_discriminator():
    g = FaceAggregator()
    sizes = []
    hook = [blk.register_forward_hook(lambda m, i, o: sizes.append(o.shape[-1])) for blk in g.enc_down]
    out = g(torch.randn(1, 2, 3, 112, 112))
    assert sizes == [56, 28, 14, 7] and out.shape == (1, 3, 112, 112)
    for h in hook:
        h.remove()
    d = Discriminator()
    assert d.convs(torch.randn(1, 3, 112, 112)).shape[-1] == 28 and d(out).shape == (1,)
    elu = sum(isinstance(m, torch.nn.ELU) for m in g.modules())
    assert elu == 1 + 2 * 4 + 3 * 4 + 1  # stem, encoder 1x1 + 3x3, decoder deconv + 1x1 + 3x3, first head conv


def test_discriminative_loss_by_hand():
    # d = 1. f_P = 0, inputs at 2 and 3 -> alpha = min(4, 9) = 4. f_A = 1: ||A - P||^2 = 1 -> (1 - 4)_+ = 0.
    # f_N = 5: ||A - N||^2 = 16 -> (32 - 16)_+ = 16. Second sample: f_A = 3, P = 0, inputs 1, 2 -> alpha 1:
    # (9 - 1)_+ = 8; N = 10: ||3 - 10||^2 = 49 -> 0. Mean (16 + 8) / 2 = 12.
    f_a, f_p, f_n = torch.tensor([[1.0], [3.0]]), torch.zeros(2, 1), torch.tensor([[5.0], [10.0]])
    f_in = torch.tensor([[[2.0], [3.0]], [[1.0], [2.0]]])
    assert discriminative_loss(f_a, f_p, f_n, f_in).item() == pytest.approx(12.0)
    # masking the second member of set 1 leaves alpha at 4 (its only member 2); masking set 2's first member
    # makes alpha 4: (9 - 4)_+ = 5 -> (16 + 5) / 2 = 10.5
    mask = torch.tensor([[True, False], [False, True]])
    assert discriminative_loss(f_a, f_p, f_n, f_in, mask).item() == pytest.approx(10.5)


def test_reconstruction_losses_by_hand():
    # Eq. 8: inputs (0,0), (2,4) -> mean (1,2); f_A = (4,6): ||(3,4)||^2 = 25
    f_in = torch.tensor([[[0.0, 0.0], [2.0, 4.0]]])
    assert reconstruction_avg_loss(torch.tensor([[4.0, 6.0]]), f_in).item() == pytest.approx(25.0)
    # Eq. 10: first sighting sets c = (f_P + sum f_In) / (N + 1) = ((3,2) + (2,4)) / 3 = (5/3, 2)
    cen = IdentityCentres(3, 2, rate=0.5)
    cen.update(torch.tensor([[3.0, 2.0]]), f_in, torch.tensor([1]))
    assert torch.allclose(cen.centres[1], torch.tensor([5 / 3, 2.0]))
    # second: sample mean ((0,0) + (0,0) + (6,6)) / 3 = (2,2); c = 0.5 (5/3, 2) + 0.5 (2, 2) = (11/6, 2)
    cen.update(torch.tensor([[6.0, 6.0]]), torch.zeros(1, 2, 2), torch.tensor([1]))
    assert torch.allclose(cen.centres[1], torch.tensor([11 / 6, 2.0]))
    # Eq. 9: f_A = (11/6, 5) -> ||(0, 3)||^2 = 9; other identities untouched
    assert cen.loss(torch.tensor([[11 / 6, 5.0]]), torch.tensor([1])).item() == pytest.approx(9.0)
    assert cen.centres[0].abs().sum() == 0 and not cen.seen[2]



def test_centre_update_eq10_in_batch_order_against_a_loop():
    """Batches with one identity several times, some identities unseen: the batched update equals Eq. 10 applied
    sample by sample in batch order (a new centre starts at its first sample); ``ok`` false changes nothing."""
    gen = torch.Generator().manual_seed(1)
    cen = IdentityCentres(6, 3, rate=0.5)
    centres, seen = torch.zeros(6, 3, dtype=torch.float64), [False] * 6
    for _ in range(4):
        ids = torch.randint(0, 6, (7,), generator=gen)
        f_p, f_in = torch.randn(7, 3, generator=gen), torch.randn(7, 4, 3, generator=gen)
        for j, s in zip(ids.tolist(), ((f_p + f_in.sum(1)) / 5).double()):
            centres[j] = 0.5 * centres[j] + 0.5 * s if seen[j] else s
            seen[j] = True
        cen.update(f_p, f_in, ids)
        assert torch.allclose(cen.centres.double(), centres, atol=1e-5)
        assert cen.seen.tolist() == seen
    before = cen.centres.clone()
    cen.update(torch.full((2, 3), float("nan")), torch.zeros(2, 4, 3), torch.tensor([0, 5]), ok=torch.tensor(False))
    assert torch.equal(cen.centres, before) and cen.seen.tolist() == seen

def test_centre_loss_ignores_unseen_centres():
    """Eq. 9 before any Eq. 10 update: an unseen centre is the zero vector; it must not pull f_A towards 0.
    f_A of norm 20 against an unseen centre would cost 400."""
    cen = IdentityCentres(3, 2, rate=0.5)
    f_a = torch.tensor([[12.0, 16.0], [1.0, 2.0]], requires_grad=True)  # |(12, 16)| = 20
    loss = cen.loss(f_a, torch.tensor([0, 2]))
    loss.backward()
    assert loss.item() == 0.0 and f_a.grad.abs().sum() == 0
    # identity 2 seen at (1, 1); identity 0 still unseen (counts 0): (0 + ||(1,2) - (1,1)||^2) / 2 = 0.5
    cen.update(torch.tensor([[1.0, 1.0]]), torch.tensor([[[1.0, 1.0]]]), torch.tensor([2]))
    assert cen.loss(f_a, torch.tensor([0, 2])).item() == pytest.approx(0.5)
    # both seen: identity 0 at (0, 0) after its update -> (400 + 1) / 2
    cen.update(torch.zeros(1, 2), torch.zeros(1, 1, 2), torch.tensor([0]))
    assert cen.loss(f_a, torch.tensor([0, 2])).item() == pytest.approx(200.5)


def test_adversarial_losses_by_hand():
    # D(A) = sigmoid(0) = 0.5: L_G = -log 0.5 = 0.693147. D(P) = sigmoid(ln 3) = 0.75:
    # L_D = -log(1 - 0.5) - log 0.75 = 0.693147 + 0.287682 = 0.980829
    assert adversarial_g_loss(torch.tensor([0.0])).item() == pytest.approx(0.693147, abs=1e-6)
    d_loss = adversarial_d_loss(torch.tensor([0.0]), torch.tensor([math.log(3)]))
    assert d_loss.item() == pytest.approx(0.980829, abs=1e-6)


def test_total_variation_by_hand():
    # one channel 2x2 [[0, 1], [3, 5]]: horizontal (1-0)^2 + (5-3)^2 = 5; vertical (3-0)^2 + (5-1)^2 = 25 -> 30,
    # three identical channels -> 90
    img = torch.tensor([[0.0, 1.0], [3.0, 5.0]]).expand(1, 3, 2, 2)
    assert total_variation_loss(img).item() == pytest.approx(90.0)


def test_gradients_reach_every_aggregator_weight():
    g = FaceAggregator(**SMALL)
    g(torch.randn(2, 3, 3, 32, 32)).square().mean().backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in g.parameters())


# -- training end to end on data the test makes ------------------------------------------------------------------
import json  # noqa: E402

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import yaml  # noqa: E402
from PIL import Image  # noqa: E402

from facekit.cli.main import main  # noqa: E402
from facekit.manifests.io import write_part  # noqa: E402
from facekit.manifests.schemas import FRAMES  # noqa: E402


@pytest.fixture(scope="module")
def frames_root(tmp_path_factory):
    """5 identities x 2 videos x 4 frames (32x32 crops) as an extract-frames manifest, a random facekit backbone
    as the frozen extractor, and a recipe."""
    from facekit.models import build_backbone
    from facekit.models.checkpoint import save_backbone

    root = tmp_path_factory.mktemp("frames")
    rng = np.random.default_rng(0)
    rows = []
    for i in range(5):
        colour = rng.integers(30, 220, 3)
        for v in range(2):
            for f in range(4):
                img = np.clip(colour + rng.normal(0, 20, (32, 32, 3)), 0, 255).astype(np.uint8)
                rel = f"crops/id{i}/v{v}/{f}.jpg"
                (root / rel).parent.mkdir(parents=True, exist_ok=True)
                Image.fromarray(img).save(root / rel)
                rows.append(dict(utterance_id=f"id{i}/v{v}/00001", identity=f"id{i}", video=f"v{v}", frame_index=f,
                                 timestamp_sec=f / 25, box_x1=0.0, box_y1=0.0, box_x2=32.0, box_y2=32.0,
                                 landmarks_5x2=[0.0] * 10, score=1.0, blur=50.0, crop_path=rel))
    write_part(root, FRAMES, "part", pd.DataFrame(rows))
    torch.manual_seed(0)
    net = build_backbone("sphereface20", num_features=16, input_size=32, widths=(8, 8, 16, 16))
    save_backbone(root / "f.pt", "sphereface20", {"num_features": 16, "input_size": 32, "widths": [8, 8, 16, 16]},
                  net, "arcface", 32, 127.5, 128.0, False)
    recipe = {"data": {"frames": str(root), "set_size": 3, "image_size": 32, "holdout_identities": 2, "workers": 0},
              "model": {"widths": [8, 8, 16, 16], "stem": 8, "discriminator_widths": [8, 8, 8, 8],
                        "extractor": f"facekit:{root / 'f.pt'}"},
              "optim": {"batch_size": 4, "steps": 4, "lr": 1e-3, "lr_late": 2.5e-4, "drop_step": 2},
              "checkpoint_every": 2, "log_every": 1, "grid_every": 2}
    (root / "recipe.yaml").write_text(yaml.safe_dump(recipe))
    return root


def _g(run):
    return torch.load(run / "aggregator.pt", weights_only=True)["state_dict"]


def test_train_aggregator_runs_resumes_and_reports(frames_root, tmp_path):
    base = ["train", "aggregator", "-r", str(frames_root / "recipe.yaml"), "-q", "--device", "cpu"]
    assert main(base + ["-o", str(tmp_path / "a")]) == 0
    assert main(base + ["-o", str(tmp_path / "b"), "--set", "optim.steps=2"]) == 0
    assert main(["train", "aggregator", "-o", str(tmp_path / "b"), "--resume", "--set", "optim.steps=4", "-q"]) == 0
    a, b = _g(tmp_path / "a"), _g(tmp_path / "b")
    assert all(torch.equal(a[k], b[k]) for k in a)
    m = pd.read_csv(tmp_path / "a" / "metrics.csv")
    assert list(m["step"]) == [1, 2, 3, 4] and m["lr"].tolist() == pytest.approx([1e-3, 1e-3, 2.5e-4, 2.5e-4])
    assert {"loss_g", "loss_d", "dis", "rec", "adv", "tv"} <= set(m.columns)
    held = json.loads((tmp_path / "a" / "heldout.json").read_text())
    assert held["sets"] == 4 and held["genuine_pairs"] == 4 * 4 and held["impostor_pairs"] == 4 * 8
    assert held["aggregated_closer_than_frames"] * held["genuine_pairs"] == \
        pytest.approx(round(held["aggregated_closer_than_frames"] * held["genuine_pairs"]))  # a count of pairs
    blurred = held["blurred"]  # the same sets with 9 of 10 members motion-blurred (kernel 17): other inputs
    assert blurred["blur_kernel"] == 17 and blurred["genuine_pairs"] == held["genuine_pairs"]
    assert blurred["genuine"]["input_frames"] != held["genuine"]["input_frames"]
    assert set(held["aggregated_closer_than"]) == {"input_frames", "average_feature", "random_frame",
                                                   "best_score_frame"}
    for png in ("grids/step_00000001.png", "grids/step_00000002.png", "grids/step_00000004.png", "heldout.png",
                "heldout_blurred.png", "loss.png"):
        assert (tmp_path / "a" / png).stat().st_size > 500, png


def test_frozen_extractor_gets_no_updates_but_passes_gradients(frames_root):
    from facekit.train.frozen_features import FrozenFeatures

    feats = FrozenFeatures(f"facekit:{frames_root / 'f.pt'}", torch.device("cpu"))
    before = {k: v.clone() for k, v in feats.net.state_dict().items()}
    x = torch.randn(2, 3, 64, 64, requires_grad=True)  # resized to the extractor's 32 px inside
    feats(x).square().sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    assert all(p.grad is None for p in feats.net.parameters())
    assert all(torch.equal(before[k], v) for k, v in feats.net.state_dict().items())


def test_heldout_people_by_name(frames_root, tmp_path, capsys):
    from facekit.train.aggregator_config import FrameSetDataConfig
    from facekit.train.framesets import load_frame_sets

    data = load_frame_sets(FrameSetDataConfig(frames=frames_root, holdout_identities=["id0", "id3"]))
    held = sorted({data.identities[data.identity_of_video[v]] for v in data.heldout_videos})
    assert held == ["id0", "id3"] and len(data.train_videos) == 6 and data.scores.shape == (40,)
    assert main(["train", "aggregator", "-r", str(frames_root / "recipe.yaml"), "-o", str(tmp_path / "x"), "-q",
                 "--set", 'data.holdout_identities=["id9"]']) == 2
    assert "data.holdout_identities: id9 not among the identities" in capsys.readouterr().err


def test_feature_scale_multiplies_fs_features(frames_root):
    from facekit.train.frozen_features import FrozenFeatures

    x = torch.rand(2, 3, 32, 32) * 2 - 1
    one = FrozenFeatures(f"facekit:{frames_root / 'f.pt'}", torch.device("cpu"))
    seven = FrozenFeatures(f"facekit:{frames_root / 'f.pt'}", torch.device("cpu"), scale=7.0)
    with torch.no_grad():
        assert torch.allclose(seven(x), 7 * one(x), rtol=1e-5, atol=1e-6)


def test_aggregator_needs_two_identities_with_two_videos(frames_root, tmp_path, capsys):
    assert main(["train", "aggregator", "-r", str(frames_root / "recipe.yaml"), "-o", str(tmp_path / "x"),
                 "--set", "data.holdout_identities=4", "-q"]) == 2
    err = capsys.readouterr().err
    assert "need at least 6 identities" in err and len(err.strip().splitlines()) == 1


def test_aggregate_command_from_folders_and_manifest(frames_root, tmp_path, capsys):
    from facekit.manifests.io import read_manifest

    run = tmp_path / "run"
    assert main(["train", "aggregator", "-r", str(frames_root / "recipe.yaml"), "-o", str(run), "-q",
                 "--set", "optim.steps=1"]) == 0
    out = tmp_path / "agg"
    assert main(["aggregate", "--model", str(run), "--manifest", str(frames_root), "--group", "identity,video",
                 "-o", str(out), "-q", "--device", "cpu"]) == 0
    df = read_manifest(out, "aggregates")
    assert len(df) == 10 and set(df["num_inputs"]) == {4} and all(len(f) == 16 for f in df["feature"])
    assert Image.open(out / df["image_path"].iloc[0]).size == (32, 32)
    assert (out / "aggregates_preview.png").is_file()
    # folders: one set per folder, with the features equal to embedding the written image
    out2 = tmp_path / "agg2"
    assert main(["aggregate", str(frames_root / "crops/id0/v0"), str(frames_root / "crops/id1/v1"), "--model",
                 str(run / "aggregator.pt"), "-o", str(out2), "-q", "--device", "cpu"]) == 0
    df2 = read_manifest(out2, "aggregates")
    assert list(df2["group"]) == ["v0", "v1"]
    from facekit.embed.extractors import load_extractor

    ext = load_extractor(f"facekit:{frames_root / 'f.pt'}")
    img = np.asarray(Image.open(out2 / df2["image_path"].iloc[0]))[None]
    assert np.allclose(ext.embed(img)[0], df2["feature"].iloc[0], atol=1e-4)
    assert main(["aggregate", "--model", str(tmp_path / "nope.pt"), str(frames_root)]) == 2
    assert "aggregator file not found" in capsys.readouterr().err
    # issue 26: the Python API writes what the command writes (images, manifest, preview), byte for byte
    from facekit.aggregation.run import aggregate_sets, sets_from_manifest

    sets = sets_from_manifest(frames_root, "frames", ["identity", "video"])
    res = aggregate_sets(sets, run, tmp_path / "api", torch.device("cpu"), progress=False)
    assert (res.sets, res.faces, res.preview) == (10, 40, tmp_path / "api" / "aggregates_preview.png")
    pd.testing.assert_frame_equal(read_manifest(tmp_path / "api", "aggregates"), df)
    for rel in [*df["image_path"], "aggregates_preview.png"]:
        assert (tmp_path / "api" / rel).read_bytes() == (out / rel).read_bytes(), rel


@pytest.mark.slow
def test_aggregator_torchrun_two_processes_match_one(frames_root, tmp_path):
    from tests.conftest import torchrun_facekit

    args = ["train", "aggregator", "-r", str(frames_root / "recipe.yaml"), "-q", "--device", "cpu",
            "--set", "optim.steps=3", "--set", "data.holdout_identities=0"]
    assert main(args + ["-o", str(tmp_path / "one")]) == 0
    proc = torchrun_facekit([*args, "-o", str(tmp_path / "two")])
    assert proc.returncode == 0, proc.stderr[-2000:]
    one, two = _g(tmp_path / "one"), _g(tmp_path / "two")
    # Adam moves every weight by ~lr (1e-3) per step whatever the gradient's size, so float-order differences of
    # the all-reduced gradients show up as ~1e-5; a wrong split or a missed sync would differ by whole steps
    assert max(float((one[k] - two[k]).abs().max()) for k in one) < 1e-4


def test_mse_warmup_trains_the_generator_alone_first(frames_root, tmp_path):
    assert main(["train", "aggregator", "-r", str(frames_root / "recipe.yaml"), "-o", str(tmp_path / "w"), "-q",
                 "--set", "loss.mse_warmup_steps=2", "--set", "data.holdout_identities=0"]) == 0
    m = pd.read_csv(tmp_path / "w" / "metrics.csv")
    assert (m["loss_d"][:2] == 0).all() and np.allclose(m["loss_g"][:2], m["mse"][:2])
    assert (m["loss_d"][2:] > 0).all()


def test_heldout_eq2_rate_worked_by_hand(tmp_path, monkeypatch):
    """evaluate_heldout on stubs whose features are known: a frame's feature is the 2-d unit vector at the angle
    its pixels encode; the "aggregator" returns the set's first face. Person 0: video 0 frames at 0 and 40 deg,
    video 1 (the other video) one frame at 10 deg. Person 1: video 2 at 90, 90 deg, video 3 at 100 deg.
    Sets are the first 2 frames. Genuine pairs: (v0 -> v1), (v1 -> v0: frames 0, 40), (v2 -> v3), (v3 -> v2 x2).
    Eq. 2: aggregated (first face) closer to P than the mean over input frames of ||f_In - f_P||^2."""
    import math
    from types import SimpleNamespace

    from facekit.train import heldout as agg_mod

    angles = {0: 0.0, 1: 40.0, 2: 10.0, 3: 90.0, 4: 90.0, 5: 100.0}  # frame -> degrees
    data = SimpleNamespace(heldout_videos=np.array([0, 1, 2, 3]), identity_of_video=np.array([0, 0, 1, 1]),
                           identity_videos=[np.array([0, 1]), np.array([2, 3])],
                           video_frames=[np.array([0, 1]), np.array([2]), np.array([3, 4]), np.array([5])],
                           scores=np.array([0.8, 0.9, 1.0, 0.99, 0.95, 1.0], np.float32))

    class Frames:
        def __init__(self, *a, **k):
            pass

        def image(self, f, rng):
            return torch.full((3, 4, 4), angles[f])

    monkeypatch.setattr(agg_mod, "FrameSetDataset", Frames)
    feats = lambda x: torch.stack([torch.cos(x[:, 0, 0, 0] * math.pi / 180),  # noqa: E731
                                   torch.sin(x[:, 0, 0, 0] * math.pi / 180)], 1)
    class FirstFace(torch.nn.Module):
        def forward(self, x_set):
            return x_set[:, 0]

    cfg = SimpleNamespace(data=SimpleNamespace(set_size=2), seed=0, heldout_blur=0)
    res = agg_mod.evaluate_heldout(FirstFace(), feats, data, cfg, torch.device("cpu"), tmp_path)
    d = lambda a, b: 2 - 2 * math.cos(math.radians(a - b))  # noqa: E731  squared distance of unit vectors
    genuine = [  # (aggregated, mean over input frames)
        (d(0, 10), (d(0, 10) + d(40, 10)) / 2),        # v0 -> v1: 0.0304 < 0.1187: closer
        (d(10, 0), d(10, 0)), (d(10, 40), d(10, 40)),  # v1 (one frame) -> v0's two frames: equal, not closer
        (d(90, 100), d(90, 100)),                       # v2 -> v3: both frames at 90: equal
        (d(100, 90), d(100, 90)), (d(100, 90), d(100, 90)),
    ]
    assert res["genuine_pairs"] == 6
    assert res["aggregated_closer_than_frames"] == pytest.approx(sum(a < f for a, f in genuine) / 6)
    assert res["aggregated_closer_than_frames"] == pytest.approx(1 / 6)
    assert res["genuine"]["aggregated"] == pytest.approx(np.mean([a for a, _ in genuine]), abs=1e-6)
    assert res["genuine"]["input_frames"] == pytest.approx(np.mean([f for _, f in genuine]), abs=1e-6)
    # best detection score among the set: v0 -> frame 1 (40 deg), v1 -> frame 2, v2 -> frame 3 (90), v3 -> frame 5
    best = [d(40, 10), d(10, 0), d(10, 40), d(90, 100), d(100, 90), d(100, 90)]
    assert res["genuine"]["best_score_frame"] == pytest.approx(np.mean(best), abs=1e-6)
    assert res["aggregated_closer_than"]["best_score_frame"] == pytest.approx(1 / 6)  # v0: d(0,10) < d(40,10)
    assert res["aggregated_closer_than"]["average_feature"] == 0  # v0: 0 and 20 deg are both 10 from P: a tie
    assert "blurred" not in res and (tmp_path / "heldout.png").is_file()


def test_a_non_finite_generator_step_is_skipped_and_counted(frames_root, tmp_path, monkeypatch, capsys):
    """Step 2's generator loss made NaN: nothing of it reaches G, its Adam moments or the identity centres (their
    update never runs for it), the step is counted in metrics.csv; non-finite steps in a row stop the run."""
    import facekit.train.aggregator as agg

    real = agg.total_variation_loss
    calls = {"n": 0, "poison": {2}}

    def poisoned(x):
        calls["n"] += 1
        loss = real(x)
        return loss * float("nan") if calls["n"] in calls["poison"] else loss

    updates = []  # the steps whose update moved the centres
    real_update = agg.IdentityCentres.update

    def spy(self, *a, **k):
        before = self.centres.clone()
        real_update(self, *a, **k)
        if not torch.equal(before, self.centres):
            updates.append(calls["n"])

    monkeypatch.setattr(agg.IdentityCentres, "update", spy)
    monkeypatch.setattr(agg, "total_variation_loss", poisoned)
    base = ["train", "aggregator", "-r", str(frames_root / "recipe.yaml"), "-q", "--device", "cpu"]
    assert main(base + ["-o", str(tmp_path / "a")]) == 0
    assert updates == [1, 3, 4]  # the centres never saw step 2
    m = pd.read_csv(tmp_path / "a" / "metrics.csv")
    assert m["skipped_steps"].tolist() == [0, 1, 1, 1]
    assert all(torch.isfinite(v).all() for v in _g(tmp_path / "a").values())
    capsys.readouterr()
    calls.update(n=0, poison={1, 2, 3, 4})
    assert main(base + ["-o", str(tmp_path / "b"), "--set", "optim.max_nonfinite=2"]) == 2
    assert "step 2: 2 steps in a row had a non-finite loss" in capsys.readouterr().err


def test_aggregator_steps_do_not_wait_for_the_device(frames_root, tmp_path, monkeypatch):
    """Issue 23: between logging steps the host reads no device value (losses, both skip verdicts, the Eq. 10
    update); the logging step reads the window once. Picture grids are their own steps' business."""
    import facekit.train.aggregator as agg
    from tests.conftest import host_reads

    step = {"n": 0}
    real = agg.total_variation_loss
    monkeypatch.setattr(agg, "total_variation_loss", lambda x: step.update(n=step["n"] + 1) or real(x))
    files = ("facekit/train/aggregator.py", "facekit/train/frozen_features.py", "facekit/train/precision.py",
             "facekit/train/runlog.py",
             "facekit/losses/aggregation.py", "facekit/models/aggregator.py")
    reads = host_reads(monkeypatch, files, lambda: step["n"], pictures=("save_grid", "to_img"))
    assert main(["train", "aggregator", "-r", str(frames_root / "recipe.yaml"), "-q", "--device", "cpu",
                 "-o", str(tmp_path / "run"), "--set", "log_every=4", "--set", "checkpoint_every=4"]) == 0
    assert step["n"] == 4
    during = [r for r in reads if r[0] < 4]
    assert not during, f"host reads between logging steps: {during[:5]}"
    assert any(r[0] == 4 for r in reads)


def test_frame_set_batches_travel_as_uint8(frames_root):
    """Issue 23: the frame-set loader hands uint8 faces to the trainer, which maps them to [-1, 1] on its device."""
    import yaml

    from facekit.recipes import build
    from facekit.train.aggregator_config import AggregatorConfig
    from facekit.train.framesets import FrameSetDataset, load_frame_sets, to_unit

    cfg = build(AggregatorConfig, yaml.safe_load((frames_root / "recipe.yaml").read_text()), "recipe")
    data = load_frame_sets(cfg.data)
    ds = FrameSetDataset(data, cfg.data, augment=False)
    item = ds[(int(data.train_videos[0]), 0)]
    assert all(item[k].dtype == torch.uint8 for k in ("set", "positive", "negative"))
    unit = to_unit(item["positive"])
    assert unit.min() >= -1 and unit.max() <= 1 and torch.equal(ds.image(int(data.video_frames[0][0]), None),
                                                               to_unit(ds.raw(int(data.video_frames[0][0]), None)))


def test_frame_set_index_is_one_pass_and_equals_a_scan_per_video():
    """Issue 28: the frame-set index (frames of each video, videos of each identity) comes from one stable sort;
    it equals a scan of all frames per video (the former way, O(frames x videos))."""
    from facekit.train.framesets import _members

    codes = np.random.default_rng(0).integers(0, 50, 2000)
    codes[codes == 7] = 8  # a code with no member
    got = _members(codes, 51)
    assert len(got) == 51
    for v in range(51):
        np.testing.assert_array_equal(got[v], np.flatnonzero(codes == v))


def test_a_packed_frames_root_gives_the_same_sets(frames_root, tmp_path):
    """Issue 28: `facekit pack` on an extract-frames root; the frame-set loader reads the shards by the manifest's
    paths: the same sets, positives and negatives, pixel for pixel."""
    import shutil

    import yaml

    from facekit.datasets.crops import PackedCrops
    from facekit.recipes import build
    from facekit.train.aggregator_config import AggregatorConfig
    from facekit.train.framesets import FrameSetDataset, load_frame_sets

    shutil.copytree(frames_root, tmp_path / "frames")
    assert main(["pack", str(tmp_path / "frames"), "-q", "--shard-size", "16"]) == 0
    cfg = build(AggregatorConfig, yaml.safe_load((frames_root / "recipe.yaml").read_text()), "recipe")
    files = load_frame_sets(cfg.data)
    cfg.data.frames = tmp_path / "frames"
    packed = load_frame_sets(cfg.data)
    assert isinstance(packed.paths, PackedCrops) and len(packed.paths) == len(files.paths)
    for video in files.train_videos[:4]:
        a = FrameSetDataset(files, cfg.data)[(int(video), 7)]
        b = FrameSetDataset(packed, cfg.data)[(int(video), 7)]
        assert all(torch.equal(a[k], b[k]) for k in ("set", "positive", "negative"))
