"""Protocol readers on the real files in ../shared/data and on small files written here in the official formats,
including malformed ones that must fail with one line naming the file and line."""

import pickle

import numpy as np
import pytest

from facekit.bench import ijb, ytf
from facekit.datasets import lfw
from facekit.errors import InputError
from tests.conftest import shared


def test_real_ytf_splits():
    p = ytf.read_splits(shared("ytf/splits.txt"))
    assert len(p.same) == 5000 and sorted(set(p.split.tolist())) == list(range(1, 11))
    for s in range(1, 11):
        same = p.same[p.split == s]
        assert len(same) == 500 and same[:250].all() and not same[250:].any()
    assert p.video_a[0] == "Sadie_Frost/1" and p.video_b[0] == "Sadie_Frost/5"


def test_ytf_splits_variants_and_errors(tmp_path):
    body = "1, 1, A_B/1, A_B/2, 1\r\n1, 2, A_B/1, C_D/0, 0"  # CRLF, no header, no final newline
    f = tmp_path / "splits.txt"
    f.write_text(body)
    p = ytf.read_splits(f, expect_full=False)
    assert p.same.tolist() == [True, False] and p.video_b == ["A_B/2", "C_D/0"]
    with pytest.raises(InputError, match="expected 5000 pairs"):
        ytf.read_splits(f)
    f.write_text("split number, pair number in split, first name, second name, is same:\n1, 1, A_B/1, A_B/2, yes\n")
    with pytest.raises(InputError, match=r"splits.txt:2: is same must be an integer"):
        ytf.read_splits(f, expect_full=False)
    f.write_text("1, 1, A_B, A_B/2, 1\n")
    with pytest.raises(InputError, match=r"splits.txt:1: video name must be Person/videoNo"):
        ytf.read_splits(f, expect_full=False)


def test_dan_sampling():
    idx = ytf.dan_sample(100, 10, 4)
    assert idx.shape == (4, 10) and idx[0, 0] == 0 and idx[-1, -1] == 99
    assert (np.diff(idx.reshape(-1)) > 0).all()  # evenly spaced, no duplicates when the video is long enough
    assert ytf.dan_sample(48, 1, 2).tolist() == [[0], [47]]
    f = np.arange(8, dtype=np.float32).reshape(4, 2)  # (n_avg*N = 2*2, d = 2)
    np.testing.assert_allclose(ytf.avg_group_features(f, 2, 2), [[1, 2], [5, 6]])
    v = ytf.dan_video_feature(np.array([[3.0, 0.0], [0.0, 4.0]]))
    np.testing.assert_allclose(v, np.array([1.5, 2.0]) / 2.5)
    from facekit.transforms.blur import blurred_positions

    assert blurred_positions(20).sum() == 18


def test_real_lfw_pairs():
    p = lfw.read_pairs(shared("facenet/data/pairs.txt"))
    assert len(p.same) == 6000 and p.same.sum() == 3000
    assert (np.bincount(p.fold) == 600).all()
    assert p.image_a[0].endswith("_0001.jpg") or p.image_a[0].count("/") == 1


def test_lfw_pairs_errors(tmp_path):
    f = tmp_path / "pairs.txt"
    f.write_text("1 1\nAaron 1 2\nAaron 1 Bob x\n")
    with pytest.raises(InputError, match=r"pairs.txt:3: .*image number"):
        lfw.read_pairs(f)
    f.write_text("1 2\nAaron 1 2\n")
    with pytest.raises(InputError, match="found 1 pair lines"):
        lfw.read_pairs(f)


def test_real_bin_and_a_hostile_pickle(tmp_path):
    images, same = lfw.read_bin(shared("insightface/recognition/arcface_paddle/test_tipc/data/small_lfw.bin"))
    assert len(images) == 20 and same.tolist() == [True] * 10 and images[0][:2] == b"\xff\xd8"
    bad = tmp_path / "evil.bin"

    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    bad.write_bytes(pickle.dumps(Evil()))
    with pytest.raises(InputError, match="refusing to load builtins.print"):
        lfw.read_bin(bad)


HEADER = "TEMPLATE_ID,SUBJECT_ID,FILENAME,SIGHTING_ID,FACE_X,FACE_Y,FACE_WIDTH,FACE_HEIGHT\n"


def test_ijb_csv_reader_and_errors(tmp_path):
    f = tmp_path / "ijbc_1N_gallery_G1.csv"
    f.write_text(HEADER + "1,10,img/1.jpg,5,10.5,20,30,40\n1,10,frames/2.jpg,6,0,0,5,5\n")
    df = ijb.read_protocol_csv(f)
    assert df.template.tolist() == [1, 1] and df.media.tolist() == [5, 6] and df.x.tolist() == [10.5, 0.0]
    f.write_text(HEADER + "1,10,img/1.jpg,5,10.5,20,30,40\n2,x,img/2.jpg,5,1,1,1,1\n")
    with pytest.raises(InputError, match=r"ijbc_1N_gallery_G1.csv:3: not a number"):
        ijb.read_protocol_csv(f)
    f.write_text("TEMPLATE_ID,FILENAME\n1,a.jpg\n")
    with pytest.raises(InputError, match=r"ijbc_1N_gallery_G1.csv:1: missing column"):
        ijb.read_protocol_csv(f)
    m = tmp_path / "ijbc_11_G1_G2_matches.csv"
    m.write_text("1,2\n3,4\n")
    assert ijb.read_matches(m).tolist() == [[1, 2], [3, 4]]
    m.write_text("1,2\n3,four\n")
    with pytest.raises(InputError, match=r"matches.csv:2: template id / label must be an integer"):
        ijb.read_matches(m)


def test_template_features_brute_force():
    rng = np.random.default_rng(0)
    f = rng.normal(size=(12, 4)).astype(np.float32)
    t = np.array([1, 1, 1, 1, 2, 2, 2, 3, 3, 3, 3, 3])
    m = np.array([7, 7, 8, 9, 7, 7, 7, 1, 2, 2, 3, 3])
    ids, tf = ijb.template_features(f, t, m)
    assert ids.tolist() == [1, 2, 3]
    for i, tid in enumerate(ids):
        total = sum(f[(t == tid) & (m == mid)].mean(0) for mid in np.unique(m[t == tid]))
        np.testing.assert_allclose(tf[i], total / np.linalg.norm(total), rtol=1e-5, atol=1e-6)


def test_layout_writers_read_back_by_the_readers(tmp_path):
    """facekit.datasets.layouts writes what the official readers parse, row for row."""
    from facekit.datasets import layouts

    img = np.full((20, 20, 3), 128, np.uint8)
    db, splits = layouts.write_ytf(tmp_path / "ytf", {("A_B", 0): [img] * 3, ("A_B", 1): [img], ("C", 4): [img]},
                                   [(1, "A_B/0", "A_B/1", True), (1, "A_B/0", "C/4", False),
                                    (2, "C/4", "A_B/1", False)])
    p = ytf.read_splits(splits, expect_full=False)
    assert p.split.tolist() == [1, 1, 2] and p.same.tolist() == [True, False, False] and p.video_b[1] == "C/4"
    assert len(list((db / "A_B" / "0").glob("aligned_detect_0.*.jpg"))) == 3
    assert "1, 2, A_B/0, C/4, 0" in splits.read_text().splitlines()  # pair numbers count within a split

    root, pairs = layouts.write_lfw(tmp_path / "lfw", {"A": [img, img], "B": [img]},
                                    [([("A", 1, 2)], [("A", 1, "B", 1)])] * 2)
    q = lfw.read_pairs(pairs)
    assert q.image_a == ["A/A_0001.jpg", "A/A_0001.jpg"] * 2 and q.image_b[1] == "B/B_0001.jpg"
    assert q.fold.tolist() == [0, 0, 1, 1] and all((root / a).is_file() for a in q.image_a + q.image_b)
    with pytest.raises(ValueError, match="same number"):
        layouts.write_lfw(tmp_path / "bad", {}, [([("A", 1, 2)], [])])

    row = (1, 7, "img/1.jpg", 3, 10.0, 20.0, 30.0, 40.0)
    images, proto = layouts.write_ijb_official(tmp_path / "ijb", "IJBB", {"img/1.jpg": img}, ([row], [row]),
                                               [(2, 7, "frames/1.jpg", 4, 1, 2, 3, 4)], [(1, 2)])
    g = ijb.read_protocol_csv(proto / "ijbb_1N_gallery_S2.csv")
    assert g.iloc[0].tolist() == [1, 7, "img/1.jpg", 3, 10.0, 20.0, 30.0, 40.0] and (images / "img/1.jpg").is_file()
    assert ijb.read_matches(proto / "ijbb_11_S1_S2_matches.csv").tolist() == [[1, 2]]

    marks = [float(v) for v in range(10)]
    layouts.write_ijb_insightface(tmp_path / "if", "ijbb", {"1.jpg": img}, [("1.jpg", 5, 9, marks, 0.5)], [(5, 5, 1)])
    d = ijb.read_insightface_layout(tmp_path / "if", "ijbb")
    assert d.faces[["filename", "template", "media"]].values.tolist() == [["1.jpg", 5, 9]]
    assert d.faces["landmarks"][0] == marks and d.faces["faceness"][0] == 0.5
    assert d.pairs.tolist() == [[5, 5]] and d.labels.tolist() == [1]
