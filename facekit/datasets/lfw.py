"""LFW ``pairs.txt`` (10 folds) and insightface verification ``.bin`` files (read with a restricted unpickler)."""

from __future__ import annotations

import io
import pickle
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from facekit.datasets.protocol_files import bad_line, read_lines, to_int
from facekit.errors import InputError


@dataclass(frozen=True)
class LFWPairs:
    image_a: list[str]  # relative paths name/name_000n.jpg
    image_b: list[str]
    same: np.ndarray  # (P,) bool
    fold: np.ndarray  # (P,) 0..folds-1


def _image(name: str, n: int) -> str:
    return f"{name}/{name}_{n:04d}.jpg"


def read_pairs(path: str | Path) -> LFWPairs:
    """``pairs.txt``: first line ``folds pairs_per_half``; each fold has that many matched lines ``name n1 n2``,
    then as many mismatched lines ``name1 n1 name2 n2`` (tab or space separated)."""
    lines = list(read_lines(path))
    if not lines:
        raise InputError(f"{path}: empty file")
    number, head = lines[0]
    parts = head.split()
    if len(parts) != 2:
        raise bad_line(path, number, "first line must be 'folds pairs_per_half', e.g. '10 300'")
    folds, half = (to_int(path, number, v, "header") for v in parts)
    body = lines[1:]
    if len(body) != folds * 2 * half:
        raise InputError(f"{path}: header says {folds} folds x {2 * half} pairs, found {len(body)} pair lines")
    a, b, same, fold = [], [], [], []
    for i, (number, line) in enumerate(body):
        f, pos = divmod(i, 2 * half)
        cols = line.split()
        matched = pos < half
        if matched and len(cols) == 3:
            name = cols[0]
            a.append(_image(name, to_int(path, number, cols[1], "image number")))
            b.append(_image(name, to_int(path, number, cols[2], "image number")))
        elif not matched and len(cols) == 4:
            a.append(_image(cols[0], to_int(path, number, cols[1], "image number")))
            b.append(_image(cols[2], to_int(path, number, cols[3], "image number")))
        else:
            want = "'name n1 n2' (matched)" if matched else "'name1 n1 name2 n2' (mismatched)"
            raise bad_line(path, number, f"expected {want}, got {len(cols)} fields")
        same.append(matched), fold.append(f)
    return LFWPairs(a, b, np.array(same), np.array(fold))


class _RestrictedUnpickler(pickle.Unpickler):
    """Only builtin containers and bytes; numpy arrays (some .bin files hold an ndarray of flags) by name."""

    ALLOWED = {("builtins", "list"), ("builtins", "tuple"), ("builtins", "bytes"), ("builtins", "bytearray"),
               ("builtins", "bool"), ("numpy", "ndarray"), ("numpy", "dtype"),
                   ("numpy.core.multiarray", "_reconstruct"),
               ("numpy._core.multiarray", "_reconstruct"), ("numpy.core.multiarray", "scalar"),
               ("numpy._core.multiarray", "scalar"), ("_codecs", "encode")}

    def find_class(self, module: str, name: str):
        if (module, name) not in self.ALLOWED:
            raise pickle.UnpicklingError(f"refusing to load {module}.{name}")
        return super().find_class(module, name)


def read_bin(path: str | Path) -> tuple[list[bytes], np.ndarray]:
    """insightface ``.bin``: (list of encoded images, issame flags); image 2i and 2i+1 form pair i."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: file not found")
    try:
        obj = _RestrictedUnpickler(io.BytesIO(path.read_bytes()), encoding="bytes").load()
    except pickle.UnpicklingError as err:
        raise InputError(f"{path}: not an insightface .bin ({err})") from None
    except Exception as err:
        raise InputError(f"{path}: not an insightface .bin ({type(err).__name__}: {err})") from None
    if not (isinstance(obj, (tuple, list)) and len(obj) == 2):
        raise InputError(f"{path}: expected a pickled (images, issame) pair")
    # encoded images are bytes, or uint8 arrays of those bytes (files written from numpy)
    images = [x.tobytes() if isinstance(x, np.ndarray) else x for x in obj[0]]
    issame = np.asarray(obj[1], dtype=bool).reshape(-1)
    if len(images) != 2 * len(issame) or not all(isinstance(x, (bytes, bytearray)) for x in images):
        raise InputError(f"{path}: {len(images)} images for {len(issame)} pairs (expected 2 per pair, as bytes)")
    return [bytes(x) for x in images], issame
