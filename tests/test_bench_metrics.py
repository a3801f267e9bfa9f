"""Metrics against independent computations: scikit-learn and brute-force loops on synthetic features."""

import numpy as np
import pytest
from sklearn.metrics import roc_curve

from facekit.bench.metrics import (kfold_accuracy, l2_normalise, open_set_identification, pair_scores, roc,
                                   tar_at_far)


def test_kfold_accuracy_by_hand():
    # 2 folds of 4 pairs. Fold 0: same at d=0.1,0.2; different at 0.9,1.5. Fold 1: same 0.3,1.2; different 0.8,1.0.
    d = np.array([0.1, 0.2, 0.9, 1.5, 0.3, 1.2, 0.8, 1.0])
    same = np.array([1, 1, 0, 0, 1, 1, 0, 0], bool)
    folds = np.array([0, 0, 0, 0, 1, 1, 1, 1])
    res = kfold_accuracy(d, same, folds, thresholds=np.array([0.25, 0.5, 1.1, 1.3]))
    # train on fold 1 -> accuracies at 0.25: 2/4, 0.5: 3/4, 1.1: 3/4, 1.3: 3/4 -> first best 0.5; fold 0 at 0.5: 4/4
    # train on fold 0 -> 0.25: 4/4 -> fold 1 at 0.25: d<0.25 none -> same pairs wrong, different right: 2/4
    assert res.thresholds.tolist() == [0.5, 0.25]
    assert res.accuracies.tolist() == [1.0, 0.5]
    assert res.mean == 0.75 and res.std == 0.25


def test_kfold_accuracy_equals_a_brute_force_loop():
    rng = np.random.default_rng(1)
    same = rng.random(600) < 0.5
    d = np.where(same, rng.normal(0.8, 0.2, 600), rng.normal(1.2, 0.2, 600))
    folds = np.repeat(np.arange(10), 60)
    grid = np.arange(0, 4, 0.01)
    res = kfold_accuracy(d, same, folds, grid)
    for f in range(10):
        tr, te = folds != f, folds == f
        best_t, best_a = None, -1
        for t in grid:
            a = np.mean((d[tr] < t) == same[tr])
            if a > best_a:
                best_t, best_a = t, a
        assert res.thresholds[f] == best_t
        assert res.accuracies[f] == pytest.approx(np.mean((d[te] < best_t) == same[te]))


def test_tar_at_far_rules():
    rng = np.random.default_rng(2)
    labels = np.r_[np.ones(1000), np.zeros(100_000)].astype(bool)
    scores = np.r_[rng.normal(0.6, 0.1, 1000), rng.normal(0.0, 0.1, 100_000)]
    fpr, tpr, _ = roc(labels, scores)
    ref_fpr, ref_tpr, _ = roc_curve(labels, scores)
    strict = tar_at_far(fpr, tpr, (1e-4, 1e-3, 1e-2))
    for far, v in strict.items():
        # brute force: the largest share of genuine pairs above a threshold that lets at most far*N impostors pass
        imp = np.sort(scores[~labels])[::-1]
        allowed = int(np.floor(far * len(imp)))
        thr = imp[allowed] if allowed < len(imp) else -np.inf  # scores > thr: at most `allowed` impostors
        assert v == pytest.approx(np.mean(scores[labels] > thr), abs=1e-3)
        assert v == pytest.approx(ref_tpr[ref_fpr <= far].max())
    nearest = tar_at_far(fpr, tpr, (1e-3,), rule="nearest")
    assert nearest[1e-3] == pytest.approx(ref_tpr[np.argmin(np.abs(ref_fpr - 1e-3))])
    with pytest.raises(ValueError):
        tar_at_far(fpr, tpr, rule="closest")


def _brute_open_set(p, ps, g, gs, fpirs):
    ranks, mates, tops = [], [], []
    for i in range(len(p)):
        s = g @ p[i]
        if ps[i] in set(gs):
            mate = max(s[j] for j in range(len(g)) if gs[j] == ps[i])
            rank = 1 + sum(1 for j in range(len(g)) if gs[j] != ps[i] and s[j] > mate)
            ranks.append(rank)
            mates.append(mate)
        else:
            tops.append(s.max())
    tops = sorted(tops, reverse=True)
    ranks, mates = np.array(ranks), np.array(mates)
    out = {}
    for f in fpirs:
        thr = tops[max(int(np.floor(len(tops) * f)) - 1, 0)]
        out[f] = np.mean((ranks == 1) & (mates > thr))
    return ranks, out


def test_open_set_identification_equals_brute_force():
    rng = np.random.default_rng(3)
    centres = l2_normalise(rng.normal(size=(40, 16)))
    gs = np.repeat(np.arange(30), [2 if i % 5 == 0 else 1 for i in range(30)])  # some subjects with 2 templates
    g = l2_normalise(centres[gs] + 0.4 * rng.normal(size=(len(gs), 16)))
    ps = rng.integers(0, 40, 300)  # subjects 30..39 are not enrolled: non-mated probes
    p = l2_normalise(centres[ps] + 0.6 * rng.normal(size=(300, 16)))
    res = open_set_identification(p, ps, g, gs, fpirs=(0.01, 0.1, 0.3), max_rank=10, chunk=37)
    ranks, tpir = _brute_open_set(p, ps, g, gs, (0.01, 0.1, 0.3))
    assert res.num_mated == len(ranks) and res.num_mated + res.num_nonmated == 300
    for k in (1, 5, 10):
        assert res.rank(k) == pytest.approx(np.mean(ranks <= k))
    for f in tpir:
        assert res.tpir_at_fpir[f] == pytest.approx(tpir[f])


def test_open_set_known_answer():
    # gallery: subjects 7 and 8 on the axes; probe of 7 close to it, probe of 8 closer to 7 (rank 2), impostor
    g = np.array([[1.0, 0.0], [0.0, 1.0]])
    p = l2_normalise(np.array([[1.0, 0.1], [1.0, 0.5], [0.6, 0.6]]))
    res = open_set_identification(p, np.array([7, 8, 99]), g, np.array([7, 8]), fpirs=(0.5,), max_rank=2)
    assert res.cmc.tolist() == [0.5, 1.0]
    # the impostor's top score 0.707 is the threshold; probe 0 scores 0.995 > 0.707 and is rank 1
    assert res.tpir_at_fpir[0.5] == 0.5


def test_pair_scores_in_chunks():
    rng = np.random.default_rng(4)
    f = rng.normal(size=(50, 8)).astype(np.float32)
    a, b = rng.integers(0, 50, 1000), rng.integers(0, 50, 1000)
    np.testing.assert_allclose(pair_scores(f, a, b, chunk=77), (f[a] * f[b]).sum(1), rtol=1e-5, atol=1e-6)
