"""What a person sees: progress in a log is whole lines (no carriage returns, no cursor moves); grids say how many
of how many groups they show and keep every label whole."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from PIL import Image, ImageDraw, ImageFont

from facekit.report.grids import HEADER, sequence_grid


@pytest.mark.slow
def test_progress_in_a_log_is_plain_lines(tmp_path):
    code = "import sys; from facekit.cli.main import main; sys.exit(main(sys.argv[1:]))"
    done = subprocess.run([sys.executable, "-c", code, "extract-sequences", "--out", str(tmp_path / "o"), "--device",
                           "cpu"], capture_output=True, text=True, timeout=600)  # stderr is a pipe, not a terminal
    assert done.returncode == 0, done.stderr
    assert "\r" not in done.stderr and "\x1b" not in done.stderr
    lines = [ln for ln in done.stderr.splitlines() if ln.startswith("extract-sequences:")]
    assert lines and "100%" in lines[-1] and "1/1" in lines[-1]


def test_grid_says_n_of_m_and_keeps_labels_whole(tmp_path):
    crops = tmp_path / "crops"
    crops.mkdir()
    Image.new("RGB", (32, 32), (200, 100, 50)).save(crops / "a.png")
    ids = [f"a-rather-long-video-name_{i:03d}_from_channel_seven#{i}" for i in range(63)]
    faces = pd.DataFrame({"sequence_id": np.repeat(ids, 3), "crop_path": "crops/a.png"})
    target = sequence_grid(faces, tmp_path, tmp_path / "g.png", rows=8, cols=10, tile=72)
    im = Image.open(target)
    assert im.height == HEADER + 8 * 72
    font = ImageFont.load_default()
    draw = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    assert im.width >= 8 * 72 // 8 + draw.textlength("8 of 63 sequences shown (evenly spaced)", font=font)
    # the label column is as wide as the longest wrapped label line: 3 tiles, so labels start at width - 3 * 72
    label_w = im.width - 3 * 72
    widest = max(draw.textlength(part, font=font) for i in ids for part in
                 __import__("textwrap").wrap(i, 24, break_on_hyphens=False))
    assert label_w >= widest + 4
    header = np.asarray(im.convert("L"))[:HEADER]
    assert (header < 128).any()  # the "N of M shown" line is drawn
    # a removed-faces grid without counts: rows of one or two crops make a narrow image, not a 10-tile canvas
    removed = pd.DataFrame({"g": ["x near_duplicate 0.9991"] * 2 + ["y outlier 0.1000"], "crop_path": "crops/a.png"})
    im2 = Image.open(sequence_grid(removed, tmp_path, tmp_path / "r.png", group="g", noun="removed faces", counts={}))
    assert im2.width < 72 * 4 and im2.height == HEADER + 2 * 72
