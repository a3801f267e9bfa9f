"""Issue 26: one registry idiom for every component, and docs/extending.md's four plugin files (a loss, a backbone,
a protocol, an engine) written out of the page and run through the CLI."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest

from facekit.cli.main import main
from facekit.errors import InputError
from facekit.registry import Registry
from tests.conftest import ROOT
from tests.train.test_train_seqface import toy  # noqa: F401  (the fixture: 4 identities + 3 sequences of toy crops)


def test_registry_register_build_names_and_did_you_mean():
    reg: Registry = Registry("widget", hints={"gizmo": "widgets are not gizmos"})
    reg.register("square", "box")(lambda side: side * side)
    assert reg.build("square", 3) == 9 and reg.build("box", 2) == 4 and reg.names() == ("square", "box")
    with pytest.raises(InputError, match=r"recipe: unknown widget 'sqare'; did you mean square\? \(known: square, bo"):
        reg.check("sqare", "recipe")
    with pytest.raises(InputError, match="widgets are not gizmos"):
        reg.get("gizmo")
    with pytest.raises(ValueError, match="registered already"):
        reg.register("box")(len)


def test_every_component_kind_has_a_registry():
    from facekit.align.templates import TEMPLATES
    from facekit.bench.protocols import BENCHMARKS
    from facekit.embed.extractors import EXTRACTORS
    from facekit.engine.local import ENGINES
    from facekit.losses import AUXILIARY, HEADS
    from facekit.models import BACKBONES

    assert {"sphereface20", "resnet27", "iresnet50", "dlib_resnet"} <= set(BACKBONES.names())
    assert {"iresnet100", "facekit", "onnx", "dlib", "dlib-torch"} <= set(EXTRACTORS.names())
    assert set(HEADS.names()) >= {"softmax", "l2sphereface", "arcface", "cosface"}
    assert set(AUXILIARY.names()) == {"dsa", "centre", "none"}
    assert set(ENGINES.names()) >= {"local", "ray"} and set(BENCHMARKS.names()) >= {"ytf", "lfw", "ijb"}
    assert set(TEMPLATES.names()) >= {"arcface", "seqface", "dlib"}


@pytest.fixture
def plugins(tmp_path, monkeypatch):
    """docs/extending.md's python blocks, each written to the file its first line names; FACEKIT_PLUGINS set."""
    text = (ROOT / "docs" / "extending.md").read_text()
    files = []
    for block in re.findall(r"```python\n(.*?)```", text, re.S):
        name = re.match(r"# (\w+\.py)\n", block).group(1)
        (tmp_path / name).write_text(block)
        files.append(tmp_path / name)
    assert [f.name for f in files] == ["my_loss.py", "my_backbone.py", "my_protocol.py", "my_engine.py"]
    monkeypatch.setenv("FACEKIT_PLUGINS", ",".join(map(str, files)))
    return tmp_path


def test_a_plugin_loss_and_backbone_train(plugins, toy, tmp_path, capsys):  # noqa: F811
    base = ["train", "seqface", "-r", str(toy / "recipe.yaml"), "-q", "--set", "optim.steps=2"]
    assert main(base + ["-o", str(tmp_path / "run"), "--set", "model.backbone=tinynet", "--set",
                        "model.kwargs={width: 8}", "--set", "loss.chief=normface"]) == 0
    assert (tmp_path / "run" / "model.pt").is_file()
    capsys.readouterr()
    assert main(base + ["-o", str(tmp_path / "bad"), "--set", "loss.chief=normfase"]) == 2
    assert "unknown chief loss 'normfase'; did you mean normface?" in capsys.readouterr().err


def test_a_plugin_protocol_runs_by_name(plugins, tmp_path, capsys):
    feats = {"a1.jpg": [1.0, 0.0], "a2.jpg": [0.9, 0.1], "b1.jpg": [0.0, 1.0], "b2.jpg": [0.2, 0.8]}
    pd.DataFrame({"path": list(feats), "embedding": list(map(np.array, feats.values()))}).to_parquet(
        tmp_path / "f.parquet")
    (tmp_path / "pairs.csv").write_text("a,b,same\na1.jpg,a2.jpg,1\nb1.jpg,b2.jpg,1\n"
                                        "a1.jpg,b1.jpg,0\na2.jpg,b2.jpg,0\n")
    assert main(["bench", "run", "pairs_csv", "--features", str(tmp_path / "f.parquet"), "--out",
                 str(tmp_path / "reports"), "--set", f"pairs={tmp_path / 'pairs.csv'}", "-q"]) == 0
    report = pd.read_json(next((tmp_path / "reports").glob("pairs_csv-*/report.json")), typ="series")
    # cosines: same pairs 0.994, 0.970; different 0, 0.336: the cut after the 2 different pairs is right on all 4
    assert report["metrics"]["accuracy"] == 1.0 and report["metrics"]["pairs"] == 4
    assert main(["bench", "list"]) == 0 and "pairs_csv: Verification on a CSV" in capsys.readouterr().out


@pytest.mark.slow
def test_a_plugin_engine_builds_the_same_dataset(plugins, tmp_path):
    from facekit.manifests.io import read_manifest

    for engine, out in (("local", tmp_path / "local"), ("threads", tmp_path / "threads")):
        assert main(["extract-sequences", "-o", str(out), "-q", "--engine", engine, "--workers", "2"]) == 0
    for table in ("videos", "sequences", "faces"):
        pd.testing.assert_frame_equal(read_manifest(tmp_path / "local", table),
                                      read_manifest(tmp_path / "threads", table))
