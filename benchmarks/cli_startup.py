"""How long the CLI takes to answer before doing any work: `--help`, `--version` and a usage error, against the bare
interpreter (`python -c pass`) in the same run. Target: within 0.5 s of the bare interpreter.

    python benchmarks/cli_startup.py            # median of 7 runs each
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import time

CASES = [
    ("python -c pass", [sys.executable, "-c", "pass"]),
    ("facekit --help", [sys.executable, "-m", "facekit", "--help"]),
    ("facekit --version", [sys.executable, "-m", "facekit", "--version"]),
    ("facekit bench ytf (usage error)", [sys.executable, "-m", "facekit", "bench", "ytf"]),
    ("facekit train seqface --help", [sys.executable, "-m", "facekit", "train", "seqface", "--help"]),
]


def median_seconds(cmd: list[str], runs: int = 7) -> float:
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        subprocess.run(cmd, capture_output=True)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main() -> None:
    base = median_seconds(CASES[0][1])
    print(f"{'command':36s} {'median s':>9s} {'- bare s':>9s} {'x bare':>7s}")
    worst = 0.0
    for name, cmd in CASES:
        t = base if cmd is CASES[0][1] else median_seconds(cmd)
        worst = max(worst, t - base)
        print(f"{name:36s} {t:9.3f} {t - base:9.3f} {t / base:7.1f}")
    print(f"slowest answer: {worst:.3f} s over the bare interpreter (target <= 0.5 s): "
          f"{'met' if worst <= 0.5 else 'NOT met'}")


if __name__ == "__main__":
    main()
