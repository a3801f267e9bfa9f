"""SeqFace losses against numbers worked out by hand from the paper's equations (values in the comments)."""

from __future__ import annotations

import math

import pytest
import torch

from facekit.losses import (
    ArcFaceHead,
    CentreLoss,
    CentreTable,
    CosFaceHead,
    DSALoss,
    L2SphereFaceHead,
    SoftmaxHead,
    lsr_cross_entropy,
)
from facekit.losses.dsa import sample_centres


def _unit_head(head_cls, **kw):
    if head_cls is L2SphereFaceHead:
        kw.setdefault("lambda_base", 5.0)  # the fixed blend lambda = 5 of the SeqFace release
    head = head_cls(2, 2, **kw)
    with torch.no_grad():
        head.weight.copy_(torch.tensor([[1.0, 0.0], [0.0, 1.0]]))  # class 0 on the x axis, class 1 on the y axis
    return head


X30 = torch.tensor([[2 * math.cos(math.pi / 6),
                     2 * math.sin(math.pi / 6)]])  # |x| = 2 at 30 deg: theta0 = 30, theta1 = 60


def test_lsr_identity_sample_is_cross_entropy():
    # logits (0, ln 3): p = (1/4, 3/4). Identity label 1 -> -ln(3/4) = 0.287682
    logits = torch.tensor([[0.0, math.log(3.0)]])
    assert lsr_cross_entropy(logits, torch.tensor([1])).item() == pytest.approx(0.287682, abs=1e-6)


def test_lsr_sequence_sample_uniform_target():
    # Eq. 5 with Z = 1: -(1/2)(ln 1/4 + ln 3/4) = -(1/2)(-1.386294 - 0.287682) = 0.836988
    logits = torch.tensor([[0.0, math.log(3.0)]])
    assert lsr_cross_entropy(logits, torch.tensor([-1])).item() == pytest.approx(0.836988, abs=1e-6)
    # a batch averages the two kinds: (0.287682 + 0.836988) / 2
    both = lsr_cross_entropy(logits.repeat(2, 1), torch.tensor([1, -5]))
    assert both.item() == pytest.approx((0.287682 + 0.836988) / 2, abs=1e-6)


def test_l2_sphereface_target_logit():
    # theta = 30 deg, m = 4: m theta = 120 deg, k = 0, psi = cos 120 = -0.5.
    # target = 32 (psi + 5 cos 30) / 6 = 32 (-0.5 + 4.330127) / 6 = 20.427344; other = 32 cos 60 = 16.
    logits = _unit_head(L2SphereFaceHead)(X30, torch.tensor([0]))
    assert logits[0, 0].item() == pytest.approx(20.427344, abs=1e-4)
    assert logits[0, 1].item() == pytest.approx(16.0, abs=1e-4)
    # loss = ln(1 + e^(16 - 20.427344)) = 0.011884
    assert lsr_cross_entropy(logits, torch.tensor([0])).item() == pytest.approx(0.011884, abs=1e-5)


def test_l2_sphereface_psi_second_interval():
    # label 1: theta = 60 deg, m theta = 240 deg, k = floor(240/180) = 1: psi = -cos 240 - 2 = 0.5 - 2 = -1.5.
    # target = 32 (-1.5 + 5 * 0.5) / 6 = 5.333333; the other logit keeps 32 cos 30 = 27.712813.
    logits = _unit_head(L2SphereFaceHead)(X30, torch.tensor([1]))
    assert logits[0, 1].item() == pytest.approx(5.333333, abs=1e-4)
    assert logits[0, 0].item() == pytest.approx(27.712813, abs=1e-4)


def test_sphereface_lambda_schedule():
    # SphereFace: lambda_t = max(5, 1000 / (1 + 0.12 t)): t = 0 -> 1000, t = 100 -> 1000/13 = 76.923, t = 2000 -> 5
    head = L2SphereFaceHead(2, 2)
    assert head.lambda_ == 1000.0
    head.set_step(100)
    assert head.lambda_ == pytest.approx(76.923077)
    head.set_step(2000)
    assert head.lambda_ == 5.0


def test_sequence_samples_get_no_margin():
    for cls in (L2SphereFaceHead, ArcFaceHead, CosFaceHead):
        head = _unit_head(cls)
        logits = head(X30, torch.tensor([-3]))
        assert torch.allclose(logits, head.scale * torch.tensor([[math.cos(math.pi / 6), 0.5]]), atol=1e-5)


def test_arcface_and_cosface_margins():
    # ArcFace, theta 30 deg + 0.5 rad = 58.6479 deg: 64 cos(58.6479 deg) = 64 * 0.520296 = 33.298945
    assert _unit_head(ArcFaceHead)(X30, torch.tensor([0]))[0, 0].item() == pytest.approx(33.298945, abs=1e-4)
    # CosFace: 64 (cos 30 - 0.35) = 64 * 0.516025 = 33.025626
    assert _unit_head(CosFaceHead)(X30, torch.tensor([0]))[0, 0].item() == pytest.approx(33.025626, abs=1e-3)
    # ArcFace beyond pi - m (theta = 170 deg): falls back to cos(theta) - m sin(m) = -0.984808 - 0.239713
    x = torch.tensor([[math.cos(math.radians(170)), math.sin(math.radians(170))]])
    assert _unit_head(ArcFaceHead, scale=1.0)(x, torch.tensor([0]))[0, 0].item() == pytest.approx(-1.224521, abs=1e-5)


def test_softmax_head_is_linear():
    head = SoftmaxHead(2, 3)
    x = torch.randn(4, 2)
    assert torch.allclose(head(x, torch.zeros(4, dtype=torch.long)), x @ head.fc.weight.T + head.fc.bias)


def _dsa_table() -> CentreTable:
    # C = 2 identities, S = 2 sequences: c0 = (0,0), c1 = (2,0) | c2 = (0,2), c3 = (0,3)
    table = CentreTable(2, 2, 2)
    table.centres.copy_(torch.tensor([[0.0, 0.0], [2.0, 0.0], [0.0, 2.0], [0.0, 3.0]]))
    return table


def test_dsa_loss_by_hand():
    # p = 1: M = 4 (all centres), lambda 0.5, alpha 2, beta 1.
    # A: x = (1,0), y = 0. pull d = 1/4. push: c1 d = 1/4 -> 2*0.25 - 0.25 + 1 = 1.25; c2 d = 5/4 -> 0.25;
    #    c3 d = 10/4 -> max(0.5 - 2.5 + 1, 0) = 0. L_A = 0.5*0.25 + 0.5*(1.5/4) = 0.3125
    # B: x = (0,1), sequence label -1 -> centre 2. pull d = 1/4. push (identity centres only): c0 d = 1/4 -> 1.25;
    #    c1 d = 5/4 -> 0.25; c3 is a sequence centre: skipped (it would add max(0.5 - 1 + 1, 0) = 0.5).
    #    L_B = 0.125 + 0.5*(1.5/4) = 0.3125.   L_D = 0.3125.
    dsa = DSALoss(_dsa_table(), p=1.0)
    x = torch.tensor([[1.0, 0.0], [0.0, 1.0]], requires_grad=True)
    loss = dsa(x, torch.tensor([0, -1]))
    assert loss.item() == pytest.approx(0.3125, abs=1e-6)
    loss.backward()
    # Eq. 10 for A: 1/K [ lambda (x - c0)/2 + (1 - lambda)/M sum_{active n} (alpha (x - c0)/2 - (x - cn)/2) ]
    #   = 1/2 [ 0.5 (0.5, 0) + 0.125 ((1,0) - (-0.5,0) + (1,0) - (0.5,-1)) ]
    #   = 1/2 [(0.25,0) + 0.125 (2,1)] = (0.25, 0.0625)
    assert torch.allclose(x.grad[0], torch.tensor([0.25, 0.0625]), atol=1e-6)


def test_dsa_normalised_is_angular_distance():
    # Eq. 7: normalised x and c, d = (1 - cos)/2. x at 90 deg from its centre: pull d = 0.5; lambda = 1 isolates it.
    table = CentreTable(1, 0, 2)
    table.centres.copy_(torch.tensor([[3.0, 0.0]]))
    dsa = DSALoss(table, lambda_=1.0, p=1.0, normalise=True)
    assert dsa(torch.tensor([[0.0, 5.0]]), torch.tensor([0])).item() == pytest.approx(0.5, abs=1e-6)


def test_centre_update_eq11():
    # c0 = (0,0), samples (1,0) and (3,0): delta = -((1,0) + (3,0))/2 / (1 + 2) = (-2/3, 0); lr 0.5 -> c0 = (1/3, 0).
    # c2 (sequence label -1) = (0,2), sample (0,4): delta = -(0,2)/2/2 = (0,-0.5) -> c2 = (0, 2.25). Others unchanged.
    table = _dsa_table()
    table.update(torch.tensor([[1.0, 0.0], [3.0, 0.0], [0.0, 4.0]]), torch.tensor([0, 0, -1]), lr=0.5)
    expect = torch.tensor([[1 / 3, 0.0], [2.0, 0.0], [0.0, 2.25], [0.0, 3.0]])
    assert torch.allclose(table.centres, expect, atol=1e-6)
    # a skipped step (ok false on the device), even with NaN features, leaves the table exactly as it was
    before = table.centres.clone()
    table.update(torch.full((3, 2), float("nan")), torch.tensor([0, 0, -1]), lr=0.5, ok=torch.tensor(False))
    assert torch.equal(table.centres, before)


def test_centre_update_eq11_against_a_loop_over_centres():
    """Random batches with repeated labels: the batched update equals Eq. 11 written as a loop over the batch's
    centres (sum over the samples of each, then the step)."""
    gen = torch.Generator().manual_seed(0)
    table = CentreTable(5, 4, 3)
    table.centres.copy_(torch.randn(9, 3, generator=gen))
    for _ in range(3):
        labels = torch.randint(-4, 5, (12,), generator=gen)
        x = torch.randn(12, 3, generator=gen)
        expect = table.centres.clone()
        for label in set(labels.tolist()):
            n = label if label >= 0 else 5 - 1 - label
            members = x[labels == label]
            delta = -(members - expect[n]).sum(0) / 2 / (1 + len(members))
            expect[n] = expect[n] - 0.3 * delta
        table.update(x, labels, lr=0.3)
        assert torch.allclose(table.centres, expect, atol=1e-6)


def test_centre_loss_eq2():
    # 1/(2K) sum ||x - c||^2: x = (1,0) to c0 = (0,0): 1; x = (0,4) to c2 = (0,2): 4 -> (1 + 4) / 4 = 1.25
    loss = CentreLoss(_dsa_table())(torch.tensor([[1.0, 0.0], [0.0, 4.0]]), torch.tensor([0, -1]))
    assert loss.item() == pytest.approx(1.25, abs=1e-6)


def test_dsa_subset_sampling_scales_and_is_seeded():
    ids = sample_centres(1_000_000, 1000, torch.Generator().manual_seed(3))
    assert len(ids) == 1000 and len(torch.unique(ids)) == 1000 and int(ids.max()) < 1_000_000
    again = sample_centres(1_000_000, 1000, torch.Generator().manual_seed(3))
    assert torch.equal(ids, again)
    assert sorted(sample_centres(10, 10).tolist()) == list(range(10))


def test_dsa_with_many_centres_matches_brute_force():
    # p < 1: the loss equals Eq. 9 evaluated by a plain loop over the sampled subset.
    torch.manual_seed(0)
    table = CentreTable(50, 70, 8)
    table.centres.normal_()
    dsa = DSALoss(table, p=0.2)
    x, labels = torch.randn(6, 8), torch.tensor([0, 3, 49, -1, -70, -5])
    loss = dsa(x, labels, torch.Generator().manual_seed(7))
    subset = sample_centres(120, 24, torch.Generator().manual_seed(7))
    total = 0.0
    for k in range(6):
        y = int(labels[k]) if labels[k] >= 0 else 50 - 1 - int(labels[k])
        d = lambda n: float(((x[k] - table.centres[n]) ** 2).sum()) / 4  # noqa: E731
        push = sum(max(2 * d(y) - d(n) + 1, 0) for n in subset.tolist()
                   if n != y and not (labels[k] < 0 and n >= 50))
        total += 0.5 * d(y) + 0.5 * push / 24
    assert loss.item() == pytest.approx(total / 6, rel=1e-5)


HEAD_CLASSES = (L2SphereFaceHead, ArcFaceHead, CosFaceHead)


def _head_grads(cls, x, labels):
    torch.manual_seed(0)
    head = cls(8, 5)
    x = x.detach().requires_grad_(True)
    logits = head(x, labels)
    loss = lsr_cross_entropy(logits, labels)
    loss.backward()
    return logits, loss, x.grad.float(), head.weight.grad


@pytest.mark.parametrize("cls", HEAD_CLASSES)
@pytest.mark.parametrize("dtype", (torch.float16, torch.bfloat16))
def test_margin_heads_compute_in_float32_for_half_inputs(cls, dtype):
    torch.manual_seed(1)
    x = torch.randn(6, 8)
    labels = torch.tensor([0, 1, 2, -1, 3, -2])
    ref_logits, ref_loss, ref_gx, ref_gw = _head_grads(cls, x, labels)
    logits, loss, gx, gw = _head_grads(cls, x.to(dtype), labels)
    assert logits.dtype == torch.float32 and torch.isfinite(loss)
    tol = 2e-2 if dtype == torch.bfloat16 else 2e-3  # the input itself was rounded to 8 / 11 bits
    assert loss.item() == pytest.approx(ref_loss.item(), rel=tol)
    assert torch.allclose(gw, ref_gw, atol=tol * ref_gw.abs().max().item())
    assert torch.allclose(gx, ref_gx, atol=tol * ref_gx.abs().max().item())


@pytest.mark.parametrize("cls", HEAD_CLASSES)
def test_margin_heads_under_cuda_style_autocast(cls, monkeypatch):
    """What CUDA autocast does, on CPU: ``F.linear`` returns float16, ``torch.acos`` float32. Before the heads
    computed in float32 the L2-SphereFace ``scatter`` failed on the dtype mismatch."""
    import torch.nn.functional as F

    torch.manual_seed(1)
    x, labels = torch.randn(6, 8), torch.tensor([0, 1, 2, -1, 3, -2])
    ref_logits, ref_loss, ref_gx, ref_gw = _head_grads(cls, x, labels)
    linear, acos = F.linear, torch.acos
    monkeypatch.setattr(F, "linear", lambda *a, **k: linear(*a, **k).half())
    monkeypatch.setattr(torch, "acos", lambda t: acos(t.float()))
    logits, loss, gx, gw = _head_grads(cls, x, labels)
    assert logits.dtype == torch.float32 and torch.isfinite(loss)
    assert loss.item() == pytest.approx(ref_loss.item(), rel=5e-3)
    assert torch.allclose(gw, ref_gw, atol=5e-3 * ref_gw.abs().max().item())
    assert torch.allclose(gx, ref_gx, atol=5e-3 * ref_gx.abs().max().item())


def test_margin_heads_under_cpu_autocast():
    torch.manual_seed(1)
    x, labels = torch.randn(6, 8), torch.tensor([0, 1, 2, -1, 3, -2])
    for cls in HEAD_CLASSES:
        torch.manual_seed(0)
        head = cls(8, 5)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            logits = head(torch.nn.Linear(8, 8)(x), labels)  # the backbone's last layer runs in bfloat16
        assert logits.dtype == torch.float32 and torch.isfinite(logits).all()


@pytest.mark.parametrize("cls", HEAD_CLASSES)
@pytest.mark.parametrize("sign", (1.0, -1.0))
def test_margin_heads_at_exact_alignment_have_finite_gradients(cls, sign):
    """cos(theta) = +-1 exactly (a feature on its class weight, or opposite): sqrt'(0) / acos'(1) are infinite;
    the heads clamp as insightface does, so the loss and every gradient stay finite, also in float16."""
    head = cls(4, 3)
    with torch.no_grad():
        head.weight.copy_(torch.eye(3, 4))
    for dtype in (torch.float32, torch.float16):
        x = (sign * torch.tensor([[2.0, 0.0, 0.0, 0.0]])).to(dtype).requires_grad_(True)
        head.weight.grad = None
        loss = lsr_cross_entropy(head(x, torch.tensor([0])), torch.tensor([0]))
        loss.backward()
        assert torch.isfinite(loss) and torch.isfinite(x.grad).all() and torch.isfinite(head.weight.grad).all()
