"""Average-linkage clustering of sequence centres at any size.

Average linkage merges two clusters while the mean cosine between them is >= t, so two merged clusters always
hold a pair with cosine >= t: every cluster lies inside one connected component of the graph whose edges are the
pairs with cosine >= t, and clustering each component on its own gives exactly the clusters of clustering all
centres at once. So: (1) find the pairs with cosine >= t among each centre's k nearest neighbours, (2) take the
connected components, (3) run exact average linkage inside each component. With an exact neighbour search and
k large enough to hold every neighbour above t, this *is* the global result; it costs O(N k) memory instead of
O(N^2).

Neighbours come from faiss (``pip install 'facekit[cluster]'``: an inverted-file index, exact below 50,000
centres) or, without it, from an exact blocked matrix product in numpy (quadratic time: fine to ~100 K centres).
A component too large for exact linkage (more than ``max_component`` centres: a threshold far too low) is
clustered by scikit-learn's average linkage restricted to its neighbour graph, and counted."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

EXACT_BELOW = 50_000  # centres: below this, faiss searches exhaustively


@dataclass
class ClusterStats:
    backend: str
    k: int
    edges: int
    components: int
    largest_component: int
    approximate_components: int  # components above max_component (graph-restricted linkage)


def backend_available() -> str:
    try:
        import faiss  # noqa: F401

        return "faiss"
    except ImportError:
        return "numpy"


def neighbours(x: np.ndarray, k: int, backend: str = "auto") -> tuple[np.ndarray, np.ndarray, str]:
    """(cosines (N, k), indices (N, k), backend) of each row's k nearest other rows; ``x`` is (N, d) unit rows."""
    n = len(x)
    k = min(k, n - 1)
    backend = backend_available() if backend == "auto" else backend
    if backend == "faiss":
        import faiss

        x32 = np.ascontiguousarray(x, dtype=np.float32)
        if n < EXACT_BELOW:
            index = faiss.IndexFlatIP(x.shape[1])
        else:
            nlist = int(4 * np.sqrt(n))
            index = faiss.IndexIVFFlat(faiss.IndexFlatIP(x.shape[1]), x.shape[1], nlist, faiss.METRIC_INNER_PRODUCT)
            sample = np.random.default_rng(0).choice(n, min(n, 64 * nlist), replace=False)
            index.train(x32[np.sort(sample)])
            index.nprobe = 32
        index.add(x32)
        sims, idx = index.search(x32, k + 1)
    else:
        sims, idx = np.empty((n, k + 1), np.float32), np.empty((n, k + 1), np.int64)
        for start in range(0, n, 2048):
            s = x[start:start + 2048].astype(np.float32) @ x.astype(np.float32).T  # (block, N)
            top = np.argpartition(-s, k, axis=1)[:, :k + 1]
            order = np.argsort(-np.take_along_axis(s, top, 1), axis=1, kind="stable")
            idx[start:start + len(s)] = np.take_along_axis(top, order, 1)
            sims[start:start + len(s)] = np.take_along_axis(s, idx[start:start + len(s)], 1)
    self_hit = idx == np.arange(n)[:, None]  # drop each row itself (wherever it ranks among equal rows)
    keep = ~self_hit & (idx >= 0)
    sims = np.where(keep, sims, -np.inf)
    order = np.argsort(-sims, axis=1, kind="stable")[:, :k]
    return np.take_along_axis(sims, order, 1), np.take_along_axis(idx, order, 1), backend


def cluster_centres(x: np.ndarray, threshold: float, k: int = 32, backend: str = "auto",
                    max_component: int = 20_000) -> tuple[np.ndarray, ClusterStats]:
    """Cluster label per row of ``x`` ((N, d), any norm): average linkage on cosine, merging while the mean cosine
    is >= ``threshold`` (labels numbered by first appearance)."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    n = len(x)
    if n < 2:
        return np.zeros(n, np.int64), ClusterStats("none", k, 0, n, n, 0)
    x = x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
    sims, idx, used = neighbours(x, k, backend)
    rows = np.repeat(np.arange(n), sims.shape[1])
    hit = sims.ravel() >= threshold
    src, dst = rows[hit], idx.ravel()[hit]
    graph = coo_matrix((np.ones(len(src), np.int8), (src, dst)), shape=(n, n)).tocsr()
    count, comp = connected_components(graph, directed=False)
    labels = np.full(n, -1, np.int64)
    order = np.argsort(comp, kind="stable")
    bounds = np.flatnonzero(np.diff(comp[order])) + 1
    next_label, approximate = 0, 0
    for members in np.split(order, bounds):
        if len(members) == 1:
            sub = np.zeros(1, np.int64)
        elif len(members) <= max_component:
            sub = _average_linkage(x[members], threshold)
        else:
            sub = _graph_linkage(x[members], graph[members][:, members], threshold)
            approximate += 1
        labels[members] = sub + next_label
        next_label += int(sub.max()) + 1
    _, first = np.unique(labels, return_index=True)  # renumber by first appearance: stable across backends
    rank = np.empty(len(first), np.int64)
    rank[np.argsort(first, kind="stable")] = np.arange(len(first))
    sizes = np.bincount(comp)
    return rank[labels], ClusterStats(used, k, int(len(src)), int(count), int(sizes.max()), approximate)


def _average_linkage(x: np.ndarray, threshold: float) -> np.ndarray:
    """Exact average linkage of one component (scipy's, called directly: a million components pay no estimator
    overhead); merges while the cosine distance is strictly below ``1 - threshold``, as scikit-learn's
    ``distance_threshold``."""
    from scipy.cluster.hierarchy import fcluster, linkage
    from scipy.spatial.distance import pdist

    tree = linkage(pdist(x, "cosine"), "average")
    return fcluster(tree, np.nextafter(1.0 - threshold, -np.inf), criterion="distance").astype(np.int64) - 1


def _graph_linkage(x: np.ndarray, graph, threshold: float) -> np.ndarray:
    from sklearn.cluster import AgglomerativeClustering

    model = AgglomerativeClustering(n_clusters=None, metric="cosine", linkage="average", connectivity=graph,
                                    distance_threshold=1.0 - threshold)
    return model.fit_predict(x).astype(np.int64)


def pair_f_score(truth: np.ndarray, labels: np.ndarray) -> dict[str, float]:
    """Pairwise precision, recall and F-score of ``labels`` against ``truth``: over all pairs of items, a pair is
    predicted together when it shares a label, truly together when it shares a truth label."""
    _, t = np.unique(truth, return_inverse=True)
    _, p = np.unique(labels, return_inverse=True)
    joint = np.unique(t.astype(np.int64) * (p.max() + 1) + p, return_counts=True)[1]
    pairs = lambda c: float((c.astype(np.float64) * (c - 1) / 2).sum())  # noqa: E731
    tp, pred, true = pairs(joint), pairs(np.bincount(p)), pairs(np.bincount(t))
    precision = tp / pred if pred else 1.0
    recall = tp / true if true else 1.0
    f = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"precision": precision, "recall": recall, "f_score": f}
