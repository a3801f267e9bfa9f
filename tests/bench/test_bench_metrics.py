"""Metrics against independent computations: scikit-learn and brute-force loops on synthetic features."""

import numpy as np
import pytest
from sklearn.metrics import roc_curve

from facekit.metrics import (
    best_threshold_accuracy,
    kfold_accuracy,
    l2_normalise,
    open_set_identification,
    pair_scores,
    roc,
    squared_distances,
    tar_at_far,
)


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
    with pytest.raises(ValueError):
        tar_at_far(fpr, tpr, rule="closest")


def test_nearest_rule_takes_the_largest_tpr_among_the_nearest_fpr_points():
    """insightface's ijb_11.py reverses the ROC arrays before argmin |fpr - FAR|, so on ties the point that comes
    first in reversed order, the largest TPR, wins. Worked by hand on a curve with repeated FPR values."""
    fpr = np.array([0.0, 0.0, 0.0, 0.25, 0.25, 0.5, 1.0])
    tpr = np.array([0.0, 0.25, 0.5, 0.5, 0.75, 1.0, 1.0])
    got = tar_at_far(fpr, tpr, (1e-6, 0.24, 0.3), rule="nearest")
    # FAR 1e-6: nearest FPR is 0 (three points), the largest TPR there is 0.5 (the first-index rule gives 0.0)
    # FAR 0.24 and 0.3: nearest FPR is 0.25 (two points, TPR 0.5 and 0.75) -> 0.75
    assert got == {1e-6: 0.5, 0.24: 0.75, 0.3: 0.75}
    assert tar_at_far(fpr, tpr, (0.24, 0.3), rule="strict") == {0.24: 0.5, 0.3: 0.75}


def test_nearest_rule_on_scores_worked_by_hand():
    # 4 genuine (0.9, 0.8, 0.7, 0.2) and 4 impostors (0.5, 0.3, 0.1, 0.05). Sweeping the threshold down:
    # (0, 0) (0, .75) [(.25, .75) collinear, dropped] (.5, .75) (.5, 1) ... (1, 1). insightface's rule at FAR 1e-6:
    # nearest FPR 0, largest TPR there 0.75. At FAR 0.3 and 0.6 the nearest FPR is 0.5 (TPR 0.75 and 1.0) -> 1.0,
    # a point above the target FAR at 0.3; the strict rule says 0.75 there and 1.0 at 0.6 (FPR 0.5 <= 0.6).
    labels = np.array([1, 1, 1, 1, 0, 0, 0, 0], bool)
    scores = np.array([0.9, 0.8, 0.7, 0.2, 0.5, 0.3, 0.1, 0.05])
    fpr, tpr, _ = roc(labels, scores)
    assert fpr[0] == 0 and tpr[0] == 0  # the nearest-FPR-at-0 case: the first point has TPR 0
    assert tar_at_far(fpr, tpr, (1e-6, 0.3, 0.6), rule="nearest") == {1e-6: 0.75, 0.3: 1.0, 0.6: 1.0}
    assert tar_at_far(fpr, tpr, (1e-6, 0.3, 0.6), rule="strict") == {1e-6: 0.75, 0.3: 0.75, 0.6: 1.0}


@pytest.mark.slow
def test_squared_distance_grid_changes_accuracy_and_matches_the_reference_convention():
    """The reference scripts threshold ||a - b||^2 on the grid 0, 0.01, ..., 3.99. Brute force in that
    convention, on features whose pairs overlap (accuracy strictly between 0 and 1), and a case where the plain
    distance on the same grid disagrees."""
    rng = np.random.default_rng(5)
    same = np.tile(np.r_[np.ones(30, bool), np.zeros(30, bool)], 10)
    folds = np.repeat(np.arange(10), 60)
    a = l2_normalise(rng.normal(size=(600, 8)))
    b = l2_normalise(np.where(same[:, None], a + 0.9 * rng.normal(size=(600, 8)), rng.normal(size=(600, 8))))
    d2 = squared_distances(a, b)
    np.testing.assert_allclose(d2, 2 - 2 * (a * b).sum(1), atol=1e-6)
    res = kfold_accuracy(d2, same, folds)
    grid = [i / 100 for i in range(400)]
    accs = []
    for f in range(10):
        train = [i for i in range(600) if folds[i] != f]
        best_t, best = None, -1.0
        for t in grid:  # first best
            acc = sum((sum((a[i] - b[i]) ** 2) < t) == same[i] for i in train) / len(train)
            if acc > best:
                best_t, best = t, acc
        test = [i for i in range(600) if folds[i] == f]
        accs.append(sum((sum((a[i] - b[i]) ** 2) < best_t) == same[i] for i in test) / len(test))
    assert res.accuracies == pytest.approx(accs)
    assert 0.6 < res.mean < 0.99
    # by hand, a case where the two readings differ: in each of 10 folds a same pair at distance 0.105 and a
    # different pair at 0.11. Plain distances: threshold 0.11 separates them (accuracy 1). Squared: 0.011025 and
    # 0.0121 fall between the same two grid points (0.01, 0.02), so no threshold separates them: first best 0 -> 0.5
    a = np.zeros((20, 2))
    b = np.tile([[0.105, 0.0], [0.11, 0.0]], (10, 1))
    same, folds = np.tile([True, False], 10), np.repeat(np.arange(10), 2)
    assert kfold_accuracy(squared_distances(a, b), same, folds).mean == 0.5
    assert kfold_accuracy(np.linalg.norm(a - b, axis=1), same, folds).mean == 1.0


def _seqface_evaluate_py(scores, issame):
    """A line-by-line port of SeqFace's code/YTF/evaluate.py scoring loop (sims sorted as (sim, tag) tuples)."""
    sims = sorted(zip(scores.tolist(), issame.astype(int).tolist()))
    tn = fn = 0
    tp = sum(1 for _, t in sims if t == 1)
    fp = sum(1 for _, t in sims if t == 0)
    best_accuracy, best_thred = 0.0, 0.0
    for thred, tag in sims:
        if tag == 0:
            tn += 1
            fp -= 1
        else:
            fn += 1
            tp -= 1
        accuracy = (tp + tn) / (tp + fp + tn + fn)
        if accuracy > best_accuracy:
            best_accuracy, best_thred = accuracy, thred
    return best_accuracy, best_thred


def test_best_threshold_on_all_pairs_equals_seqface_evaluate_py():
    rng = np.random.default_rng(6)
    same = rng.random(500) < 0.5
    scores = np.where(same, rng.normal(0.5, 0.2, 500), rng.normal(0.1, 0.2, 500)).round(2)  # ties on purpose
    got = best_threshold_accuracy(scores, same)
    acc, thr = _seqface_evaluate_py(scores, same)
    assert 0.6 < acc < 1.0
    assert got.accuracy == pytest.approx(acc) and got.threshold == pytest.approx(thr)
    # by hand: scores 0.1 (diff), 0.2 (same), 0.3 (diff), 0.9 (same): cut after 0.3 -> 4/4? no: cut after 0.1
    # -> [diff] | [same, diff, same] = 1 + 2 = 3/4; after 0.3 -> [diff, same, diff] | [same] = 2 + 1 = 3/4; first wins
    r = best_threshold_accuracy(np.array([0.1, 0.2, 0.3, 0.9]), np.array([0, 1, 0, 1], bool))
    assert (r.accuracy, r.threshold) == (0.75, 0.1)


def _brute_open_set(p, ps, g, gs, fpirs):
    ranks, mates, tops = [], [], []
    for i in range(len(p)):
        s = g @ p[i]
        if ps[i] in set(gs):
            mate = max(s[j] for j in range(len(g)) if gs[j] == ps[i])
            rank = 1 + sum(1 for j in range(len(g)) if gs[j] != ps[i] and s[j] >= mate)  # a tie is not a hit
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


def test_open_set_a_tie_with_a_non_mate_is_not_a_hit():
    # probe of subject 7 exactly between gallery 7 and 8 (equal scores 0.7071); probe of 8 clearly on 8;
    # impostor far away (top score 0.1) sets the threshold. NIST / insightface: the tie is a miss at rank 1.
    g = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
    p = np.array([[0.5 ** 0.5, 0.5 ** 0.5, 0.0], [0.0, 1.0, 0.0], [0.1, 0.0, 0.995]])
    res = open_set_identification(p, np.array([7, 8, 99]), g, np.array([7, 8]), fpirs=(1.0,), max_rank=2)
    assert res.cmc.tolist() == [0.5, 1.0]
    assert res.tpir_at_fpir[1.0] == 0.5 and res.tpir_hits[1.0] == 1 and res.rank_hits.tolist() == [1, 2]


@pytest.mark.parametrize("block_bytes, density", [(4 * 400 * 7, 8.0), (64 << 20, 8.0), (64 << 20, 0.0)])
def test_pair_scores_blocks_equal_a_brute_force_loop(block_bytes, density):
    """Block scoring (several a-groups, one group) and the gathered path (density 0 forces it) against a float64
    loop over the pairs, with repeated, unsorted pairs and templates that appear on both sides."""
    rng = np.random.default_rng(1)
    f = rng.normal(size=(500, 32)).astype(np.float32)
    a = np.concatenate([rng.integers(0, 120, 5000), [7, 7, 499]])
    b = np.concatenate([rng.integers(100, 500, 5000), [400, 400, 7]])
    want = np.array([np.dot(f[i].astype(np.float64), f[j].astype(np.float64)) for i, j in zip(a, b)])
    got = pair_scores(f, a, b, block_bytes=block_bytes, max_density_ratio=density)
    assert got.dtype == np.float32 and np.abs(got - want).max() < 1e-5
    assert len(pair_scores(f, a[:0], b[:0])) == 0


def test_worst_pairs_are_the_extremes_of_each_kind():
    from facekit.bench.common import worst_pairs

    rng = np.random.default_rng(3)
    same = rng.random(50) < 0.5
    scores = np.round(rng.uniform(-1, 1, 50), 1)  # ties: the earlier pair first
    names_a, names_b = [f"a{i}" for i in range(50)], [f"b{i}" for i in range(50)]
    got = worst_pairs(names_a, names_b, same, scores, k=4)
    genuine = sorted((s, i) for i, (s, m) in enumerate(zip(scores, same)) if m)[:4]
    impostor = sorted((-s, i) for i, (s, m) in enumerate(zip(scores, same)) if not m)[:4]
    assert [(r["score"], r["pair"]) for r in got["genuine pairs with the lowest scores"]] == genuine
    assert [(-r["score"], r["pair"]) for r in got["impostor pairs with the highest scores"]] == impostor
    assert got["genuine pairs with the lowest scores"][0]["a"] == f"a{genuine[0][1]}"
