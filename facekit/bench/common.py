"""What every benchmark run shares: the threshold rules of verification, ROC / DET plots, JSON-safe metrics."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from facekit.bench.report import plot_det, plot_roc
from facekit.errors import InputError
from facekit.metrics import (
    best_threshold_accuracy,
    kfold_accuracy,
    roc,
    squared_distances,
)

THRESHOLD_RULES = ("kfold", "best-on-all")


def check_threshold_rule(rule: str) -> None:
    """Called before any feature is computed, so a typo costs nothing."""
    if rule not in THRESHOLD_RULES:
        raise InputError(f"--threshold must be one of {', '.join(THRESHOLD_RULES)}, got {rule!r}")


def verification_accuracy(a_pd: np.ndarray, b_pd: np.ndarray, same: np.ndarray, folds: np.ndarray,
                          rule: str) -> tuple[dict, str]:
    """Accuracy of unit-feature pairs under a threshold rule -> (metrics, one sentence naming the convention).

    ``kfold``: insightface's ``verification.py`` / FaceNet's ``lfw.py``: squared Euclidean distances, grid
    0, 0.01, ..., 3.99, the first best threshold on the other folds applied to each held-out fold.
    ``best-on-all``: SeqFace's ``evaluate.py``: cosine scores, one best threshold on all pairs (optimistic)."""
    check_threshold_rule(rule)
    if rule == "kfold":
        res = kfold_accuracy(squared_distances(a_pd, b_pd), same, folds)
        return ({"accuracy_mean": res.mean, "accuracy_std": res.std, "accuracy_per_fold": res.accuracies.tolist(),
                 "threshold_per_fold": res.thresholds.tolist(), "threshold_rule": rule},
                f"{len(np.unique(folds))}-fold: on each fold, the first best threshold of the other folds on the grid "
                "0, 0.01, ..., 3.99 of *squared* Euclidean distances between unit features (insightface's "
                "verification.py, FaceNet's lfw.py); mean and population std over folds.")
    best = best_threshold_accuracy((a_pd * b_pd).sum(1), same)
    return ({"accuracy_mean": best.accuracy, "accuracy_std": float("nan"), "threshold": best.threshold,
             "threshold_rule": rule},
            "one best cosine threshold chosen on all pairs, no folds (SeqFace's LFW/YTF evaluate.py): more "
            "optimistic than 10-fold; no std.")


def roc_plots(out: Path, name: str, labels: np.ndarray, scores: np.ndarray) -> None:
    fpr, tpr, _ = roc(labels, scores)
    plot_roc_det(out, name, fpr, tpr, name)


def plot_roc_det(out: Path, name: str, fpr: np.ndarray, tpr: np.ndarray, title: str) -> None:
    plot_roc(out / "roc.png", {name: (fpr, tpr)}, f"{title} ROC")
    plot_det(out / "det.png", {name: (fpr, tpr)}, f"{title} DET")


def worst_pairs(names_a: list[str], names_b: list[str], same: np.ndarray, scores: np.ndarray,
                k: int = 10) -> dict[str, list[dict]]:
    """The ``k`` genuine pairs with the lowest scores and the ``k`` impostor pairs with the highest (ties by pair
    order), for the report to show where a model fails."""
    same, scores = np.asarray(same, bool), np.asarray(scores, np.float64)
    out = {}
    for title, mask, sign in (("genuine pairs with the lowest scores", same, 1.0),
                              ("impostor pairs with the highest scores", ~same, -1.0)):
        idx = np.flatnonzero(mask)
        idx = idx[np.argsort(sign * scores[idx], kind="stable")][:k]
        out[title] = [{"pair": int(i), "a": str(names_a[i]), "b": str(names_b[i]), "score": float(scores[i])}
                      for i in idx]
    return out
