"""facekit view in a real browser: Playwright driving Chromium (Debian's ``chromium``; ``.ci/run`` installs it) over
the README walk-through's roots. Pages through sequences, filters, opens a sequence, marks it rejected, and checks
what the pages show against the manifests. ``FACEKIT_SCREENSHOTS=1`` writes a screenshot of each page type into
docs/images/ (the README and the docs show them)."""

from __future__ import annotations

import json
import os
import shutil
import threading
import time

import pandas as pd
import pytest

from facekit.manifests.review import current_marks
from tests.conftest import ROOT

pytestmark = pytest.mark.slow


def chromium() -> str:
    path = os.environ.get("FACEKIT_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
    if not path:
        pytest.skip("no Chromium (apt-get install chromium, or FACEKIT_CHROMIUM=PATH)")
    return path


@pytest.fixture(scope="module")
def served(walkthrough):
    """The viewer over the walk-through's roots on a free port of 127.0.0.1, in a thread of this process."""
    pytest.importorskip("playwright", reason="playwright not installed (pip install 'facekit[test]')")
    import uvicorn

    from facekit.view.server import make_app, serve_socket
    from facekit.view.state import Viewer

    out = walkthrough / "out"
    viewer = Viewer([out / "sequences", out / "seq_clean", out / "ids", out / "frames", walkthrough / "reports"],
                    reviewer="playwright")
    sock = serve_socket("127.0.0.1", 0)
    server = uvicorn.Server(uvicorn.Config(make_app(viewer), log_level="warning"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.05)
    yield f"http://127.0.0.1:{sock.getsockname()[1]}", walkthrough, viewer
    server.should_exit = True
    thread.join(10)


@pytest.fixture(scope="module")
def page(served):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium(), args=["--no-sandbox"])
        yield browser.new_page(viewport={"width": 1280, "height": 800})
        browser.close()


def shot(page, name: str, tmp_path) -> None:
    folder = ROOT / "docs" / "images" if os.environ.get("FACEKIT_SCREENSHOTS") else tmp_path
    page.evaluate("window.scrollTo(0, 0)")
    page.screenshot(path=str(folder / f"view-{name}.png"))


def images_loaded(page) -> list[bool]:
    """Whether each image of the page loaded (lazy ones are scrolled into view first)."""
    page.evaluate("window.scrollTo(0, document.body.scrollHeight)")
    page.wait_for_function("Array.from(document.images).every(i => i.complete)")
    return page.eval_on_selector_all("img", "els => els.map(e => e.naturalWidth > 0)")


def test_the_viewer_in_a_browser(served, page, tmp_path):
    url, folder, viewer = served
    seqs = pd.read_parquet(folder / "out/sequences/manifests/sequences")
    faces = pd.read_parquet(folder / "out/sequences/manifests/faces")

    page.goto(url + "/")
    row = page.locator('tr[data-root="0"]')
    assert row.locator('[data-table="sequences"]').inner_text() == str(len(seqs))
    assert row.locator('[data-table="faces"]').inner_text() == str(len(faces))
    shot(page, "roots", tmp_path)

    # page through the sequences two at a time
    page.goto(url + "/r/0?per=2")
    seen = []
    while True:
        seen += page.eval_on_selector_all("div.cell", "els => els.map(e => e.dataset.item)")
        assert all(images_loaded(page))
        if not page.locator("#next").count():
            break
        page.click("#next")
    assert seen == sorted(seqs["sequence_id"])

    # filter with a WHERE expression, then sort
    page.goto(url + "/r/0")
    page.fill('input[name="where"]', "num_faces >= 20")
    page.select_option('select[name="sort"]', "mean_blur")
    page.check('input[name="desc"]')
    page.click("#apply")
    want = seqs[seqs["num_faces"] >= 20].sort_values("mean_blur", ascending=False)["sequence_id"].tolist()
    assert page.eval_on_selector_all("div.cell", "els => els.map(e => e.dataset.item)") == want
    assert page.inner_text("#total") == str(len(want))
    page.wait_for_load_state("networkidle")
    shot(page, "grid", tmp_path)
    page.fill('input[name="where"]', "num_faces >>> 3")
    page.click("#apply")
    assert page.inner_text("#error").startswith("filter: ")

    # open a sequence: every face, in order, with its fields
    target = want[0]
    page.goto(url + "/r/0")
    page.click(f'div.cell[data-item="{target}"] a.key')
    mine = faces[faces["sequence_id"] == target].sort_values("frame_index")
    assert page.inner_text("#key") == target and page.inner_text("#face-count") == str(len(mine))
    frames = page.eval_on_selector_all('.face [data-field="frame_index"]', "els => els.map(e => e.textContent)")
    assert [int(f) for f in frames] == mine["frame_index"].tolist()
    assert all(images_loaded(page))

    # mark it rejected, with a reason: the page, the review table and a reload agree
    page.fill("#reason-item", "two people")
    page.click("#reject-item")
    page.wait_for_function("document.getElementById('mark-item').textContent.startsWith('rejected')")
    marks = current_marks(folder / "out/sequences")
    assert marks[["item_kind", "item_id", "decision", "reason", "reviewer"]].values.tolist() == \
        [["sequence", target, "rejected", "two people", "playwright"]]
    page.reload()
    assert page.inner_text("#mark-item") == "rejected: two people"
    shot(page, "sequence", tmp_path)
    page.goto(url + "/r/0?marked=rejected")
    assert page.eval_on_selector_all("div.cell.rejected", "els => els.map(e => e.dataset.item)") == [target]

    # the curation report of the curated root, and a benchmark report with its curves
    page.goto(url + "/r/1/curation?decision=all")
    assert page.inner_text("#kept") == "2" and all(images_loaded(page))
    shot(page, "curation", tmp_path)
    report = next(r for r in viewer.roots if r.kind == "report" and r.name.startswith("ijbc"))
    page.goto(url + f"/r/{report.index}/report")
    assert all(images_loaded(page)) and page.locator('img[alt="roc.png"]').count() == 1
    shot(page, "report", tmp_path)
    # a verification report keeps its worst pairs: the page lists report.json's
    lfw = next(r for r in viewer.roots if r.kind == "report" and r.name.startswith("lfw"))
    page.goto(url + f"/r/{lfw.index}/report")
    worst = json.loads((lfw.path / "report.json").read_text())["worst"]
    shown = page.eval_on_selector_all("table.worst", "ts => ts.map(t => t.rows.length - 1)")
    assert shown == [len(v) for v in worst.values()] and sum(shown) > 0
    # identities and utterances are grids too
    ids = pd.read_parquet(folder / "out/ids/manifests/identities")
    page.goto(url + "/r/2?per=500")
    assert page.eval_on_selector_all("div.cell", "els => els.map(e => e.dataset.item)") == \
        sorted(ids.loc[ids["status"] == "ok", "identity"].unique())
    utts = pd.read_parquet(folder / "out/frames/manifests/utterances")
    page.goto(url + "/r/3?per=500&sort=frames_kept&desc=1")
    want = utts[utts["frames_kept"] > 0].sort_values(["frames_kept", "utterance_id"], ascending=[False, True])
    assert page.eval_on_selector_all("div.cell", "els => els.map(e => e.dataset.item)") == \
        want["utterance_id"].tolist()
    assert all(images_loaded(page))
