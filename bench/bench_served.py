"""Wall time of the whole spec on the tiny model (CPU): in-process (the baseline) against --backend openai
through `transformers serve` on 127.0.0.1, cold (empty cache) and warm (every sample cached).

    python bench/bench_served.py [--samples 4] [--concurrency 1 4] [--endpoint completions]

Each run is a fresh `pytest -m gpu` process, as a user runs it. The server is started here on a free port
before the served runs; its start-up is printed, not counted in a run. Every figure is printed as a ratio to
the in-process cold run measured in this same invocation. The in-process and served texts differ
(`transformers serve` seeds one global RNG per request; see README), so compare times, not verdicts.
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TINY = ROOT / "fixtures" / "tiny-shisa"
ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "NO_PROXY": "127.0.0.1", "no_proxy": "127.0.0.1"}


def spec(cache: Path, samples: int, extra: list[str]) -> tuple[float, str]:
    argv = [sys.executable, "-m", "pytest", str(ROOT / "tests" / "spec" / "test_spec.py"), "-m", "gpu", "-q", "-p", "no:cacheprovider",
            "--model", str(TINY), "--device", "cpu", "--samples", str(samples), "--cache-dir", str(cache), *extra]
    start = time.perf_counter()
    proc = subprocess.run(argv, cwd=ROOT, env=ENV, capture_output=True, text=True)
    took = time.perf_counter() - start
    summary = next((l for l in proc.stdout.splitlines() if l.startswith("shisa-spec:")), proc.stdout[-300:])
    tally = proc.stdout.strip().splitlines()[-1] if proc.stdout.strip() else ""
    return took, f"{tally}\n      {summary}"


def serve() -> tuple[subprocess.Popen, str, float]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    start = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "transformers.cli.transformers", "serve", str(TINY), "--host", "127.0.0.1",
                             "--port", str(port), "--device", "cpu", "--dtype", "float32"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=ENV, start_new_session=True)
    url = f"http://127.0.0.1:{port}/v1"
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"transformers serve exited with {proc.returncode} (pip install 'shisa-spec[serve]')")
        try:
            urllib.request.urlopen(url + "/models", timeout=2).close()
            return proc, url, time.perf_counter() - start
        except OSError:
            time.sleep(0.3)
    os.killpg(proc.pid, signal.SIGKILL)
    raise SystemExit("transformers serve did not answer within 240 s")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--samples", type=int, default=4)
    ap.add_argument("--concurrency", type=int, nargs="+", default=[1, 4])
    ap.add_argument("--endpoint", default="completions", choices=["completions", "chat"])
    args = ap.parse_args()
    print(f"spec on {TINY.name}, CPU, --samples {args.samples}; {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}")
    with tempfile.TemporaryDirectory() as tmp:
        base, out = spec(Path(tmp) / "inproc", args.samples, [])
        print(f"in-process, cold: {base:7.1f} s  1.00x  {out}")
        warm, out = spec(Path(tmp) / "inproc", args.samples, [])
        print(f"in-process, warm: {warm:7.1f} s  {warm / base:.2f}x  {out}")
        server, url, up = serve()
        print(f"(transformers serve answered after {up:.1f} s; not counted)")
        try:
            for c in args.concurrency:
                cache = Path(tmp) / f"served-{c}"
                extra = ["--backend", "openai", "--base-url", url, "--concurrency", str(c), "--endpoint", args.endpoint]
                cold, out = spec(cache, args.samples, extra)
                print(f"served, concurrency {c}, cold: {cold:7.1f} s  {cold / base:.2f}x  {out}")
                hot, out = spec(cache, args.samples, extra)
                print(f"served, concurrency {c}, warm: {hot:7.1f} s  {hot / base:.2f}x  {out}")
        finally:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()


if __name__ == "__main__":
    main()
