"""The command line: help everywhere, version, one-line errors with a non-zero exit, never a traceback."""

from __future__ import annotations

import subprocess
import sys

import pytest

from facekit import __version__
from facekit.cli.main import main
from tests.conftest import ROOT


def _run(*args):
    return subprocess.run([sys.executable, "-m", "facekit", *args], capture_output=True, text=True, cwd=ROOT)


@pytest.mark.parametrize("cmd", [[], ["extract-sequences"], ["manifest"], ["manifest", "query"],
                                 ["manifest", "stats"], ["manifest", "schema"]])
def test_help(cmd, capsys):
    assert main([*cmd, "--help"]) == 0
    assert "Usage" in capsys.readouterr().out


def test_version(capsys):
    assert main(["--version"]) == 0
    assert capsys.readouterr().out.strip() == f"facekit {__version__}"


@pytest.mark.parametrize("args, message", [
    (["extract-sequences", "no/such/video.mp4"], "no/such/video.mp4: no such file or folder"),
    (["extract-sequences", "--shard", "5/2"], "--shard '5/2': need 0 <= i < n"),
    (["extract-sequences", "--device", "cuda:7"], "--device"),
    (["extract-sequences", "--template", "arcfase"], "did you mean arcface"),
    (["manifest", "stats", "--root", "no/such/root"], "no/such/root"),
    (["manifest", "query", "SELECT nope FROM videos", "--root", "manifests/examples"], "query failed"),
])
@pytest.mark.slow
def test_bad_input_is_one_line(args, message):
    res = _run(*args)
    assert res.returncode != 0
    assert "Traceback" not in res.stderr
    lines = [ln for ln in res.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and message in lines[0], res.stderr


def test_unknown_option_is_a_usage_error():
    res = _run("extract-sequences", "--frobnicate")
    assert res.returncode == 2 and "Traceback" not in res.stderr and "frobnicate" in res.stderr


@pytest.mark.parametrize("args, line", [
    (["bench", "ytf"], "facekit: error: missing options --root, --splits (see: facekit bench ytf --help)"),
    (["bench", "ytf", "--splits", "s.txt"], "facekit: error: missing option --root (see: facekit bench ytf --help)"),
    (["bench", "ytf", "--root", "r", "--splits", "s", "--N", "x"], "facekit: error: invalid value for '--N'"),
    (["frobnicate"], "facekit: error: no such command 'frobnicate'"),
    (["extract-sequences", "--workers", "-1"], "facekit: error: invalid value for '--workers' / '-j': Input should be "
                                               "greater than or equal to 0"),
    (["extract-frames", "r", "-o", "o", "--frames", "0"], "facekit: error: invalid value for '--frames' / '-k'"),
    (["bench", "ytf", "--root", "r", "--splits", "s", "--navg", "0"], "facekit: error: invalid value for '--navg'"),
])
def test_usage_errors_are_one_facekit_line(args, line, capsys):
    assert main(args) == 2
    err = [ln for ln in capsys.readouterr().err.splitlines() if ln.strip()]
    assert len(err) == 1 and err[0].startswith(line), err


def test_ctrl_c_says_how_to_resume(monkeypatch, capsys, tmp_path):
    import facekit.bench.report as report

    def interrupted(_reports):
        raise KeyboardInterrupt

    monkeypatch.setattr(report, "compare", interrupted)
    (tmp_path / "report.json").write_text("{}")
    assert main(["bench", "compare", str(tmp_path)]) == 130
    assert capsys.readouterr().err.strip() == "facekit: interrupted; rerun the same command to resume"


def test_cli_start_up_imports_no_heavy_module():
    """--help and usage errors stay fast: importing the CLI (and building every command's options) loads neither
    torch nor numpy, pandas or duckdb (benchmarks/cli_startup.py measures the time)."""
    code = ("import sys; from facekit.cli.main import main; main(['bench', 'ytf', '--help']); "
            "main(['train', 'seqface', '--help']); main(['curate', '--help']); "
            "print(sorted(m for m in ('torch', 'numpy', 'pandas', 'duckdb', 'pyarrow') if m in sys.modules))")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert res.returncode == 0 and res.stdout.strip().splitlines()[-1] == "[]", res.stdout[-500:] + res.stderr


def test_manifest_query_and_stats_on_examples(capsys):
    assert main(["manifest", "query", "SELECT count(*) AS n FROM sequences", "--root", str(ROOT / "manifests/examples"),
                 "--format", "csv"]) == 0
    assert capsys.readouterr().out.splitlines()[1].strip().isdigit()
    assert main(["manifest", "stats", "--root", str(ROOT / "manifests/examples")]) == 0
    assert "faces" in capsys.readouterr().out


def test_extract_on_the_embedded_sample(tmp_path, capsys):
    """The README's first command: no input given -> the sample clip shipped with facekit."""
    out = tmp_path / "out"
    assert main(["extract-sequences", "--out", str(out), "--quiet", "--device", "cpu"]) == 0
    text = capsys.readouterr().out
    assert "videos by status: ok 1" in text
    assert (out / "sequences_preview.png").stat().st_size > 1000
    assert (out / "extract_config.json").exists()


def test_generated_folders_are_ignored_and_pytest_keeps_no_temporaries():
    ignored = (ROOT / ".gitignore").read_text().split()
    assert {"/out/", "/runs/", "/reports/", "/.facekit-cache/"} <= set(ignored)
    assert 'tmp_path_retention_policy = "failed"' in (ROOT / "pyproject.toml").read_text()


def test_top_level_help_has_examples(capsys):
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    assert "Examples" in out and "facekit train seqface -r recipes/seqface_small_real.yaml" in out


def test_one_device_option_everywhere():
    """Every command that takes --device has the same default and help text (facekit/cli/options.py)."""
    seen = {path: (p.default, p.help) for path, cmd in _leaf_commands() for p in cmd.params
            if "--device" in getattr(p, "opts", [])}
    assert len(seen) >= 10 and len(set(seen.values())) == 1, seen


def _leaf_commands():
    from typer.main import get_command

    from facekit.cli.main import app

    def walk(cmd, path=()):
        subs = getattr(cmd, "commands", {})
        if not subs:
            yield " ".join(path), cmd
        for name, sub in subs.items():
            yield from walk(sub, (*path, name))

    return list(walk(get_command(app)))


# options whose absence means "not given" (an optional input), not a setting with a value
OPTIONAL_INPUTS = {"--model", "--features", "--aggregator", "--labels", "--meta", "--manifest", "--root", "--pairs",
                   "--bin", "--identities", "--names", "--recipe", "--set"}


def test_every_option_shows_its_default_and_every_output_has_one():
    """One --out policy: every command that writes has a default output (shown in --help); every setting shows its
    default, including the extract settings that a recipe may set (read from ExtractConfig); every short option
    has a long form."""
    from facekit.pipeline.config import ExtractConfig

    outs, hidden = {}, []
    for path, cmd in _leaf_commands():
        for p in cmd.params:
            if p.param_type_name != "option":
                continue
            assert any(o.startswith("--") for o in p.opts), f"{path} {p.opts}: a short option without a long form"
            if getattr(p, "is_flag", False):
                continue
            documented = p.default is not None or "[default:" in (p.help or "")
            if "--out" in p.opts:
                outs[path] = documented and not p.required
            elif not p.required and not documented and not OPTIONAL_INPUTS & set(p.opts):
                hidden.append(f"{path} {p.opts[0]}")
    assert not hidden, hidden
    assert len(outs) >= 14 and all(outs.values()), outs
    helps = {p.opts[0]: p.help for path, cmd in _leaf_commands() if path == "extract-sequences" for p in cmd.params}
    cfg = ExtractConfig()
    assert f"default: {cfg.detect_every}," in helps["--detect-every"]
    assert f"default: {cfg.filters.min_blur}," in helps["--min-blur"]
    assert f"default: {cfg.tracker.max_gap}," in helps["--max-gap"]



def test_every_help_wraps_cleanly(capsys, monkeypatch):
    """Plain, wrapped help on an 80-column terminal for every command: no rich truncation ('…'), no markup
    escapes or type placeholders (<bool>, <list[Path]>, {root}), and the Ray extra named where Ray is offered."""
    from facekit.cli.main import main

    monkeypatch.setenv("COLUMNS", "80")
    for path, _ in _leaf_commands():
        assert main([*path.split(), "--help"]) == 0
        text = capsys.readouterr().out
        for bad in ("…", "<bool>", "{", "\\[", "\x1b"):
            assert bad not in text, (path, bad)
        assert max(len(line) for line in text.splitlines()) <= 80, path
        if "--engine" in text:
            assert "pip install 'facekit[ray]'" in " ".join(text.split()), path
