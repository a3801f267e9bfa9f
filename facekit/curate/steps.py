"""Curation decisions as pure functions of features and labels (no I/O). Scores are cosine similarities of
*centred* features: unit features minus the mean of the people's centres (each person once: the reference
identities when there are some, else the groups themselves), normalised again. Pretrained embedders share a
large common direction (dlib's descriptors of two strangers have cosine ~0.85), and removing it is what
separates people: on the real test data, a person's sequence scores 0.66 against their own photos and at most
0.44 against 13 other people (raw cosine: 0.96 vs 0.94).

- ``overlap``: sequences (or identities) whose centre matches a reference identity's centre (SeqFace 4.3.1:
  no person of the sequence data may be in the identity data or in the test sets);
- ``outliers``: faces far from their group's centre (the centre of the other members);
- ``exact_duplicates`` / ``near_duplicates`` inside a group;
- ``cluster``: groups that look like one person (several sequences of a person are allowed, but known).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from facekit.metrics import l2_normalise


def centred(feats: np.ndarray, mean: np.ndarray | None = None) -> np.ndarray:
    """unit(unit(f) - mean), ``mean`` defaulting to the mean unit feature of ``feats``."""
    f = l2_normalise(feats)
    return l2_normalise(f - (f.mean(0) if mean is None else mean))


def group_centres(feats: np.ndarray, groups: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(unique groups, (G, d) unit mean of each group's unit features)."""
    uniq, inv = np.unique(groups, return_inverse=True)
    sums = np.zeros((len(uniq), feats.shape[1]))
    np.add.at(sums, inv, l2_normalise(feats))
    return uniq, l2_normalise(sums)


def overlap(query_centres: np.ndarray, reference_centres: np.ndarray, threshold: float,
            chunk: int = 4096) -> tuple[np.ndarray, np.ndarray]:
    """For each query centre: (index of the most similar reference centre, its cosine). Matches are those with
    cosine >= ``threshold``. Chunked: a million sequences against 100K identities stays in memory."""
    best = np.zeros(len(query_centres), np.int64)
    score = np.full(len(query_centres), -1.0)
    for s in range(0, len(query_centres), chunk):
        sim = query_centres[s:s + chunk] @ reference_centres.T
        best[s:s + chunk] = sim.argmax(1)
        score[s:s + chunk] = sim.max(1)
    return best, score


def outliers(feats: np.ndarray, groups: np.ndarray, threshold: float,
             min_group: int = 3) -> tuple[np.ndarray, np.ndarray]:
    """(is_outlier, cosine to the centre of the *other* members of its group) per face. Groups smaller than
    ``min_group`` have no outliers (two faces cannot out-vote each other)."""
    f = l2_normalise(feats)
    uniq, inv = np.unique(groups, return_inverse=True)
    sums = np.zeros((len(uniq), f.shape[1]))
    np.add.at(sums, inv, f)
    sizes = np.bincount(inv)
    others = l2_normalise(sums[inv] - f)
    cos = (f * others).sum(1)
    return (cos < threshold) & (sizes[inv] >= min_group), cos


def near_duplicates(feats: np.ndarray, groups: np.ndarray, threshold: float) -> tuple[np.ndarray, np.ndarray]:
    """Greedy in order within each group: a face duplicates the most similar *kept* earlier face when their cosine
    is >= ``threshold``, else it is kept. Returns (index of that kept face or -1, that cosine: the value compared
    with the threshold, or the highest cosine to a kept face for kept faces, NaN for a group's first face).

    Against kept faces only, so every removed face is within the threshold of a face that stays (a slow turn of
    the head is not removed step by step, each frame as the copy of a removed one)."""
    f = l2_normalise(feats)
    twin = np.full(len(f), -1, np.int64)
    score = np.full(len(f), np.nan)
    for g in np.unique(groups):
        idx = np.flatnonzero(groups == g)
        kept = [idx[0]]
        for i in idx[1:]:
            sim = f[kept] @ f[i]
            j = int(sim.argmax())
            score[i] = sim[j]
            if sim[j] >= threshold:
                twin[i] = kept[j]
            else:
                kept.append(i)
    return twin, score


def exact_duplicates(digests: list[str], groups: np.ndarray) -> np.ndarray:
    """For every file, the index of an earlier file of its group with the same bytes, else -1."""
    first: dict[tuple, int] = {}
    twin = np.full(len(digests), -1, np.int64)
    for i, key in enumerate(zip(groups, digests)):
        j = first.setdefault(key, i)
        twin[i] = j if j != i else -1
    return twin


def cluster(centres: np.ndarray, threshold: float) -> np.ndarray:
    """Cluster label per centre: average-linkage agglomerative clustering, merging while the mean cosine between
    clusters is >= ``threshold`` (``facekit.curate.clusters``: per connected component of the neighbour graph,
    so it scales to millions of centres)."""
    from facekit.curate.clusters import cluster_centres

    return cluster_centres(centres, threshold)[0]


def normalise_name(name: str) -> str:
    """LFW/YTF/folder person names compare case- and separator-insensitively: 'George_W_Bush' == 'george w bush'."""
    return " ".join(name.replace("_", " ").replace("-", " ").lower().split())


def read_name_list(path: Path) -> set[str]:
    """Person names, one per line; LFW's lfw-names.txt ('Name_Here<TAB>count') and YTF folder lists work."""
    from facekit.errors import InputError

    if not path.is_file():
        raise InputError(f"{path}: name list not found")
    names = {normalise_name(line.split("\t")[0].split(",")[0]) for line in path.read_text().splitlines()
             if line.strip() and not line.startswith("#")}
    if not names:
        raise InputError(f"{path}: no names in the file")
    return names
