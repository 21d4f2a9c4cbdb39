#!/usr/bin/env python
"""Build fixtures/tiny-shisa: a tiny shisa-family model to test the harness (not the model).

    python tools/build_tiny_model.py [--out fixtures/tiny-shisa] [--no-check]

Deterministic and offline: see tools/tiny_model.py.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import tiny_model  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=str(tiny_model.DEFAULT_OUT), help="output directory (replaced)")
    ap.add_argument("--no-check", action="store_true", help="skip decoding every prompt after the build")
    ap.add_argument("--sample-seeds", type=int, default=0, help="also sample with this many extra seeds and report")
    args = ap.parse_args(argv)
    report = tiny_model.build_tiny_model(args.out, log=lambda m: print(m, file=sys.stderr), check=not args.no_check)
    if args.sample_seeds:
        report["sampled_by_seed"] = {
            seed: len(tiny_model.verify(args.out, sample_seed=seed)["sampled"]) for seed in range(1, args.sample_seeds + 1)
        }
    print(json.dumps(report, indent=2, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
