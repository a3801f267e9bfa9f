"""``facekit bench`` end to end on fixtures written here in the official formats (no ../shared needed):
known answers from constructed features, reruns give the same numbers, the model path loads an IResNet strictly."""

import json

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

from facekit.cli.main import main
from facekit.embed import load_extractor
from facekit.errors import InputError
from facekit.models.iresnet import iresnet


def _ytf_fixture(tmp_path, persons=4, videos=2, frames=12):
    """Tiny aligned_images_DB (random-noise frames) and a splits file: 10 splits x (1 same + 1 different)."""
    rng = np.random.default_rng(0)
    root = tmp_path / "aligned_images_DB"
    names = [f"Person_{i}" for i in range(persons)]
    for n in names:
        for v in range(videos):
            d = root / n / str(v)
            d.mkdir(parents=True)
            for f in range(frames):
                Image.fromarray(rng.integers(0, 255, (40, 40, 3),
                                             dtype=np.uint8)).save(d / f"aligned_detect_{v}.{f}.jpg")
    lines = ["split number, pair number in split, first name, second name, is same:"]
    for s in range(1, 11):
        p = names[s % persons]
        q = names[(s + 1) % persons]
        lines += [f"{s}, 1, {p}/0, {p}/1, 1", f"{s}, 2, {p}/0, {q}/1, 0"]
    splits = tmp_path / "splits.txt"
    splits.write_text("\n".join(lines) + "\n")
    return root, splits, names


def test_ytf_with_features_file_known_answer(tmp_path, capsys):
    root, splits, names = _ytf_fixture(tmp_path)
    rng = np.random.default_rng(1)
    centres = np.eye(8)[:len(names)]
    rows = []
    for i, n in enumerate(names):
        for v in range(2):
            for f in range(12):
                rows.append((f"{n}/{v}/aligned_detect_{v}.{f}.jpg", (centres[i] + 0.05 * rng.normal(size=8)).tolist()))
    feats = tmp_path / "feats.parquet"
    pd.DataFrame(rows, columns=["path", "embedding"]).to_parquet(feats)
    args = ["bench", "ytf", "--root", str(root), "--splits", str(splits), "--N", "5", "--navg", "2",
            "--features", str(feats), "--out", str(tmp_path / "reports"), "--subset"]
    assert main(args) == 0
    assert main(args) == 0
    reports = sorted((tmp_path / "reports").iterdir())
    a, b = (json.loads((r / "report.json").read_text()) for r in reports)
    assert a["metrics"]["accuracy_mean"] == 1.0 == b["metrics"]["accuracy_mean"]  # separable by construction
    assert a["metrics"]["frames_used"] == len(set(names)) * 2 * 10 and a["config"]["n"] == 5
    assert a["fingerprints"] == b["fingerprints"] and a["versions"]["facekit"]
    assert (reports[0] / "roc.png").stat().st_size > 1000
    assert "YTF verification" in (reports[0] / "report.md").read_text()
    assert main(["bench", "compare", str(reports[0]), str(reports[1])]) == 0
    assert "accuracy_mean | 1.0000 | 1.0000" in capsys.readouterr().out



def test_reports_on_demo_data_say_so_and_print_no_paper_numbers(tmp_path, capsys):
    """A protocol file that is byte for byte one listed in a ``demo.json`` above it (what ``build demo`` writes)
    marks the report as demo data: a banner in report.md, ``demo_data`` in report.json, a line on the terminal,
    and no published numbers beside facekit's. A protocol file that differs from the listed one is real data."""
    import hashlib

    root, splits, names = _ytf_fixture(tmp_path)
    feats = tmp_path / "feats.parquet"
    pd.DataFrame([(str(p.relative_to(root)), np.random.default_rng(0).normal(size=4).tolist())
                  for p in sorted(root.rglob("*.jpg"))], columns=["path", "embedding"]).to_parquet(feats)
    digest = hashlib.sha256(splits.read_bytes()).hexdigest()[:16]

    def run(listed: str | None) -> tuple[dict, str, str]:
        if listed is not None:
            (tmp_path / "demo.json").write_text(json.dumps({"protocol_files": {"splits.txt": listed}}))
        out = tmp_path / f"reports-{listed}"
        assert main(["bench", "ytf", "--root", str(root), "--splits", str(splits), "--N", "5", "--navg", "2",
                     "--features", str(feats), "--out", str(out), "--subset"]) == 0
        (rep,) = out.iterdir()
        return json.loads((rep / "report.json").read_text()), (rep / "report.md").read_text(), capsys.readouterr().out

    report, md, printed = run(None)
    assert report["demo_data"] is False and "paper Table 1 (avg)" in md and "96.4" in md
    assert "demo data" not in md + printed
    report, md, printed = run(digest)
    assert report["demo_data"] is True and "paper" not in md and "96.4" not in md
    assert md.startswith("# YTF verification") and "**demo data: numbers mean nothing.**" in md
    assert "demo data: numbers mean nothing" in printed
    report, md, _ = run("0" * 16)  # the demo listed another splits.txt
    assert report["demo_data"] is False and "paper Table 1 (avg)" in md

@pytest.mark.slow
def test_ytf_with_a_model_caches_features(tmp_path):
    root, splits, _ = _ytf_fixture(tmp_path, frames=6)
    torch.manual_seed(0)
    net = iresnet("iresnet18", num_features=32).eval()
    ckpt = tmp_path / "backbone.pth"
    torch.save(net.state_dict(), ckpt)
    base = ["bench", "ytf", "--root", str(root), "--splits", str(splits), "--N", "2", "--navg", "2",
            "--model", f"iresnet18:{ckpt}", "--aligned", "--cache", str(tmp_path / "cache"),
            "--out", str(tmp_path / "reports"), "--subset", "--device", "cpu"]
    assert main(base) == 0
    assert main(base + ["--blur", "7"]) == 0
    assert main(base) == 0
    runs = [json.loads((r / "report.json").read_text()) for r in sorted((tmp_path / "reports").iterdir())]
    assert runs[0]["metrics"]["features_computed"] == 4 * 2 * 4  # 4 persons x 2 videos x N*n_avg frames
    assert runs[1]["metrics"]["features_computed"] == 4 * 2 * 3  # 3 of every 4 sampled frames blurred: new keys
    assert runs[2]["metrics"]["features_computed"] == 0  # all cached
    assert runs[2]["metrics"]["accuracy_per_fold"] == runs[0]["metrics"]["accuracy_per_fold"]
    # issue 24: every report says how its crops were made (aligned inputs here: no detection, no fallback)
    assert runs[0]["metrics"]["crops"] == {"images_cropped": 32, "by_kind": {"aligned": 32}, "fallbacks": {},
                                           "fallback_share": 0.0, "features_computed": 32}
    assert runs[2]["metrics"]["crops"]["images_cropped"] == 0  # every feature from the cache
    assert "## Face crops" in (sorted((tmp_path / "reports").iterdir())[0] / "report.md").read_text()



@pytest.mark.slow
def test_feature_cache_is_keyed_by_the_image_files(tmp_path):
    """Another folder with the same relative names (IJB-B's and IJB-C's ``img/1.jpg``, insightface's ``1.jpg``)
    and a frame rewritten in place are embedded afresh, not served another image's cached feature."""
    import os

    torch.manual_seed(0)
    ckpt = tmp_path / "backbone.pth"
    torch.save(iresnet("iresnet18", num_features=32).eval().state_dict(), ckpt)
    roots = [_ytf_fixture(tmp_path / name, frames=6)[:2] for name in ("a", "b")]

    def run(root, splits) -> dict:
        out = tmp_path / "reports"
        before = set(out.iterdir()) if out.exists() else set()
        assert main(["bench", "ytf", "--root", str(root), "--splits", str(splits), "--N", "2", "--navg", "2",
                     "--model", f"iresnet18:{ckpt}", "--aligned", "--cache", str(tmp_path / "cache"),
                     "--out", str(out), "--subset", "--device", "cpu", "-q"]) == 0
        (new,) = set(out.iterdir()) - before
        return json.loads((new / "report.json").read_text())["metrics"]

    assert run(*roots[0])["features_computed"] == 32
    assert run(*roots[1])["features_computed"] == 32  # same names, other folder
    assert run(*roots[0])["features_computed"] == 0
    frame = roots[0][0] / "Person_0" / "0" / "aligned_detect_0.0.jpg"
    Image.fromarray(np.zeros((40, 40, 3), np.uint8)).save(frame)
    os.utime(frame, ns=(10**18, 10**18))
    assert run(*roots[0])["features_computed"] == 1

def test_model_loading_is_strict(tmp_path):
    net = iresnet("iresnet18", num_features=16)
    state = net.state_dict()
    good = tmp_path / "ok.pth"
    torch.save(state, good)
    ext = load_extractor(f"iresnet18:{good}")
    out = ext.embed(np.zeros((3, 112, 112, 3), np.uint8))
    assert out.shape == (3, 16)
    state.pop("fc.bias")
    bad = tmp_path / "bad.pth"
    torch.save(state, bad)
    with pytest.raises(InputError, match="bad.pth: weights do not match"):
        load_extractor(f"iresnet18:{bad}")
    with pytest.raises(InputError, match="unknown extractor prefix"):
        load_extractor(f"resnet9:{good}")
    assert main(["bench", "lfw", "--bin", str(tmp_path / "missing.bin"), "--model", f"iresnet18:{good}"]) == 2


def _ijb_fixture(tmp_path):
    """Official IJB-C CSVs for 6 subjects: gallery G1 has subjects 0-2, G2 has 3-5; probes of all 6 and of 2
    unenrolled subjects; features in a file, one cluster per subject."""
    rng = np.random.default_rng(2)
    header = "TEMPLATE_ID,SUBJECT_ID,FILENAME,SIGHTING_ID,FACE_X,FACE_Y,FACE_WIDTH,FACE_HEIGHT\n"
    centres = np.eye(16)[:8]
    feats = []
    tid = 0

    def template(subject, n_media):
        nonlocal tid
        tid += 1
        lines = []
        for m in range(n_media):
            for k in range(2):
                name = f"img/{tid}_{m}_{k}.jpg"
                lines.append(f"{tid},{subject},{name},{m},0,0,10,10\n")
                feats.append((name, (centres[subject] + 0.1 * rng.normal(size=16)).tolist()))
        return tid, lines

    g1 = [template(s, 2) for s in range(3)]
    g2 = [template(s, 2) for s in range(3, 6)]
    probes = [template(s, 1) for s in (0, 1, 2, 3, 4, 5, 6, 7)]
    (tmp_path / "ijbc_1N_gallery_G1.csv").write_text(header + "".join(x for _, ls in g1 for x in ls))
    (tmp_path / "ijbc_1N_gallery_G2.csv").write_text(header + "".join(x for _, ls in g2 for x in ls))
    (tmp_path / "ijbc_1N_probe_mixed.csv").write_text(header + "".join(x for _, ls in probes for x in ls))
    pairs = [(g[0], p[0]) for g in g1 + g2 for p in probes]
    (tmp_path / "ijbc_11_G1_G2_matches.csv").write_text("".join(f"{a},{b}\n" for a, b in pairs))
    path = tmp_path / "feats.parquet"
    pd.DataFrame(feats, columns=["path", "embedding"]).to_parquet(path)
    return path


def test_ijb_official_layout_known_answer(tmp_path):
    feats = _ijb_fixture(tmp_path)
    assert main(["bench", "ijb", "--root", str(tmp_path), "--features", str(feats),
                 "--out", str(tmp_path / "reports")]) == 0
    rep = next((tmp_path / "reports").iterdir())
    m = json.loads((rep / "report.json").read_text())["metrics"]
    g1 = m["identification_1N"]["G1"]
    assert g1["mated_probes"] == 3 and g1["nonmated_probes"] == 5 and g1["rank1"] == 1.0
    assert m["identification_1N"]["mean"]["tpir_fpir_0.1"] == 1.0  # every mate outscores every impostor
    v = m["verification_11"]
    assert v["pairs"] == 6 * 8 and v["genuine"] == 6 and v["tar_far_0.1"] == 1.0
    assert m["extractions"] == {"per_image": 2 * (12 + 8), "per_media": 12 + 8, "saving_with_aggregation": 0.5}
    for png in ("roc.png", "det.png", "cmc.png"):
        assert (rep / png).stat().st_size > 1000
    assert "Table 3" in (rep / "report.md").read_text()
    bad = tmp_path / "ijbc_1N_probe_mixed.csv"
    bad.write_text(bad.read_text().replace(",0,0,10,10", ",0,zero,10,10", 1))
    assert main(["bench", "ijb", "--root", str(tmp_path), "--features", str(feats)]) == 2


def _random_aggregator(tmp_path, image_size=32):
    from facekit.aggregation.apply import save_aggregator
    from facekit.models.aggregator import FaceAggregator

    torch.manual_seed(0)
    net = FaceAggregator((8, 8, 16, 16), 8)
    path = tmp_path / "aggregator.pt"
    save_aggregator(path, net, (8, 8, 16, 16), 8, image_size, "")
    return path


@pytest.mark.slow
def test_ytf_aggregator_method_one_extraction_per_set(tmp_path):
    root, splits, _ = _ytf_fixture(tmp_path, frames=6)
    torch.manual_seed(0)
    ckpt = tmp_path / "backbone.pth"
    torch.save(iresnet("iresnet18", num_features=32).eval().state_dict(), ckpt)
    base = ["bench", "ytf", "--root", str(root), "--splits", str(splits), "--N", "3", "--navg", "2",
            "--model", f"iresnet18:{ckpt}", "--aligned", "--cache", str(tmp_path / "cache"), "--out",
            str(tmp_path / "reports"), "--subset", "--device", "cpu", "--method", "aggregator",
            "--aggregator", str(_random_aggregator(tmp_path))]
    assert main(base) == 0
    assert main(base) == 0
    runs = [json.loads((r / "report.json").read_text()) for r in sorted((tmp_path / "reports").iterdir())]
    assert runs[0]["metrics"]["features_computed"] == 4 * 2 * 2  # persons x videos x n_avg sets, not frames
    assert runs[1]["metrics"]["features_computed"] == 0
    assert runs[0]["metrics"]["accuracy_per_fold"] == runs[1]["metrics"]["accuracy_per_fold"]
    assert main(base[:-4] + ["--method", "aggregator"]) == 2  # no --aggregator: one-line error


def test_ijb_aggregator_media_features():
    """Every face of a multi-image media gets its media's aggregated feature; a still keeps its own."""
    from facekit.bench.run_ijb import _aggregate_media

    faces = pd.DataFrame({"template": [1, 1, 1, 2], "media": [10, 10, 11, 10]})
    keys = ["a", "b", "c", "d"]

    class Source:
        def get_sets(self, sets, load, desc, file_of):
            assert sets == [["a", "b"]]
            return np.array([[7.0, 7.0]])

        def get(self, keys, load, desc, file_of):
            assert keys == ["c", "d"]  # template 2's media 10 is a separate (single-image) media
            return np.array([[1.0, 0.0], [0.0, 1.0]])

    out = _aggregate_media(faces, keys, Source(), None, "IJBC", str)
    assert out.tolist() == [[7, 7], [7, 7], [1, 0], [0, 1]]


def test_ijb_aggregator_needs_a_model(tmp_path, capsys):
    feats = _ijb_fixture(tmp_path)
    assert main(["bench", "ijb", "--root", str(tmp_path), "--features", str(feats), "--method", "aggregator",
                 "--out", str(tmp_path / "r")]) == 2
    assert "--method aggregator needs --model" in capsys.readouterr().err


@pytest.mark.slow
def test_ijb_insightface_layout_equals_official_on_the_same_templates(tmp_path):
    """The same templates in insightface's layout (faces from ``_face_tid_mid.txt``, labelled pairs, the official
    1:N CSVs beside them in meta/ for the subjects) give the official layout's 1:1 and 1:N numbers; without the
    CSVs the report says why there is no 1:N."""
    from facekit.bench.ijb import read_protocol_csv
    from facekit.datasets.layouts import write_ijb_insightface

    feats = _ijb_fixture(tmp_path)
    assert main(["bench", "ijb", "--root", str(tmp_path), "--features", str(feats), "--out", str(tmp_path / "r1")]) == 0
    official = json.loads(next((tmp_path / "r1").iterdir()).joinpath("report.json").read_text())["metrics"]
    csvs = ["ijbc_1N_gallery_G1.csv", "ijbc_1N_gallery_G2.csv", "ijbc_1N_probe_mixed.csv"]
    rows = pd.concat([read_protocol_csv(tmp_path / f) for f in csvs]).drop_duplicates("filename")
    subject = dict(zip(rows.template, rows.subject))
    pairs = np.loadtxt(tmp_path / "ijbc_11_G1_G2_matches.csv", delimiter=",", dtype=int)
    root = tmp_path / "IJBC"
    write_ijb_insightface(root, "ijbc", {},
                          [(r.filename, r.template, r.media, [0.0] * 10, 1.0) for r in rows.itertuples()],
                          [(a, b, int(subject[a] == subject[b])) for a, b in pairs])
    assert main(["bench", "ijb", "--root", str(root), "--layout", "insightface", "--features", str(feats),
                 "--out", str(tmp_path / "r2")]) == 0
    no_1n = json.loads(next((tmp_path / "r2").iterdir()).joinpath("report.json").read_text())["metrics"]
    assert "identification_1N" not in no_1n and "official" in no_1n["note"]
    assert no_1n["verification_11"] == official["verification_11"]
    for f in csvs:
        (root / "meta" / f).write_text((tmp_path / f).read_text())
    assert main(["bench", "ijb", "--root", str(root), "--layout", "insightface", "--features", str(feats),
                 "--out", str(tmp_path / "r3")]) == 0
    rep = next((tmp_path / "r3").iterdir())
    m = json.loads((rep / "report.json").read_text())["metrics"]
    for g, r in official["identification_1N"].items():
        assert m["identification_1N"][g] == pytest.approx(r), g
    assert m["extractions"] == official["extractions"] and (rep / "cmc.png").is_file()


def _overlapping_ytf(tmp_path, persons=8, frames=6, dim=8, noise=0.9):
    """YTF layout (tiny frames: features come from a file) with 10 splits x (3 same + 3 different) pairs and
    per-frame features noisy enough that genuine and impostor videos overlap."""
    from facekit.datasets.layouts import write_ytf

    rng = np.random.default_rng(11)
    names = [f"P_{i}" for i in range(persons)]
    videos = {(n, v): [np.zeros((8, 8, 3), np.uint8)] * frames for n in names for v in (0, 1)}
    pairs = []
    for split in range(1, 11):
        for _ in range(3):
            p = names[rng.integers(persons)]
            pairs.append((split, f"{p}/0", f"{p}/1", True))
        for _ in range(3):
            p, q = rng.choice(persons, 2, replace=False)
            pairs.append((split, f"{names[p]}/0", f"{names[q]}/1", False))
    root, splits = write_ytf(tmp_path / "ytf", videos, pairs)
    centres = rng.normal(size=(persons, dim))
    feats = {f"{n}/{v}/aligned_detect_{v}.{k}.jpg": centres[i] + noise * rng.normal(size=dim) * 3
             for i, n in enumerate(names) for v in (0, 1) for k in range(frames)}
    path = tmp_path / "feats.parquet"
    pd.DataFrame({"path": list(feats), "embedding": [f.tolist() for f in feats.values()]}).to_parquet(path)
    return root, splits, pairs, feats


def _unit(x):
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


@pytest.mark.slow
def test_ytf_protocols_equal_an_independent_computation(tmp_path):
    """SeqFace and DAN video features and both threshold rules, recomputed here from protocols.md with plain
    loops (squared distances on the 0.01 grid, first best; SeqFace's evaluate.py loop), on features whose
    accuracy lies strictly between 0 and 1."""
    from tests.bench.test_bench_metrics import _seqface_evaluate_py

    root, splits, pairs, feats = _overlapping_ytf(tmp_path)
    frames_of = {f"{n}/{v}": [feats[f"{n}/{v}/aligned_detect_{v}.{k}.jpg"] for k in range(6)]
                 for n in {p[1].split("/")[0] for p in pairs} | {p[2].split("/")[0] for p in pairs} for v in (0, 1)}
    seqface_video = {v: _unit(sum(_unit(f) for f in fs)) for v, fs in frames_of.items()}
    # DAN, N = 2, n_avg = 3 on 6 frames: every frame in order, groups (0,1) (2,3) (4,5) of unit features
    dan_video = {v: _unit(np.mean([np.mean([_unit(fs[2 * g]), _unit(fs[2 * g + 1])], 0) for g in range(3)], 0))
                 for v, fs in frames_of.items()}
    same = np.array([p[3] for p in pairs])
    fold = np.array([p[0] for p in pairs])

    def kfold_by_loop(video):
        d2 = [float(((video[a] - video[b]) ** 2).sum()) for _, a, b, _ in pairs]
        accs = []
        for f in range(1, 11):
            best_t, best = None, -1.0
            for t in (i / 100 for i in range(400)):
                train = [(d < t) == s for d, s, k in zip(d2, same, fold) if k != f]
                if sum(train) / len(train) > best:
                    best_t, best = t, sum(train) / len(train)
            test = [(d < best_t) == s for d, s, k in zip(d2, same, fold) if k == f]
            accs.append(sum(test) / len(test))
        return float(np.mean(accs))

    def run(*extra):
        out = tmp_path / f"r{len(list(tmp_path.glob('r*')))}"
        assert main(["bench", "ytf", "--root", str(root), "--splits", str(splits), "--features",
                     str(tmp_path / "feats.parquet"), "--subset", "--out", str(out), "--quiet", *extra]) == 0
        rep = next(out.iterdir())
        return json.loads((rep / "report.json").read_text()), (rep / "report.md").read_text()

    seq, md = run("--protocol", "seqface")
    expected = kfold_by_loop(seqface_video)
    assert 0.5 < expected < 1.0 and seq["metrics"]["accuracy_mean"] == pytest.approx(expected)
    assert seq["config"]["n"] is None and seq["config"]["n_avg"] is None and seq["metrics"]["frames_used"] == 16 * 6
    assert "squared" in md and "SeqFace's evaluate.py" in md  # the paper's row says how the paper scored it
    best, md = run("--protocol", "seqface", "--threshold", "best-on-all")
    acc, thr = _seqface_evaluate_py(np.array([float(seqface_video[a] @ seqface_video[b]) for _, a, b, _ in pairs]),
                                    same)
    assert 0.5 < acc < 1.0 and best["metrics"]["accuracy_mean"] == pytest.approx(acc)
    assert best["metrics"]["threshold"] == pytest.approx(thr) and "no folds" in md
    dan, _ = run("--N", "2", "--navg", "3")
    expected = kfold_by_loop(dan_video)
    assert 0.5 < expected < 1.0 and dan["metrics"]["accuracy_mean"] == pytest.approx(expected)


@pytest.mark.slow
def test_ytf_seqface_protocol_applies_blur(tmp_path):
    """--protocol seqface --blur K blurs 9 of every 10 frames of the whole video (it was silently ignored)."""
    root, splits, _ = _ytf_fixture(tmp_path, frames=12)
    torch.manual_seed(0)
    ckpt = tmp_path / "backbone.pth"
    torch.save(iresnet("iresnet18", num_features=16).eval().state_dict(), ckpt)
    base = ["bench", "ytf", "--root", str(root), "--splits", str(splits), "--protocol", "seqface",
            "--model", f"iresnet18:{ckpt}", "--aligned", "--cache", str(tmp_path / "cache"),
            "--out", str(tmp_path / "reports"), "--subset", "--device", "cpu", "--quiet"]
    assert main(base) == 0
    assert main(base + ["--blur", "7"]) == 0
    runs = [json.loads((r / "report.json").read_text()) for r in sorted((tmp_path / "reports").iterdir())]
    assert runs[0]["metrics"]["features_computed"] == 4 * 2 * 12
    # frames 1..9 and 11 of each 12-frame video are blurred -> 10 new crops per video; frames 0 and 10 cached
    assert runs[1]["metrics"]["features_computed"] == 4 * 2 * 10
    assert runs[1]["config"]["blur"] == 7 and runs[0]["config"]["seed"] is None


def test_ijb_on_overlapping_features_equals_sklearn_and_brute_force(tmp_path):
    """IJB-C official layout with noisy features (metrics strictly between 0 and 1): 1:1 TAR from scikit-learn's
    ROC under both rules (insightface's reversed-array nearest point, and the strict one), 1:N per gallery by a
    brute-force loop over probes (ties miss), mean and pooled, all recomputed here from the files."""
    from sklearn.metrics import roc_curve

    from facekit.bench.ijb import read_protocol_csv

    rng = np.random.default_rng(7)
    header = "TEMPLATE_ID,SUBJECT_ID,FILENAME,SIGHTING_ID,FACE_X,FACE_Y,FACE_WIDTH,FACE_HEIGHT\n"
    centres = rng.normal(size=(40, 8))
    feats, files, tid = {}, {"g1": [], "g2": [], "probe": []}, 0
    for part, subjects, n_tpl in (("g1", range(0, 15), 1), ("g2", range(15, 30), 1), ("probe", range(0, 40), 3)):
        for s in subjects:
            for _ in range(n_tpl):
                tid += 1
                for m in range(2):
                    for k in range(2):
                        name = f"img/{tid}_{m}_{k}.jpg"
                        files[part].append(f"{tid},{s},{name},{m},0,0,10,10\n")
                        feats[name] = centres[s] + 1.6 * rng.normal(size=8)
    for part, fname in (("g1", "ijbc_1N_gallery_G1.csv"), ("g2", "ijbc_1N_gallery_G2.csv"),
                        ("probe", "ijbc_1N_probe_mixed.csv")):
        (tmp_path / fname).write_text(header + "".join(files[part]))
    rows = {p: read_protocol_csv(tmp_path / f) for p, f in (("g1", "ijbc_1N_gallery_G1.csv"),
                                                            ("g2", "ijbc_1N_gallery_G2.csv"),
                                                            ("probe", "ijbc_1N_probe_mixed.csv"))}
    gal_t = sorted(set(rows["g1"].template) | set(rows["g2"].template))
    probe_t = sorted(set(rows["probe"].template))
    pairs = [(g, p) for g in gal_t for p in probe_t]
    (tmp_path / "ijbc_11_G1_G2_matches.csv").write_text("".join(f"{a},{b}\n" for a, b in pairs))
    pd.DataFrame({"path": list(feats),
                  "embedding": [f.tolist() for f in feats.values()]}).to_parquet(tmp_path / "f.parquet")

    # template feature (protocols.md): mean of each media's image features, sum over media, L2-normalised
    allrows = pd.concat(rows.values())
    tf, subj = {}, {}
    for t, df in allrows.groupby("template"):
        media = [np.mean([feats[f] for f in d.filename], 0) for _, d in df.groupby("media")]
        tf[t], subj[t] = _unit(np.sum(media, 0)), int(df.subject.iloc[0])
    labels = np.array([subj[a] == subj[b] for a, b in pairs])
    scores = np.array([tf[a] @ tf[b] for a, b in pairs])
    fpr, tpr, _ = roc_curve(labels, scores)
    nearest = {far: tpr[::-1][np.argmin(np.abs(fpr[::-1] - far))] for far in (1e-3, 1e-2, 1e-1)}
    strict = {far: tpr[fpr <= far].max() for far in (1e-3, 1e-2, 1e-1)}

    def brute_1n(gallery):
        g_ids = sorted(set(rows[gallery].template))
        hits1, mated, tops, mate_best = 0, 0, [], []
        for p in probe_t:
            s = {g: tf[p] @ tf[g] for g in g_ids}
            mates = [g for g in g_ids if subj[g] == subj[p]]
            if not mates:
                tops.append(max(s.values()))
                continue
            mated += 1
            mate = max(s[g] for g in mates)
            first = all(s[g] < mate for g in g_ids if subj[g] != subj[p])
            hits1 += first
            mate_best.append((first, mate))
        thr = sorted(tops, reverse=True)[max(int(len(tops) * 0.1) - 1, 0)]
        tpir = sum(1 for first, m in mate_best if first and m > thr)
        return hits1, tpir, mated

    out = {}
    for rule, expected in (("strict", strict), ("nearest", nearest)):
        assert main(["bench", "ijb", "--root", str(tmp_path), "--features", str(tmp_path / "f.parquet"),
                     "--tar-rule", rule, "--out", str(tmp_path / rule), "--quiet"]) == 0
        rep = next((tmp_path / rule).iterdir())
        out[rule] = json.loads((rep / "report.json").read_text())["metrics"]
        for far, v in expected.items():
            assert 0 < v < 1 and out[rule]["verification_11"][f"tar_far_{far:g}"] == pytest.approx(v), (rule, far)
        assert f"rule {rule}" in (rep / "report.md").read_text()
    assert strict != nearest  # the fixture tells the rules apart
    idn = out["strict"]["identification_1N"]
    (h1a, ta, ma), (h1b, tb, mb) = brute_1n("g1"), brute_1n("g2")
    assert idn["G1"]["rank1"] == pytest.approx(h1a / ma) and idn["G2"]["tpir_fpir_0.1"] == pytest.approx(tb / mb)
    assert 0 < h1a / ma < 1 and 0 < tb / mb < 1
    assert idn["mean"]["rank1"] == pytest.approx((h1a / ma + h1b / mb) / 2)
    assert idn["pooled"]["rank1"] == pytest.approx((h1a + h1b) / (ma + mb))
    assert idn["pooled"]["tpir_fpir_0.1"] == pytest.approx((ta + tb) / (ma + mb))


def test_feature_progress_advances_per_item_not_per_batch(monkeypatch):
    """A batch of 64 aggregated sets is 640 image reads and 64 fusions: the bar moves after each set."""
    from types import SimpleNamespace

    from facekit.embed import features as fmod

    updates = []

    class Bar:
        def __init__(self, total, **kwargs):
            updates.append(("total", total))

        def update(self, n):
            updates.append(n)

        def close(self):
            updates.append("closed")

    monkeypatch.setattr(fmod, "progress_bar", Bar)
    ext = SimpleNamespace(embed=lambda x: np.zeros((len(x), 2), np.float32))
    feats, n = fmod.compute_features([f"k{i}" for i in range(5)], lambda k: np.zeros((4, 4, 3), np.uint8), ext,
                                     None, batch=64, desc="sets")
    assert n == 5 and feats.shape == (5, 2) and updates == [("total", 5), 1, 1, 1, 1, 1, "closed"]


def test_bin_sets_are_aligned_chips_named_by_their_set(tmp_path, capsys):
    """Issue 24: --bin takes the chips as aligned (re-aligned to the model's template, no detection; --detect
    forces MTCNN), the report is named after the set, and SeqFace's LFW figure appears beside lfw.bin only."""
    import io
    import pickle

    from PIL import Image

    rng = np.random.default_rng(0)
    chips = []
    for _ in range(8):
        buf = io.BytesIO()
        Image.fromarray(rng.integers(0, 255, (112, 112, 3), dtype=np.uint8)).save(buf, format="JPEG")
        chips.append(buf.getvalue())
    torch.manual_seed(0)
    ckpt = tmp_path / "backbone.pth"
    torch.save(iresnet("iresnet18", num_features=16).eval().state_dict(), ckpt)
    reports = {}
    for name, extra in (("cfp_fp", []), ("lfw", []), ("lfw", ["--detect"])):
        with open(tmp_path / f"{name}.bin", "wb") as fh:  # insightface's layout: (list of JPEG bytes, issame)
            pickle.dump((chips, [True, False, True, False]), fh, protocol=pickle.HIGHEST_PROTOCOL)
        out = tmp_path / f"r-{name}{'-detect' if extra else ''}"
        assert main(["bench", "lfw", "--bin", str(tmp_path / f"{name}.bin"), "--model", f"iresnet18:{ckpt}",
                     "--out", str(out), "--device", "cpu", "-q", *extra]) == 0
        rep = next(out.iterdir())
        reports[out.name] = (json.loads((rep / "report.json").read_text()), (rep / "report.md").read_text())
    assert "cfp_fp verification accuracy" in capsys.readouterr().out
    cfp, cfp_md = reports["r-cfp_fp"]
    assert cfp["metrics"]["set"] == "cfp_fp" and cfp_md.startswith("# cfp_fp verification")
    assert "SeqFace" not in cfp_md and cfp["metrics"]["crops"]["by_kind"] == {"aligned": 8}
    lfw_m, lfw_md = reports["r-lfw"]
    assert "SeqFace ResNet-64 (paper Table 2, LFW)" in lfw_md and "re-aligned to the model's template" in lfw_md
    detect, _ = reports["r-lfw-detect"]
    assert "aligned" not in detect["metrics"]["crops"]["by_kind"] and detect["config"]["detect"] is True


@pytest.mark.slow
def test_a_second_model_reuses_the_first_ones_crops(tmp_path, monkeypatch):
    """Issue 24: crops are cached per image and template and shared by every model: a second checkpoint on the
    same frames detects nothing, gets the features it would get from scratch, and still reports how its crops
    were made."""
    from facekit.detect.mtcnn import MTCNN

    root, splits, _ = _ytf_fixture(tmp_path, frames=6)
    ckpts = []
    for seed in (0, 1):
        torch.manual_seed(seed)
        ckpts.append(tmp_path / f"b{seed}.pth")
        torch.save(iresnet("iresnet18", num_features=16).eval().state_dict(), ckpts[-1])
    calls = {"n": 0}
    real = MTCNN.detect
    monkeypatch.setattr(MTCNN, "detect", lambda self, *a, **k: calls.update(n=calls["n"] + 1) or real(self, *a, **k))

    def run(ckpt, cache, out):
        calls["n"] = 0
        assert main(["bench", "ytf", "--root", str(root), "--splits", str(splits), "--N", "2", "--navg", "2",
                     "--model", f"iresnet18:{ckpt}", "--cache", str(cache), "--out", str(out), "--subset",
                     "--device", "cpu", "-q"]) == 0
        return json.loads((next(out.iterdir()) / "report.json").read_text())["metrics"], calls["n"]

    first, detections = run(ckpts[0], tmp_path / "cache", tmp_path / "r0")
    assert detections > 0
    second, detections = run(ckpts[1], tmp_path / "cache", tmp_path / "r1")
    assert detections == 0 and second["crops"]["by_kind"] == first["crops"]["by_kind"]
    scratch, _ = run(ckpts[1], tmp_path / "fresh", tmp_path / "r2")
    assert second["accuracy_per_fold"] == scratch["accuracy_per_fold"]
    assert list((tmp_path / "cache").glob("crops-arcface-112/part-*.rec"))
