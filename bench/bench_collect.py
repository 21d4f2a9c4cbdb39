"""Spec collection time against importing torch and transformers (CPU, no GPU needed).

    python bench/bench_collect.py [--repeats 5]

Times, each in a fresh process from the repository root, median of the repeats:
  baseline   python -c "import torch, transformers"
  collect    pytest -m gpu --replay fixtures/transcripts/document.jsonl --collect-only -q   (start-up to the first test)
  run        the same without --collect-only (collection plus judging the 16 replayed cases)
and prints each time and its ratio to the baseline. The issue's goal: collect <= 1.5x baseline.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "fixtures" / "transcripts" / "document.jsonl"


def timed(cmd: list[str], repeats: int) -> float:
    times = []
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
    for _ in range(repeats):
        start = time.perf_counter()
        subprocess.run(cmd, cwd=ROOT, env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()
    py = sys.executable
    spec = [py, "-m", "pytest", "-m", "gpu", "--replay", str(DOC), "-q", "-p", "no:cacheprovider"]
    timed([py, "-c", "pass"], 1)  # warm the page cache
    base = timed([py, "-c", "import torch, transformers"], args.repeats)
    collect = timed(spec + ["--collect-only"], args.repeats)
    run = timed(spec, args.repeats)
    rows = [("what", "median s", "ratio"), ('python -c "import torch, transformers"', base, 1.0),
            ("pytest -m gpu --replay DOC --collect-only", collect, collect / base), ("pytest -m gpu --replay DOC", run, run / base)]
    for what, secs, ratio in rows:
        if isinstance(secs, str):
            print(f"{what:<44} {secs:>9} {ratio:>6}")
        else:
            print(f"{what:<44} {secs:9.2f} {ratio:6.2f}")


if __name__ == "__main__":
    main()
