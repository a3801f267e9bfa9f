"""Issue 26: the package's layers point down. Every import in facekit/ (module level and inside functions) is read
with ``ast`` and checked against the layer order written in CONTRIBUTING.md; a cycle between packages fails too."""

from __future__ import annotations

import ast
import re
from pathlib import Path

from tests.conftest import ROOT

PACKAGE = ROOT / "facekit"


def layer_order() -> dict[str, int]:
    """Top-level module or package of facekit -> its layer (0 = lowest), from CONTRIBUTING.md's ```layers block."""
    block = re.search(r"```layers\n(.*?)```", (ROOT / "CONTRIBUTING.md").read_text(), re.S)
    assert block, "CONTRIBUTING.md has no ```layers block"
    return {name: i for i, line in enumerate(block.group(1).splitlines()) for name in line.split()}


def unit(path: Path) -> str:
    """The top-level unit a file belongs to: facekit/train/seqface.py -> train, facekit/fsutil.py -> fsutil."""
    rel = path.relative_to(PACKAGE)
    return rel.parts[0] if len(rel.parts) > 1 else rel.stem


def imports(path: Path) -> list[tuple[int, str]]:
    """(line, target unit) of every facekit import in the file, wherever it sits."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.ImportFrom):
            assert node.level == 0, f"{path}:{node.lineno}: relative import; write facekit.<package>..."
            names = [node.module] if node.module else []
            if node.module == "facekit":  # from facekit import api
                names = [f"facekit.{a.name}" for a in node.names]
        elif isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        else:
            continue
        for name in names:
            parts = name.split(".")
            if parts[0] == "facekit":
                found.append((node.lineno, parts[1] if len(parts) > 1 else "__init__"))
    return found


def edges() -> list[tuple[str, int, str, str]]:
    """(file, line, from unit, to unit) for every import between different units."""
    out = []
    for path in sorted(PACKAGE.rglob("*.py")):
        src = unit(path)
        for line, dst in imports(path):
            if dst != src:
                out.append((str(path.relative_to(PACKAGE.parent)), line, src, dst))
    return out


def test_every_unit_has_a_layer():
    order = layer_order()
    units = {unit(p) for p in PACKAGE.rglob("*.py")}
    assert not units - set(order), f"not in CONTRIBUTING.md's layers: {sorted(units - set(order))}"
    assert not set(order) - units, f"layers name what facekit/ does not hold: {sorted(set(order) - units)}"


def test_imports_point_down():
    order = layer_order()
    wrong = [f"{f}:{n} {a} (layer {order[a]}) imports {b} (layer {order[b]})"
             for f, n, a, b in edges() if order[b] >= order[a]]
    assert not wrong, "imports against the layer order:\n" + "\n".join(wrong)


def test_no_cycle_between_packages():
    graph: dict[str, set[str]] = {}
    for _, _, a, b in edges():
        graph.setdefault(a, set()).add(b)
    state: dict[str, int] = {}  # 1: on the path, 2: done

    def visit(node: str, path: list[str]) -> list[str] | None:
        state[node] = 1
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return path + [node, nxt]
            if nxt not in state and (cycle := visit(nxt, path + [node])):
                return cycle
        state[node] = 2
        return None

    for start in sorted(graph):
        if start not in state:
            cycle = visit(start, [])
            assert cycle is None, "package cycle: " + " -> ".join(cycle)


def test_the_layer_test_catches_an_upward_import(tmp_path, monkeypatch):
    """The check itself: an import from a lower package to a higher one, hidden in a function, is reported."""
    import tests.test_layers as me

    fake = tmp_path / "facekit"
    (fake / "metrics").mkdir(parents=True)
    (fake / "metrics" / "x.py").write_text("def f():\n    from facekit.bench.runners import run\n")
    monkeypatch.setattr(me, "PACKAGE", fake)
    assert [(a, b) for _, _, a, b in me.edges()] == [("metrics", "bench")]
    order = layer_order()
    assert order["bench"] > order["metrics"]
