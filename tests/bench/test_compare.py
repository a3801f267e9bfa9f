"""Issue 24: reports you can compare. `bench compare` says per run what it was (protocol, method with N and
n_avg, model, threshold or TAR rule, flip, fallback share); a strict-rule IJB run also gives the nearest-FPR
figure the published tables use, labelled."""

from __future__ import annotations

import json

import numpy as np

from facekit.bench.report import compare


def _report(path, bench, config, metrics):
    path.mkdir(parents=True)
    (path / "report.json").write_text(json.dumps({"bench": bench, "config": config, "metrics": metrics}))
    return path


def test_compare_names_what_each_run_was(tmp_path):
    a = _report(tmp_path / "ytf-avg", "ytf", {"protocol": "dan", "method": "avg", "n": 10, "n_avg": 4,
                                              "threshold": "kfold", "features": "iresnet50-abc123-flip"},
                {"accuracy_mean": 0.95, "crops": {"fallback_share": 0.0125}})
    b = _report(tmp_path / "ytf-agg", "ytf", {"protocol": "dan", "method": "aggregator", "n": 10, "n_avg": 4,
                                              "threshold": "kfold", "features": "iresnet50-abc123"},
                {"accuracy_mean": 0.96, "crops": {"fallback_share": 0.0}})
    c = _report(tmp_path / "ijb", "ijbc", {"layout": "official", "method": "avg", "tar_rule": "strict",
                                           "features": "features-f00d"},
                {"verification_11": {"tar_far_0.0001": 0.9, "nearest_fpr": {"tar_far_0.0001": 0.91}}})
    table = compare([a, b, c])
    rows = {line.split(" | ")[0].strip("| "): [x.strip(" |") for x in line.split(" | ")[1:]]
            for line in table.splitlines()[2:]}
    assert rows["protocol"] == ["ytf dan", "ytf dan", "ijbc official"]
    assert rows["method"] == ["avg N=10 n_avg=4", "aggregator N=10 n_avg=4", "avg"]
    assert rows["model"] == ["iresnet50-abc123", "iresnet50-abc123", "features-f00d"]
    assert rows["threshold / TAR rule"] == ["kfold", "kfold", "strict"]
    assert rows["flip"] == ["on", "off", "-"] and rows["fallback share"] == ["1.25%", "0.00%", "-"]
    assert rows["verification_11.nearest_fpr.tar_far_0.0001"] == ["", "", "0.9100"]


def test_strict_ijb_runs_also_give_the_nearest_fpr_figure():
    from facekit.bench.run_ijb import _verify
    from facekit.metrics import tar_at_far

    rng = np.random.default_rng(0)
    feats = rng.normal(size=(40, 8)).astype(np.float32)
    feats /= np.linalg.norm(feats, axis=1, keepdims=True)
    ids = np.arange(40)
    pairs = np.stack([rng.integers(0, 40, 300), rng.integers(0, 40, 300)], 1)
    labels = rng.random(300) < 0.3
    v, fpr, tpr = _verify(ids, feats, pairs, "strict", "test", labels=labels)
    nearest = tar_at_far(fpr, tpr, rule="nearest")
    assert v["nearest_fpr"] == {f"tar_far_{far:g}": t for far, t in nearest.items()}
    assert "nearest_fpr" not in _verify(ids, feats, pairs, "nearest", "test", labels=labels)[0]
