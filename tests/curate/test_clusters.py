"""Average linkage per connected component of the neighbour graph gives the global average-linkage clusters
(checked against scikit-learn's on all centres at once), on both neighbour backends; the pairwise F-score is
checked against scikit-learn's pair confusion matrix."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.cluster import AgglomerativeClustering
from sklearn.metrics import adjusted_rand_score
from sklearn.metrics.cluster import pair_confusion_matrix

from facekit.curate import clusters
from facekit.curate.clusters import cluster_centres, pair_f_score

BACKENDS = ["numpy", pytest.param("faiss", marks=pytest.mark.skipif(clusters.backend_available() != "faiss",
                                                                    reason="faiss-cpu not installed"))]


def planted(n_people: int, seed: int = 0, d: int = 128, noise: float = 0.6, sizes=(1, 12)):
    """Sequence centres of planted people: a unit direction per person plus noise (same-person cosine ~0.74,
    strangers ~0 +- 0.09)."""
    rng = np.random.default_rng(seed)
    people = rng.normal(size=(n_people, d))
    people /= np.linalg.norm(people, axis=1, keepdims=True)
    truth = np.repeat(np.arange(n_people), rng.integers(sizes[0], sizes[1] + 1, n_people))
    x = people[truth] + noise * rng.normal(size=(len(truth), d)) / np.sqrt(d)
    order = rng.permutation(len(truth))
    return x[order].astype(np.float32), truth[order]


def global_average_linkage(x, threshold):
    return AgglomerativeClustering(n_clusters=None, metric="cosine", linkage="average",
                                   distance_threshold=1 - threshold).fit_predict(x)


def test_f_score_against_sklearn_pair_confusion():
    rng = np.random.default_rng(1)
    truth, labels = rng.integers(0, 8, 300), rng.integers(0, 6, 300)
    (tn, fp), (fn, tp) = pair_confusion_matrix(truth, labels) / 2  # sklearn counts ordered pairs
    got = pair_f_score(truth, labels)
    assert got["precision"] == pytest.approx(tp / (tp + fp)) and got["recall"] == pytest.approx(tp / (tp + fn))
    assert got["f_score"] == pytest.approx(2 * tp / (2 * tp + fp + fn))
    assert pair_f_score(truth, truth)["f_score"] == 1.0


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("threshold", [0.3, 0.6])
def test_equals_global_average_linkage_with_every_neighbour(backend, threshold):
    """Overlapping, chain-prone data (many people, strong noise): with k = N - 1 the neighbour graph is the full
    graph of pairs above the threshold, and the result is exactly scikit-learn's on all centres."""
    x, _ = planted(60, seed=2, d=16, noise=1.2, sizes=(1, 8))
    labels, stats = cluster_centres(x, threshold, k=len(x) - 1, backend=backend)
    want = global_average_linkage(x, threshold)
    assert adjusted_rand_score(want, labels) == 1.0 and len(set(labels)) == len(set(want))
    assert stats.backend == backend and stats.components <= len(set(want))


@pytest.mark.parametrize("backend", BACKENDS)
def test_few_neighbours_are_enough_on_planted_people(backend):
    x, truth = planted(300, seed=3)
    labels, stats = cluster_centres(x, 0.6, k=16, backend=backend)
    assert adjusted_rand_score(global_average_linkage(x, 0.6), labels) == 1.0
    assert pair_f_score(truth, labels)["f_score"] >= 0.99 and stats.approximate_components == 0


def test_inverted_file_search_on_larger_sets(monkeypatch):
    pytest.importorskip("faiss", reason="faiss-cpu not installed (pip install 'facekit[cluster]')")
    monkeypatch.setattr(clusters, "EXACT_BELOW", 1000)  # the index used from 50,000 centres up
    x, truth = planted(1500, seed=4)
    labels, stats = cluster_centres(x, 0.6)
    assert stats.backend == "faiss" and pair_f_score(truth, labels)["f_score"] >= 0.99


def test_a_giant_component_is_clustered_on_its_graph_and_counted():
    x, _ = planted(40, seed=5, d=16, noise=1.2, sizes=(2, 6))
    labels, stats = cluster_centres(x, 0.05, k=10, max_component=20)
    assert stats.approximate_components >= 1 and len(labels) == len(x)


def test_tiny_inputs():
    assert cluster_centres(np.ones((1, 4)), 0.5)[0].tolist() == [0]
    assert cluster_centres(np.eye(2), 0.5)[0].tolist() == [0, 1]
    assert cluster_centres(np.ones((2, 4)), 0.5)[0].tolist() == [0, 0]
