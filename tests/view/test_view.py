"""facekit view's pages, filters, file serving, DuckDB lock-down and review marks, through its web app (Starlette's
test client), checked against the manifests read with pandas."""

from __future__ import annotations

import html
import re

import pandas as pd
import pytest

from facekit.manifests.review import current_marks

pytest.importorskip("starlette", reason="facekit view's extra not installed (pip install 'facekit[view]')")
GRID_CELL = re.compile(r'<div class="cell[^"]*" data-item="([^"]+)"')


def cells(page: str) -> list[str]:
    return [html.unescape(k) for k in GRID_CELL.findall(page)]


def total(page: str) -> int:
    return int(re.search(r'<span id="total">(\d+)</span>', page).group(1))


def test_roots_page_counts_and_lineage(client, roots):
    page = client.get("/").text
    src, derived, faces, seqs = roots
    assert f'data-table="faces">{len(faces)}<' in page and f'data-table="sequences">{len(seqs)}<' in page
    kept = faces["sequence_id"].isin(seqs["sequence_id"].iloc[::2]).sum()
    assert f'data-table="faces">{kept}<' in page
    assert page.count("<tr data-root=") == 2  # the derived root's input is given too: not listed twice


def test_lineage_input_is_added(roots):
    from facekit.view.state import Viewer

    viewer = Viewer([roots[1]])
    assert [r.path for r in viewer.roots] == [roots[1].resolve(), roots[0].resolve()] and viewer.given == 1


def test_grid_pages_sort_and_filter_as_pandas(client, roots):
    seqs = roots[3]
    first = client.get("/r/0").text
    assert total(first) == len(seqs) and cells(first) == sorted(seqs["sequence_id"])[:30]
    page = client.get("/r/0", params={"sort": "mean_blur", "desc": "1"}).text
    assert cells(page) == seqs.sort_values("mean_blur", ascending=False)["sequence_id"].tolist()
    page = client.get("/r/0", params={"where": "num_faces >= 6 AND mean_blur < 200"}).text
    want = seqs[(seqs["num_faces"] >= 6) & (seqs["mean_blur"] < 200)]
    assert total(page) == len(want) > 0 and cells(page) == sorted(want["sequence_id"])
    page = client.get("/r/0", params={"min_num_faces": "4", "max_num_faces": "5", "sort": "mean_abs_yaw"}).text
    want = seqs[seqs["num_faces"].between(4, 5)].sort_values("mean_abs_yaw")
    assert cells(page) == want["sequence_id"].tolist()


def test_grid_shows_first_middle_last_faces(client, roots):
    faces = roots[2]
    page = client.get("/r/0", params={"where": "sequence_id = 'v1#4'"}).text
    mine = faces[faces["sequence_id"] == "v1#4"].sort_values("frame_index")["crop_path"].tolist()
    n = len(mine)
    want = [mine[0], mine[(n + 1) // 2 - 1], mine[-1]]
    assert re.findall(r'src="/crop/0/([^"]+)"', page) == want


def test_paging(client, roots, monkeypatch):
    import facekit.view.server as server

    monkeypatch.setattr(server, "PER_PAGE", 7)
    from starlette.testclient import TestClient

    c = TestClient(server.make_app(client.viewer))
    seen = []
    for k in range(5):
        page = c.get("/r/0", params={"page": k, "sort": "num_faces"}).text
        seen += cells(page)
        assert ('id="next"' in page) == (k < 4)
    assert seen == roots[3].sort_values(["num_faces", "sequence_id"])["sequence_id"].tolist()


def test_item_page_lists_every_face(client, roots):
    faces = roots[2]
    page = client.get("/r/1/item", params={"key": "v0#2"}).text  # the derived root: crops in its input
    mine = faces[faces["sequence_id"] == "v0#2"].sort_values("frame_index")
    assert re.findall(r'src="/crop/0/([^"]+)"', page) == mine["crop_path"].tolist()
    assert f'<span id="face-count">{len(mine)}</span>' in page
    for url in re.findall(r'src="(/crop/[^"]+)"', page):
        r = client.get(url)
        assert r.status_code == 200 and r.headers["cache-control"].startswith("public, max-age=")
    assert client.get("/r/1/item", params={"key": "nope"}).status_code == 404


@pytest.mark.parametrize("where", ["num_faces >", "nosuchcolumn > 1", "1=1); DROP VIEW r0_faces; SELECT (1",
                                   "1=1; COPY (SELECT 1) TO '/tmp/x.csv'"])
def test_a_malformed_filter_is_a_message(client, where):
    r = client.get("/r/0", params={"where": where})
    assert r.status_code == 200 and 'class="error"' in r.text and cells(r.text) == []
    assert client.get("/r/0").status_code == 200  # nothing was dropped


@pytest.mark.parametrize("sql", [
    "SELECT * FROM read_text('/etc/passwd')", "SELECT * FROM read_csv('/etc/passwd')",
    "SELECT * FROM read_parquet('{outside}')", "ATTACH '{db}' AS other", "COPY (SELECT 1) TO '{csv}'",
    "INSTALL httpfs", "LOAD httpfs", "SET enable_external_access = true", "SET allowed_directories = ['/']",
    "SELECT * FROM glob('/etc/*')"])
def test_the_connection_reaches_nothing_but_the_manifests(client, tmp_path, sql):
    import duckdb

    outside = tmp_path / "outside.parquet"
    pd.DataFrame({"a": [1]}).to_parquet(outside)
    sql = sql.format(outside=outside, db=tmp_path / "x.duckdb", csv=tmp_path / "x.csv")
    with pytest.raises(duckdb.Error):
        client.viewer.cursor().execute(sql).fetchall()
    assert not (tmp_path / "x.csv").exists() and not (tmp_path / "x.duckdb").exists()
    # and as a filter: a message on the page
    where = "(SELECT count(*) FROM read_text('/etc/passwd')) > 0" if "read_text" in sql else None
    if where:
        r = client.get("/r/0", params={"where": where})
        assert 'class="error"' in r.text and "passwd" in r.text


def test_files_outside_the_manifests_are_404(client, roots, tmp_path):
    src = roots[0]
    (src / "secret.txt").write_text("no")
    (tmp_path / "outside.png").write_bytes((src / roots[2]["crop_path"][0]).read_bytes())
    # a manifest-named crop that is a symlink out of the root
    named = src / roots[2]["crop_path"][1]
    named.unlink()
    named.symlink_to(tmp_path / "outside.png")
    ok = f"/crop/0/{roots[2]['crop_path'][0]}"
    assert client.get(ok).status_code == 200
    for url in ["/crop/0/secret.txt", "/crop/0/../kept/lineage.json", "/crop/0/crops/..%2f..%2fsecret.txt",
                "/crop/0/crops%2F..%2F..%2Foutside.png", "/crop/0//etc/passwd", "/crop/0/%2Fetc%2Fpasswd",
                f"/crop/0/{roots[2]['crop_path'][1]}", "/crop/9/x.png", "/crop/x/y", "/crop/0/crops/./v0/x.png",
                "/r/0/file/../../secret.txt", "/r/0/file/roc.png", "/crop/0/manifests/faces/s00000of00001-000000"
                ".parquet"]:
        assert client.get(url).status_code == 404, url


def test_marks_are_the_only_write_and_survive_a_restart(client, roots):
    src = roots[0]
    before = {p: p.stat().st_mtime_ns for p in src.rglob("*") if p.is_file()}
    for url in ["/", "/r/0", "/r/0?sort=num_faces", "/r/0/item?key=v0%231"]:
        client.get(url)
    r = client.post("/r/0/mark", json={"item_kind": "sequence", "item_id": "v0#1", "reason": "two people"})
    assert r.status_code == 200 and r.json()["reviewer"] == "tester"
    face = roots[2]["crop_path"][0]
    assert client.post("/r/0/mark", json={"item_kind": "face", "item_id": face}).status_code == 200
    assert client.post("/r/0/mark", json={"item_kind": "nonsense", "item_id": "x"}).status_code == 400
    after = {p: p.stat().st_mtime_ns for p in src.rglob("*") if p.is_file()}
    changed = {p.relative_to(src).parts[:2] for p in after if before.get(p) != after[p]}
    assert changed == {("manifests", "review")}
    marks = current_marks(src)
    assert set(zip(marks["item_kind"], marks["item_id"])) == {("sequence", "v0#1"), ("face", face)}
    assert marks.set_index("item_id").loc["v0#1", "reason"] == "two people"

    from starlette.testclient import TestClient

    from facekit.view.server import make_app
    from facekit.view.state import Viewer

    again = TestClient(make_app(Viewer([src])))  # a restarted viewer shows the marks
    page = again.get("/r/0", params={"marked": "rejected"}).text
    assert cells(page) == ["v0#1"] and 'class="cell rejected"' in page
    client.post("/r/0/mark", json={"item_kind": "sequence", "item_id": "v0#1", "decision": "restored"})
    assert cells(client.get("/r/0", params={"marked": "rejected"}).text) == []


def test_curate_review_writes_a_root_without_the_rejected(client, roots, tmp_path):
    from facekit.cli.main import main
    from facekit.manifests.io import read_manifest
    from facekit.manifests.lineage import read_lineage

    src, _, faces, seqs = roots
    face = faces.loc[faces["sequence_id"] == "v2#3", "crop_path"].iloc[0]
    client.post("/r/0/mark", json={"item_kind": "sequence", "item_id": "v0#1"})
    client.post("/r/0/mark", json={"item_kind": "sequence", "item_id": "v1#5"})
    client.post("/r/0/mark", json={"item_kind": "sequence", "item_id": "v1#5", "decision": "restored"})
    client.post("/r/0/mark", json={"item_kind": "face", "item_id": face})
    out = tmp_path / "reviewed"
    assert main(["curate", "review", str(src), "--out", str(out)]) == 0
    kept = read_manifest(out, "faces")
    want = faces[(faces["sequence_id"] != "v0#1") & (faces["crop_path"] != face)]
    assert sorted(kept["frame_index"].astype(str) + kept["sequence_id"]) == \
        sorted(want["frame_index"].astype(str) + want["sequence_id"])
    new_seqs = read_manifest(out, "sequences").set_index("sequence_id")
    assert "v0#1" not in new_seqs.index and "v1#5" in new_seqs.index
    assert new_seqs.loc["v2#3", "num_faces"] == seqs.set_index("sequence_id").loc["v2#3", "num_faces"] - 1
    assert read_lineage(out)["command"] == "curate review"
    assert (out / kept["crop_path"].iloc[0]).is_file()  # crops stay in the source root
    report = (out / "curation_report.json").read_text()
    assert "rejected_sequence" in report and "rejected_face" in report
    assert main(["curate", "review", str(out), "--out", str(tmp_path / "again")]) == 2  # nothing marked there


def test_view_without_its_extra_says_how_to_install(monkeypatch, roots, capsys):
    import builtins

    from facekit.cli.main import main

    real = builtins.__import__

    def fake(name, *a, **k):
        if name == "uvicorn":
            raise ImportError("no uvicorn", name="uvicorn")
        return real(name, *a, **k)

    monkeypatch.setattr(builtins, "__import__", fake)
    assert main(["view", str(roots[0])]) == 2
    assert "pip install 'facekit[view]'" in capsys.readouterr().err


def test_binds_to_localhost_by_default():
    import inspect

    from facekit.cli.view import view_cmd
    from facekit.view.server import serve_socket

    assert inspect.signature(view_cmd).parameters["host"].default.default == "127.0.0.1"
    sock = serve_socket("127.0.0.1", 0)
    try:
        host, port = sock.getsockname()
        assert host == "127.0.0.1" and port > 0
    finally:
        sock.close()


def test_crop_names_with_url_characters(tmp_path):
    from starlette.testclient import TestClient

    from facekit.manifests.io import read_manifest, write_part
    from facekit.manifests.schemas import FACES
    from facekit.view.server import make_app
    from facekit.view.state import Viewer
    from tests.conftest import make_sequences_root

    root = tmp_path / "r"
    make_sequences_root(root, sequences=2)
    faces = read_manifest(root, "faces")
    odd = "crops/a b#c?d%e/000000.png"
    (root / odd).parent.mkdir(parents=True)
    (root / faces["crop_path"][0]).rename(root / odd)
    faces.loc[0, "crop_path"] = odd
    for p in (root / "manifests/faces").glob("*.parquet"):
        p.unlink()
    write_part(root, FACES, "s00000of00001-000000", faces)
    client = TestClient(make_app(Viewer([root])))
    page = client.get("/r/0/item", params={"key": faces["sequence_id"][0]}).text
    urls = re.findall(r'src="(/crop/[^"]+)"', page)
    assert urls and "%23" in urls[0] and all(client.get(html.unescape(u)).status_code == 200 for u in urls)
