"""Verification and identification metrics: pure functions on arrays, no I/O.

Conventions: a *distance* is smaller for the same person (YTF/LFW accuracy), a *score* is larger (ROC, 1:N).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

DEFAULT_DISTANCE_GRID = np.arange(0.0, 4.0, 0.01)  # squared Euclidean distances of unit vectors lie in [0, 4]


@dataclass(frozen=True)
class KFoldAccuracy:
    accuracies: np.ndarray  # (folds,) accuracy on each held-out fold
    thresholds: np.ndarray  # (folds,) distance threshold chosen on the other folds

    @property
    def mean(self) -> float:
        return float(self.accuracies.mean())

    @property
    def std(self) -> float:
        return float(self.accuracies.std())


def squared_distances(a_pd: np.ndarray, b_pd: np.ndarray) -> np.ndarray:
    """||a - b||^2 per row: what insightface's ``verification.py`` and FaceNet's ``lfw.py`` threshold."""
    diff = np.asarray(a_pd, dtype=np.float64) - np.asarray(b_pd, dtype=np.float64)
    return (diff * diff).sum(axis=1)


def kfold_accuracy(distances: np.ndarray, issame: np.ndarray, fold_of_pair: np.ndarray,
                   thresholds: np.ndarray = DEFAULT_DISTANCE_GRID) -> KFoldAccuracy:
    """10-fold verification accuracy as in LFW/YTF (FaceNet/insightface): for each fold, the threshold with the
    best accuracy on the other folds (the first on ties, predicting "same" when distance < threshold) is applied
    to the held-out fold. ``fold_of_pair`` gives each pair's fold (the official splits).

    The reference scripts pass *squared* Euclidean distances of unit features (``squared_distances``) with the
    grid 0, 0.01, ..., 3.99; on plain distances the same grid gives other accuracies."""
    d = np.asarray(distances, dtype=np.float64)
    same = np.asarray(issame, dtype=bool)
    folds = np.asarray(fold_of_pair)
    correct = (d[None, :] < thresholds[:, None]) == same[None, :]  # (thresholds, pairs)
    accs, chosen = [], []
    for f in np.unique(folds):
        test = folds == f
        best = int(np.argmax(correct[:, ~test].mean(1)))  # argmax: the first best
        chosen.append(thresholds[best])
        accs.append(correct[best, test].mean())
    return KFoldAccuracy(np.array(accs), np.array(chosen))


@dataclass(frozen=True)
class BestThresholdAccuracy:
    accuracy: float
    threshold: float  # pairs scoring <= threshold are "different", above it "same"


def best_threshold_accuracy(scores: np.ndarray, issame: np.ndarray) -> BestThresholdAccuracy:
    """SeqFace's own LFW / YTF ``evaluate.py``: ONE threshold chosen on all pairs (no folds), so more optimistic
    than ``kfold_accuracy``. Pairs are sorted by ascending score (cosine; ties: "different" pairs first, as its
    sort of (score, label) tuples does); cutting after the k-th pair (k = 1..P) calls the first k "different"
    and the rest "same"; the first cut with the best accuracy wins, its threshold is the k-th score."""
    s = np.asarray(scores, dtype=np.float64)
    same = np.asarray(issame, dtype=bool)
    order = np.lexsort((same, s))
    same_sorted = same[order]
    tn = np.cumsum(~same_sorted)  # "different" pairs at or below the cut, called different: right
    tp = int(same.sum()) - np.cumsum(same_sorted)  # "same" pairs above the cut, called same: right
    acc = (tn + tp) / len(s)
    k = int(np.argmax(acc))  # the first best, as the script's strict ">" keeps
    return BestThresholdAccuracy(float(acc[k]), float(s[order][k]))


def roc(labels: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(fpr, tpr, thresholds), larger score = more similar; scikit-learn's ``roc_curve`` (the reference)."""
    from sklearn.metrics import roc_curve

    fpr, tpr, thr = roc_curve(np.asarray(labels, dtype=bool), np.asarray(scores), drop_intermediate=True)
    return fpr, tpr, thr


def tar_at_far(fpr: np.ndarray, tpr: np.ndarray, fars: tuple[float, ...] = (1e-6, 1e-5, 1e-4, 1e-3, 1e-2, 1e-1),
               rule: str = "strict") -> dict[float, float]:
    """TAR (TPR) at each FAR. ``strict``: the best TPR among ROC points with FPR <= FAR. ``nearest``:
    insightface's ``ijb_11.py``: both arrays reversed, then the point with FPR closest to FAR, the first in the
    reversed order on ties (so, among points at the nearest FPR, the largest TPR); it can sit above FAR."""
    out = {}
    for far in fars:
        if rule == "strict":
            ok = fpr <= far
            out[far] = float(tpr[ok].max()) if ok.any() else 0.0
        elif rule == "nearest":
            fpr_rev, tpr_rev = fpr[::-1], tpr[::-1]
            out[far] = float(tpr_rev[int(np.argmin(np.abs(fpr_rev - far)))])
        else:
            raise ValueError(f"unknown TAR rule {rule!r} (strict or nearest)")
    return out


@dataclass(frozen=True)
class OpenSetResult:
    cmc: np.ndarray  # (max_rank,) share of mated probes whose mate is within rank r+1
    tpir_at_fpir: dict[float, float]
    num_mated: int
    num_nonmated: int
    rank_hits: np.ndarray  # (max_rank,) mated probes within rank r+1 (counts, for pooling galleries)
    tpir_hits: dict[float, int]

    def rank(self, k: int) -> float:
        return float(self.cmc[k - 1])


def open_set_identification(probe_feats: np.ndarray, probe_subjects: np.ndarray, gallery_feats: np.ndarray,
                            gallery_subjects: np.ndarray, fpirs: tuple[float, ...] = (0.01, 0.1),
                            max_rank: int = 20, chunk: int = 2048) -> OpenSetResult:
    """1:N open-set identification (NIST IJB protocol), scores = dot products of the given (normalised) features.

    Mated probes: subject in the gallery; their mate score is the best score over that subject's templates, their
    rank 1 + the number of other subjects' templates scoring at least as high (a tie with a non-mate is not a
    hit: NIST's definition, insightface's ``pos_sims > neg_sims.max(1)``). Non-mated probes give the threshold
    for FPIR f: their top scores sorted descending, ``m[max(floor(N_nonmated * f) - 1, 0)]``. TPIR(f): share of
    mated probes whose mate scores strictly above every other gallery template and strictly above that
    threshold. Probes are scored ``chunk`` at a time, so the (probes x gallery) matrix is never held whole.
    """
    g = np.asarray(gallery_feats, dtype=np.float32)
    g_subj = np.asarray(gallery_subjects)
    subjects, g_code = np.unique(g_subj, return_inverse=True)
    p_subj = np.asarray(probe_subjects)
    p_code = np.searchsorted(subjects, p_subj).clip(0, len(subjects) - 1)
    mated = subjects[p_code] == p_subj
    ranks = np.empty(int(mated.sum()), dtype=np.int64)
    mate_scores = np.empty(len(ranks), dtype=np.float32)
    nonmated_top = np.empty(int((~mated).sum()), dtype=np.float32)
    im = inm = 0
    for s in range(0, len(p_subj), chunk):
        sc = np.asarray(probe_feats[s:s + chunk], dtype=np.float32) @ g.T  # (c, G)
        m = mated[s:s + chunk]
        nonmated_top[inm:inm + int((~m).sum())] = sc[~m].max(1)
        inm += int((~m).sum())
        if m.any():
            scm, codes = sc[m], p_code[s:s + chunk][m]
            own = g_code[None, :] == codes[:, None]  # (c_m, G)
            mate = np.where(own, scm, -np.inf).max(1)
            others = np.where(own, -np.inf, scm)
            ranks[im:im + len(mate)] = 1 + (others >= mate[:, None]).sum(1)
            mate_scores[im:im + len(mate)] = mate
            im += len(mate)
    rank_hits = np.array([int((ranks <= r).sum()) for r in range(1, max_rank + 1)])
    cmc = rank_hits / len(ranks) if len(ranks) else np.zeros(max_rank)
    tpir, tpir_hits = {}, {}
    top = np.sort(nonmated_top)[::-1]
    for f in fpirs:
        if len(top) == 0:
            tpir[f], tpir_hits[f] = float("nan"), 0
            continue
        thr = top[max(int(np.floor(len(top) * f)) - 1, 0)]
        tpir_hits[f] = int(((ranks == 1) & (mate_scores > thr)).sum())
        tpir[f] = tpir_hits[f] / len(ranks) if len(ranks) else 0.0
    return OpenSetResult(cmc, tpir, len(ranks), len(top), rank_hits, tpir_hits)


def l2_normalise(x: np.ndarray, axis: int = -1) -> np.ndarray:
    x = np.asarray(x, dtype=np.float32)
    return x / np.maximum(np.linalg.norm(x, axis=axis, keepdims=True), 1e-12)


def pair_scores(feats: np.ndarray, index_a: np.ndarray, index_b: np.ndarray, block_bytes: int = 64 << 20,
                max_density_ratio: float = 8.0) -> np.ndarray:
    """Dot products feats[a_i] . feats[b_i] for millions of pairs (the IJB-C 1:1 list: 15.7 M pairs of 3,531
    enrolment x 19,593 probe templates).

    Gathering two rows per pair reads 2 d floats per pair (64 GB for IJB-C at d = 512) from a matrix that does not
    fit in cache. Instead, when the pairs cover at least 1 / ``max_density_ratio`` of the (distinct a) x
    (distinct b) block, the similarity block is computed by matrix products over groups of a-templates (each
    group's scores at most ``block_bytes``) and the listed pairs are picked from it; sparser lists are gathered in
    chunks. Never a pairs x d array."""
    feats = np.ascontiguousarray(feats, dtype=np.float32)
    index_a, index_b = np.asarray(index_a, np.int64), np.asarray(index_b, np.int64)
    out = np.empty(len(index_a), dtype=np.float32)
    if len(index_a) == 0:
        return out
    rank_a, ua = _ranks(index_a, len(feats))
    rank_b, ub = _ranks(index_b, len(feats))
    if len(ua) * len(ub) > max_density_ratio * len(index_a):
        chunk = 65_536
        for s in range(0, len(index_a), chunk):
            a, b = index_a[s:s + chunk], index_b[s:s + chunk]
            out[s:s + chunk] = np.einsum("ij,ij->i", feats[a], feats[b])
        return out
    fb_t = np.ascontiguousarray(feats[ub].T)  # (d, |ub|)
    rows = max(1, block_bytes // (4 * len(ub)))
    group = (rank_a // rows).astype(np.int32)
    order = np.argsort(group, kind="stable")  # pairs grouped by their a-template block
    bounds = np.searchsorted(group[order], np.arange(int(group.max()) + 2))
    for g in range(len(bounds) - 1):
        sel = order[bounds[g]:bounds[g + 1]]
        if len(sel) == 0:
            continue
        first = g * rows
        block = feats[ua[first:first + rows]] @ fb_t  # (rows, |ub|) similarities
        out[sel] = block[rank_a[sel] - first, rank_b[sel]]
    return out


def _ranks(index: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """(rank of each entry among the distinct values, the distinct values in order), in O(n) without sorting."""
    present = np.zeros(n, dtype=bool)
    present[index] = True
    distinct = np.flatnonzero(present)
    rank_of = np.cumsum(present, dtype=np.int64) - 1
    return rank_of[index], distinct
