"""Render an HTML report to a PNG (or dump its DOM) with headless Chromium, to look at it as a person would.

    python tools/render_report.py REPORT.html OUT.png [--width 1400] [--height 2000]
    python tools/render_report.py REPORT.html --dump-dom      # the rendered DOM on stdout

Chromium runs with no network features, a throw-away profile and no GPU. With no REPORT given,
``--demo`` builds one from fixtures/transcripts/gate/ (baseline vs an edited candidate) first.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome", "chrome")


def chromium() -> str | None:
    return next((p for p in map(shutil.which, CHROMIUM_NAMES) if p), None)


def run_chromium(html: Path, extra: list[str], timeout: float = 120) -> subprocess.CompletedProcess:
    exe = chromium()
    if exe is None:
        raise SystemExit("no chromium on PATH (apt-get install chromium)")
    with tempfile.TemporaryDirectory(prefix="shisa-chromium-") as profile:
        cmd = [exe, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
               "--disable-background-networking", "--disable-component-update", "--disable-sync",
               f"--user-data-dir={profile}", *extra, html.resolve().as_uri()]
        return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)


def screenshot(html: Path, png: Path, width: int = 1400, height: int = 2000) -> Path:
    png.parent.mkdir(parents=True, exist_ok=True)
    res = run_chromium(html, [f"--screenshot={png.resolve()}", f"--window-size={width},{height}", "--hide-scrollbars"])
    if not png.exists():
        raise SystemExit(f"chromium wrote no screenshot (exit {res.returncode}): {res.stderr[-2000:]}")
    return png


def dump_dom(html: Path) -> str:
    res = run_chromium(html, ["--dump-dom"])
    if res.returncode != 0 or not res.stdout:
        raise SystemExit(f"chromium --dump-dom failed (exit {res.returncode}): {res.stderr[-2000:]}")
    return res.stdout


def demo_report(out: Path) -> Path:
    sys.path.insert(0, str(ROOT))
    from shisa_spec.frontends import cli

    gate = ROOT / "fixtures" / "transcripts" / "gate"
    cli.main(["report", "--baseline", str(gate / "baseline.jsonl"), "--candidate", str(gate / "candidate.jsonl"), "--out", str(out)])
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("report", nargs="?", help="HTML report to render")
    p.add_argument("png", nargs="?", default="report.png", help="screenshot to write (default %(default)s)")
    p.add_argument("--width", type=int, default=1400)
    p.add_argument("--height", type=int, default=2000)
    p.add_argument("--dump-dom", action="store_true", help="print the rendered DOM instead of taking a screenshot")
    p.add_argument("--demo", action="store_true", help="build a report from fixtures/transcripts/gate/ into REPORT first")
    args = p.parse_args(argv)
    html = Path(args.report or "demo-report.html")
    if args.demo or not args.report:
        demo_report(html)
    if args.dump_dom:
        sys.stdout.write(dump_dom(html))
    else:
        print(screenshot(html, Path(args.png), args.width, args.height))
    return 0


if __name__ == "__main__":
    sys.exit(main())
