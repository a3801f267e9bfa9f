import xml.etree.ElementTree as ET

import numpy as np
import pytest
import torch
from PIL import Image
from scipy.optimize import linear_sum_assignment

from facekit.detect.boxes import iou_matrix, nms
from facekit.detect.mtcnn import pyramid_scales
from facekit.detect.mtcnn_nets import load_mtcnn_nets
from tests.conftest import shared


def _load(path):
    return np.asarray(Image.open(path).convert("RGB"))


def test_weights_load_into_every_layer():
    pnet, rnet, onet = load_mtcnn_nets()
    with torch.inference_mode():
        reg, prob = pnet(torch.zeros(1, 3, 12, 12))
        assert reg.shape == (1, 4, 1, 1) and prob.shape == (1, 1, 1)
        assert onet(torch.zeros(2, 3, 48, 48))[1].shape == (2, 10)
    # weights really came from the file: PReLU slopes are not PyTorch's 0.25 default
    assert not torch.allclose(pnet.prelu1.weight, torch.full_like(pnet.prelu1.weight, 0.25))


def test_pyramid_is_the_reference_pyramid():
    """360x640, min face 40, worked out by hand with the mtcnn package's formula: round(ln(360 / 12) / -ln(0.709)
    - 1) = round(8.89) = 9 scales 0.3 * 0.709^k; the levels k = 7, 8 are under 12 px (360 * 0.3 * 0.709^7 = 9.7)
    and give P-Net no output, so 7 remain; facekit's rule (every level down to the last 12 px one: 360 * 0.3 *
    0.709^6 = 13.7) gives the same 7."""
    assert pyramid_scales(360, 640, 40) == pytest.approx([0.3 * 0.709 ** k for k in range(7)])
    assert pyramid_scales(11, 640, 20) == []


def test_nms_groups_do_not_suppress_each_other():
    boxes = np.array([[0, 0, 10, 10], [0, 0, 10, 10]], float)
    assert len(nms(boxes, np.array([0.9, 0.8]), 0.5)) == 1
    assert len(nms(boxes, np.array([0.9, 0.8]), 0.5, groups=np.array([0, 1]))) == 2


def test_batch_equals_one_by_one(detector, sample_frames):
    frames = sample_frames[[5, 45, 75]]
    batched = detector.detect(frames)
    for frame, det in zip(frames, batched):
        single = detector.detect(frame[None])[0]
        assert len(single) == len(det) > 0
        np.testing.assert_allclose(single.boxes_xyxy, det.boxes_xyxy, atol=1e-3)
        np.testing.assert_allclose(single.landmarks_5x2, det.landmarks_5x2, atol=1e-3)


def test_sample_clip_group_shot_has_six_faces(detector, sample_frames):
    # the middle shot of the embedded clip is the 6-person photo; all of them are in frame at its start
    assert len(detector.detect(sample_frames[30])[0]) == 6


def test_group_photo_all_six_faces(detector):
    det = detector.detect(_load(shared("insightface/python-package/insightface/data/images/t1.jpg")))[0]
    # the six people, and the one false positive the mtcnn package finds too: a 14x16 px box scored 0.82
    # (extract-sequences' default filters, min_face_px 40 and min_score 0.95, drop it)
    wh = det.boxes_xyxy[:, 2:] - det.boxes_xyxy[:, :2]
    people = (det.scores > 0.95) & (wh.min(1) > 40)
    assert people.sum() == 6 and len(det) == 7 and wh[~people].max() < 20
    det = type(det)(det.boxes_xyxy[people], det.scores[people], det.landmarks_5x2[people])
    # landmarks lie inside their boxes; eyes above mouth
    lm, b = det.landmarks_5x2, det.boxes_xyxy
    assert ((lm[:, :, 0] >= b[:, None, 0] - 2) & (lm[:, :, 0] <= b[:, None, 2] + 2)).all()
    assert (lm[:, [0, 1], 1].mean(1) < lm[:, [3, 4], 1].mean(1)).all()


def test_no_faces_image(detector):
    assert len(detector.detect(_load(shared("mtcnn/tests/images/no-faces.jpg")))[0]) == 0


def test_recall_precision_on_dlib_hand_labels(detector):
    """dlib's hand-labelled PASCAL VOC faces (training.xml + testing.xml, 43 faces in 9 images).
    Measured: recall 43/43 = 1.00, precision 43/43 = 1.00 at IoU 0.5 (min IoU of a match 0.54)."""
    folder = shared("dlib/examples/faces")
    tp = fp = fn = 0
    for xml in ("training.xml", "testing.xml"):
        for image in ET.parse(folder / xml).getroot().iter("image"):
            gt = np.array([[float(b.get("left")), float(b.get("top")),
                            float(b.get("left")) + float(b.get("width")), float(b.get("top")) + float(b.get("height"))]
                           for b in image.iter("box") if b.get("ignore") != "1"]).reshape(-1, 4)
            det = detector.detect(_load(folder / image.get("file")))[0]
            iou = iou_matrix(gt, det.boxes_xyxy)
            rows, cols = linear_sum_assignment(-iou) if iou.size else ([], [])
            matched = int(sum(iou[r, c] >= 0.5 for r, c in zip(rows, cols)))
            tp, fn, fp = tp + matched, fn + len(gt) - matched, fp + len(det) - matched
    assert tp + fn == 43
    assert tp / (tp + fn) >= 0.95
    assert tp / (tp + fp) >= 0.95


def test_pyramid_reaches_the_largest_faces_at_a_small_min_face(sample_frames):
    """The mtcnn package counts its levels from the image side alone; at min face 16 its pyramid would stop before
    the level where the embedded clip's third-shot face (about 200 px) fits P-Net's 12 px window. facekit goes on
    to the last 12 px level, so the face is found at min face 16 as at 20."""
    from facekit.detect.mtcnn import MTCNN

    for min_face in (16, 20):
        assert len(MTCNN(min_face_size=min_face).detect(sample_frames[60])[0]) == 1
    assert pyramid_scales(270, 480, 16)[-1] * 270 >= 12 > pyramid_scales(270, 480, 16)[-1] * 0.709 * 270


def test_patch_outputs_do_not_depend_on_the_batch_from_the_floor_up(detector):
    """R-/O-Net calls are padded to at least MIN_BATCH patches: from there up, a patch's outputs are the same bits
    in any batch (so padding to 4 instead of 8 changed no dataset); one patch alone may take other kernels."""
    import torch

    from facekit.detect.mtcnn import MIN_BATCH, _normalise

    g = torch.Generator().manual_seed(0)
    for net, size in ((detector.onet, 48), (detector.rnet, 24)):
        x = _normalise(torch.rand(16, 3, size, size, generator=g) * 255)
        with torch.inference_mode():
            ref = net(x)
            for n in (MIN_BATCH, 8):
                assert all(torch.equal(r[:n], o) for r, o in zip(ref, net(x[:n]))), (size, n)


def test_pnet_regression_at_its_windows_is_the_whole_maps(detector):
    """P-Net's bbox head is computed only at the windows above the threshold: the same bits as over the map."""
    import torch

    from facekit.detect.mtcnn import _normalise

    g = torch.Generator().manual_seed(1)
    x = _normalise(torch.rand(3, 3, 120, 96, generator=g) * 255).contiguous(memory_format=torch.channels_last)
    with torch.inference_mode():
        reg, prob = detector.pnet(x)
        features = detector.pnet.features(x)
        b, y, xx = (prob > 0.2).nonzero(as_tuple=True)
        assert len(b) > 5
        assert torch.equal(reg[b, :, y, xx], detector.pnet.regression_at(features, b, y, xx))
        assert torch.equal(prob, detector.pnet.probability(features))


def test_integer_pyramid_levels_are_the_pooled_levels():
    """From uint8 images a level whose block divides the image is summed in integers: the same bits as average
    pooling the float level above it, level by level (what the pyramid did before); other sizes pool."""
    import torch.nn.functional as F

    from facekit.detect.boxes import ImagePyramid

    rng = np.random.default_rng(0)
    for h, w in ((64, 96), (60, 90), (37, 41)):
        images = torch.from_numpy(rng.integers(0, 256, (2, h, w, 3), dtype=np.uint8)).permute(0, 3, 1, 2)
        pyramid, pooled = ImagePyramid(images), images.float()
        for level in range(5):
            assert torch.equal(pyramid.level(level), pooled), (h, w, level)
            pooled = F.avg_pool2d(pooled, 2, ceil_mode=True)


def test_block_means_never_overflow():
    """16-bit sums hold 255 k^2 only up to k = 11; larger blocks average in float (still exact)."""
    import torch.nn.functional as F

    from facekit.detect.boxes import shrink_uint8

    frames = torch.full((1, 48, 48, 3), 255, dtype=torch.uint8)
    for k in (2, 11, 12, 16):
        want = F.avg_pool2d(frames.permute(0, 3, 1, 2).float(), k, ceil_mode=True)
        assert torch.equal(shrink_uint8(frames, k), want), k


def test_refine_many_is_refine_on_each_frame(detector, sample_frames):
    """O-Net over boxes of several frames in one pass gives each box the bits ``refine`` gives it on its frame
    alone (boxes off the frame included: probability 0, the box as given)."""
    frames = sample_frames[[5, 6, 45, 46]]
    found = detector.detect(frames)
    boxes = [d.boxes_xyxy + 3.0 for d in found]
    boxes[1] = np.concatenate([boxes[1], [[-900, -900, -800, -800]]])
    boxes[3] = np.array([[-900.0, -900, -800, -800]])  # a frame whose boxes are all off it
    index = np.concatenate([np.full(len(b), i) for i, b in enumerate(boxes)])
    many = detector.refine_many(list(frames), index, np.concatenate(boxes))
    one = [detector.refine(f, b) for f, b in zip(frames, boxes)]
    for field in ("boxes_xyxy", "scores", "landmarks_5x2"):
        assert np.array_equal(getattr(many, field), np.concatenate([getattr(d, field) for d in one])), field
    assert many.scores[-1] == 0 and np.array_equal(many.boxes_xyxy[-1], boxes[3][0])
