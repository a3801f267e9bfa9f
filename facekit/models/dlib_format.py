"""Reader of dlib's binary serialisation (``dlib/serialize.h``), enough for its DNN files.

- integers: one control byte (low 4 bits: the number of value bytes, 0x80: negative), then the magnitude in
  little-endian bytes;
- floats: ``float_details``: an integer mantissa and an integer exponent, value = mantissa * 2^exponent;
- strings: an integer length, then the bytes; bools: one ASCII byte '1' / '0';
- tensors (``dlib/cuda/tensor.h``): version 2, num_samples, k, nr, nc, then the values as little-endian float32;
  alias tensors: version 1 and the four sizes.

Every read checks the bounds and raises ``InputError`` naming the file, the offset and what was expected.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from facekit.errors import InputError


class DlibReader:
    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        try:
            self.data = self.path.read_bytes()
        except OSError as err:
            raise InputError(f"{path}: cannot read ({err.strerror})") from None
        self.pos = 0

    def fail(self, what: str) -> InputError:
        return InputError(f"{self.path}: not a dlib network file as expected at byte {self.pos}: {what}")

    def _take(self, n: int, what: str) -> bytes:
        if n < 0 or self.pos + n > len(self.data):
            raise self.fail(f"file ends inside {what} (truncated?)")
        out = self.data[self.pos:self.pos + n]
        self.pos += n
        return out

    def int(self, what: str = "an integer") -> int:
        control = self._take(1, what)[0]
        size = control & 0x0F
        if control & 0x70 or size > 8:
            raise self.fail(f"{what}: bad integer control byte 0x{control:02x}")
        value = int.from_bytes(self._take(size, what), "little")
        return -value if control & 0x80 else value

    def float(self, what: str = "a float") -> float:
        mantissa, exponent = self.int(what), self.int(what)
        if exponent >= 32000:  # is_inf, is_ninf, is_nan
            return {32000: float("inf"), 32001: float("-inf")}.get(exponent, float("nan"))
        return float(np.ldexp(np.float64(mantissa), exponent))

    def string(self, what: str = "a string") -> str:
        n = self.int(what)
        if n > 256:
            raise self.fail(f"{what}: implausible string length {n}")
        try:
            return self._take(n, what).decode("ascii")
        except UnicodeDecodeError:
            raise self.fail(f"{what}: not text") from None

    def bool(self, what: str = "a bool") -> bool:
        b = self._take(1, what)
        if b not in (b"0", b"1"):
            raise self.fail(f"{what}: expected '0' or '1', got {b!r}")
        return b == b"1"

    def version(self, expected: tuple[int, ...], what: str) -> int:
        v = self.int(what)
        if v not in expected:
            raise self.fail(f"{what}: version {v}, expected {' or '.join(map(str, expected))}")
        return v

    def tag(self, expected: tuple[str, ...], what: str) -> str:
        s = self.string(what)
        if s not in expected:
            raise self.fail(f"{what}: found layer version {s!r}, expected {' or '.join(map(repr, expected))}")
        return s

    def tensor(self, what: str) -> np.ndarray:
        self.version((2,), f"{what} (tensor)")
        shape = tuple(self.int(what) for _ in range(4))
        n = int(np.prod(shape))
        if min(shape) < 0 or n > 1 << 28:
            raise self.fail(f"{what}: implausible tensor shape {shape}")
        return np.frombuffer(self._take(4 * n, what), dtype="<f4").reshape(shape).astype(np.float32)

    def alias_tensor(self, what: str) -> tuple[int, int, int, int]:
        self.version((1,), f"{what} (alias tensor)")
        return tuple(self.int(what) for _ in range(4))

    def at_end(self) -> bool:
        return self.pos == len(self.data)
