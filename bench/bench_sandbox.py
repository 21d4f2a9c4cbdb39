"""Cost of one model-code run in each sandbox mode, against the same run with no jail.

Each round runs the ``code_function`` check's workload (a Fibonacci function called for 8 values)
once per mode, modes interleaved so machine load hits them alike; prints the median and the
minimum per mode and the jail's overhead over ``none`` (goal: under 50 ms a run).
``none, no seccomp`` is the runner without its seccomp filter (what the filter itself costs).

    python bench/bench_sandbox.py [--rounds 30]

Not a test: timings never gate anything.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from shisa_spec.spec import sandbox  # noqa: E402

FIB = "def fib(k):\n    a, b = 0, 1\n    for _ in range(k):\n        a, b = b, a + b\n    return a\n"
ARGS = [[k] for k in (1, 2, 3, 4, 5, 6, 10, 15)]


def once(mode: str, seccomp: bool = True) -> float:
    sandbox.SECCOMP = seccomp
    t = time.perf_counter()
    r = sandbox.run_function(FIB, "fib", ARGS, mode=mode)
    dt = time.perf_counter() - t
    sandbox.SECCOMP = True
    assert r.ok and r.sandbox == mode, r
    return dt


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=30)
    a = ap.parse_args()
    variants = [("none, no seccomp", "none", False), ("none", "none", True)]
    for mode in sandbox.JAILS:
        why = sandbox.available(mode)
        if why:
            print(f"{mode}: not available here ({why})")
        else:
            variants.append((mode, mode, True))
    for _, mode, sc in variants:  # warm-up: page cache, probes
        once(mode, sc)
    times: dict[str, list[float]] = {name: [] for name, _, _ in variants}
    for _ in range(a.rounds):
        for name, mode, sc in variants:
            times[name].append(once(mode, sc))
    base_med = statistics.median(times["none"])
    base_min = min(times["none"])
    print(f"per run, {a.rounds} rounds, interleaved (ms):")
    print(f"{'mode':<18}{'median':>9}{'min':>9}{'over none (median)':>21}{'over none (min)':>18}")
    for name, _, _ in variants:
        med, mn = statistics.median(times[name]) * 1e3, min(times[name]) * 1e3
        print(f"{name:<18}{med:>9.1f}{mn:>9.1f}{med - base_med * 1e3:>+21.1f}{mn - base_min * 1e3:>+18.1f}")


if __name__ == "__main__":
    main()
