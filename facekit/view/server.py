"""``facekit view``'s web app (Starlette): pages rendered on the server from DuckDB queries over the manifests,
crops served lazily with caching headers, review marks written as the root's ``review`` table."""

from __future__ import annotations

import math
from pathlib import Path
from urllib.parse import urlencode

from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, JSONResponse, Response
from starlette.routing import Route

from facekit.bench.report import describe_run, flatten_metrics
from facekit.errors import InputError
from facekit.view import catalog, queries
from facekit.view.state import Viewer

TEMPLATES = Environment(loader=FileSystemLoader(Path(__file__).parent / "templates"),
                        autoescape=select_autoescape(["html"]))
CACHE = "public, max-age=86400"
PER_PAGE = 48


def _not_found(_: Request | None = None, exc: Exception | None = None) -> Response:
    return Response("not found", status_code=404, media_type="text/plain")


def _html(name: str, **context) -> HTMLResponse:
    return HTMLResponse(TEMPLATES.get_template(name).render(**context))


def _number(value: str | None) -> float | None:
    try:
        return float(value) if value not in (None, "") else None
    except ValueError:
        raise queries.FilterError(f"filter: {value!r} is not a number") from None


def _int(request: Request, name: str, default: int = 0) -> int:
    try:
        return max(0, int(request.query_params.get(name, default)))
    except ValueError:
        return default


def make_app(viewer: Viewer) -> Starlette:
    """The app over ``viewer``'s roots. Page handlers are plain functions: Starlette runs them in its thread pool,
    each query on its own DuckDB cursor, so a slow page never holds up the crops of another."""
    def root_of(request: Request):
        try:
            return viewer.root(int(request.path_params["index"]))
        except (KeyError, ValueError):
            return None

    def faces_of(root, rows):
        """Rows of faces as dicts with their crop URL and mark."""
        out = []
        for r in rows.to_dict("records"):
            r["url"] = viewer.crop_url(root, r.get("crop_path"))
            r["mark"] = viewer.mark_of(root, "face", r.get("crop_path")) if r.get("crop_path") else None
            out.append(r)
        return out

    def roots_page(request: Request) -> Response:
        rows = []
        for r in viewer.roots:
            info = {"root": r, "given": r.index < viewer.given, "maker": r.lineage.get("command")}
            if r.kind == "report":
                rep = catalog.report_summary(r)
                info["bench"] = rep.get("bench") or r.name.split("-")[0]
            else:
                info["counts"] = viewer.counts(r)
                info["marks"] = sum(m["decision"] == "rejected" for m in viewer.marks[r.index].values())
                info["inputs"] = r.lineage.get("inputs", [])
                info["noun"] = queries.UNITS[r.kind].noun
            rows.append(info)
        return _html("roots.html", rows=rows)

    def grid_page(request: Request) -> Response:
        root = root_of(request)
        if root is None or root.kind == "report":
            return _not_found()
        unit, q = queries.UNITS[root.kind], request.query_params
        expr, sort, desc = q.get("where", ""), q.get("sort", ""), q.get("desc") == "1"
        page_no, shown = _int(request, "page"), q.get("marked", "all")
        per = min(500, _int(request, "per", PER_PAGE) or 1)  # items a page
        error, total, items, thumbs = None, 0, [], {}
        try:
            ranges = {f: (_number(q.get(f"min_{f}")), _number(q.get(f"max_{f}"))) for f in unit.fields}
            ranges = {f: b for f, b in ranges.items() if b != (None, None)}
            only = viewer.rejected(root, unit.item_kind) if shown == "rejected" else None
            total, df, faces = queries.page(viewer.cursor(), root, expr, ranges, sort, desc, page_no, per, only)
            for f in faces.to_dict("records"):
                thumbs.setdefault(f["k"], []).append({"url": viewer.crop_url(root, f["crop_path"]), "i": f["i"],
                                                      "n": f["n"]})
            items = df.to_dict("records")
            for it in items:
                it["_mark"] = viewer.mark_of(root, unit.item_kind, it[unit.key])
        except queries.FilterError as err:
            error = str(err)
        pages = max(1, math.ceil(total / per))
        link = lambda **kw: f"/r/{root.index}?" + urlencode({**dict(q), **kw})  # noqa: E731
        return _html("grid.html", root=root, unit=unit, items=items, thumbs=thumbs, total=total, page=page_no,
                     pages=pages, error=error, q=q, link=link, sort=sort, desc=desc, marked=shown, per=per)

    def item_page(request: Request) -> Response:
        root = root_of(request)
        key = request.query_params.get("key")
        if root is None or root.kind == "report" or not key:
            return _not_found()
        unit = queries.UNITS[root.kind]
        page_no = _int(request, "page")
        row, n, faces = queries.item(viewer.cursor(), root, key, page_no)
        if row.empty:
            return _not_found()
        return _html("item.html", root=root, unit=unit, key=key, row=row.to_dict("records")[0], n=n,
                     faces=faces_of(root, faces), page=page_no, pages=max(1, math.ceil(n / 200)),
                     mark=viewer.mark_of(root, unit.item_kind, key))

    def curation_page(request: Request) -> Response:
        root = root_of(request)
        if root is None or root.curation is None:
            return _not_found()
        report, decisions = viewer.curation(root)
        which = request.query_params.get("decision", "removed")
        if which != "all" and len(decisions):
            removed = decisions["decision"].str.startswith("removed")
            decisions = decisions[removed if which == "removed" else ~removed]
        page_no = _int(request, "page")
        shown = decisions.iloc[page_no * PER_PAGE:(page_no + 1) * PER_PAGE]
        source = next((r for r in viewer.roots if r.path == _input_of(viewer, root)), root)  # holds the crops
        group = next((c for c in ("sequence_id", "identity", "utterance_id") if c in decisions.columns), None)
        rows = [{"d": d, "urls": [viewer.crop_url(source, d[c]) for c in ("crop_path", "duplicate_of") if d.get(c)]}
                for d in shown.to_dict("records")]
        bare = [str(r["d"][group]) for r in rows if not r["urls"]] if group and source.kind in queries.UNITS else []
        if bare:  # decisions on whole groups (overlap): their first / middle / last faces, in one query
            _, _, faces = queries.page(viewer.cursor(), source, only=bare, per_page=len(bare))
            of_group: dict = {}
            for k, p in zip(faces["k"], faces["crop_path"]):
                of_group.setdefault(k, []).append(viewer.crop_url(source, p))
            for r in rows:
                r["urls"] = r["urls"] or of_group.get(str(r["d"][group]), [])
        columns = [c for c in decisions.columns if c not in ("crop_path", "duplicate_of")]
        return _html("curation.html", root=root, report=report, rows=rows, columns=columns, which=which,
                     page=page_no, pages=max(1, math.ceil(len(decisions) / PER_PAGE)), total=len(decisions))

    def report_page(request: Request) -> Response:
        root = root_of(request)
        if root is None or root.kind != "report":
            return _not_found()
        rep = catalog.report_summary(root)
        metrics = list(flatten_metrics(rep.get("metrics", {})).items())
        images = [n for n in catalog.REPORT_IMAGES if (root.path / n).is_file()]
        worst = rep.get("worst", {})
        return _html("report.html", root=root, rep=rep, run=describe_run(rep), metrics=metrics, images=images,
                     worst=worst)

    def report_file(request: Request) -> Response:
        root, name = root_of(request), request.path_params["name"]
        if root is None or root.kind != "report" or name not in catalog.REPORT_IMAGES or \
                not (root.path / name).is_file():
            return _not_found()
        return FileResponse(root.path / name, headers={"Cache-Control": CACHE})

    def crop(request: Request) -> Response:
        try:
            index = int(request.path_params["index"])
        except ValueError:
            return _not_found()
        path = viewer.servable(index, request.path_params["rel"])
        if path is None:
            return _not_found()
        return FileResponse(path, headers={"Cache-Control": CACHE})

    async def mark(request: Request) -> Response:
        root = root_of(request)
        if root is None or root.kind == "report":
            return _not_found()
        try:
            body = await request.json()
            row = viewer.mark(root, str(body["item_kind"]), str(body["item_id"]), str(body.get("decision",
                              "rejected")), body.get("reason") or None)
        except (ValueError, KeyError, TypeError, InputError) as err:
            return JSONResponse({"error": str(err)}, status_code=400)
        return JSONResponse(row)

    routes = [Route("/", roots_page), Route("/r/{index:int}", grid_page), Route("/r/{index:int}/item", item_page),
              Route("/r/{index:int}/curation", curation_page), Route("/r/{index:int}/report", report_page),
              Route("/r/{index:int}/file/{name}", report_file), Route("/crop/{index}/{rel:path}", crop),
              Route("/r/{index:int}/mark", mark, methods=["POST"])]
    return Starlette(routes=routes, exception_handlers={404: _not_found})


def _input_of(viewer: Viewer, root) -> Path | None:
    """The first input root of a curated root, when the viewer has it."""
    ancestors = catalog.lineage_ancestors(root.path)
    paths = [r.path for r in viewer.roots]
    return next((a for a in ancestors if a in paths), None)



def serve_socket(host: str, port: int):
    """A listening socket on ``host:port`` (port 0: a free one the OS picks)."""
    import socket

    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as err:
        sock.close()
        raise InputError(f"--host {host} --port {port}: cannot listen there ({err.strerror})") from None
    sock.listen(128)
    return sock
