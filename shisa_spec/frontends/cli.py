"""``shisa-spec``: run the spec from any directory, build a report from transcripts, or calibrate a case file's known failures."""

from __future__ import annotations

import argparse
import difflib
import sys

from shisa_spec.gate import calibrate
from shisa_spec.gate import compare
from shisa_spec.gate import report
from shisa_spec.spec.cases import CaseFileError, default_cases, dump_suite_data, load_suite
from shisa_spec.generation.transcript import TranscriptError
from shisa_spec.generation.transcript import read as read_transcript


def _report(args: argparse.Namespace) -> int:
    suite = load_suite(args.cases)
    baseline = read_transcript(args.baseline) if args.baseline else None
    comp = compare.compare(suite, baseline, read_transcript(args.candidate))
    document = report.load_document(args.document) if args.document else None
    labels = {"baseline": args.baseline or "none", "candidate": args.candidate}
    html, md = report.write(comp, args.out, document, labels)
    line = f"report: {html} (summary: {md}); {len(comp.cases)} cases"
    if comp.has_baseline:
        line += (f", {len(comp.regressions)} regression(s), {len(comp.improvements)} improvement(s), "
                 f"{len(comp.changed_outputs)} changed output(s)")
    print(line)
    for extra in report.statistics_lines(comp):
        print(extra)
    return 0


def _calibrate(args: argparse.Namespace) -> int:
    suite = load_suite(args.cases)
    when = {"quantize": args.when_quantize} if args.when_quantize else {}
    cal = calibrate.calibrate(suite, read_transcript(args.transcript), when)
    print(f"calibrating {suite.path} from {args.transcript} ({calibrate.scope_text(when)})")
    print(cal.summary())
    if args.dry_run:
        old = suite.path.read_text(encoding="utf-8").splitlines(keepends=True)
        new = dump_suite_data(cal.data).splitlines(keepends=True)
        sys.stdout.writelines(difflib.unified_diff(old, new, str(suite.path), str(suite.path) + " (calibrated)"))
    elif cal.changed:
        print(f"wrote {calibrate.write(suite, cal)}")
    else:
        print("no change")
    return 0


def run_spec(pytest_args: list[str]) -> int:
    """pytest over the spec's test modules (the repository's tests/spec, or the installed package's copy)."""
    import pytest

    from shisa_spec.spec.paths import SPEC_TESTS

    args = list(pytest_args)
    if not any(a == "-m" or (a.startswith("-m") and not a.startswith("--")) for a in args):
        args = ["-m", "gpu", *args]
    # rootdir at the spec modules: test ids read test_spec.py::test_spec[case.check] wherever it is installed;
    # no cache folder is written there (site-packages may be read-only).
    return int(pytest.main([str(SPEC_TESTS), "--rootdir", str(SPEC_TESTS), "-p", "no:cacheprovider", *args]))


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="shisa-spec", description=__doc__.replace("``", ""))
    sub = p.add_subparsers(dest="command", required=True)
    sub.add_parser("run", help="run the spec from any directory: shisa-spec run [pytest args] (default -m gpu)", add_help=False)
    r = sub.add_parser("report", help="HTML report and Markdown summary from a candidate transcript (and a baseline)")
    r.add_argument("--candidate", required=True, help="transcript of the run under review")
    r.add_argument("--baseline", help="transcript of the earlier run to compare with")
    r.add_argument("--out", required=True, help="HTML file to write; the Markdown summary goes beside it (.md)")
    r.add_argument("--cases", default=str(default_cases()), help="case file (default %(default)s)")
    r.add_argument("--document", default=str(report.DEFAULT_DOCUMENT), help="the write-up's transcript shown per case ('' for none)")
    r.set_defaults(func=_report)
    c = sub.add_parser("calibrate", help="rewrite the case file's known-failure marks from a run's verdicts")
    c.add_argument("--transcript", required=True, help="transcript of a run on the real model")
    c.add_argument("--cases", default=str(default_cases()), help="case file to rewrite (default %(default)s)")
    c.add_argument("--when-quantize", choices=["none", "8bit", "4bit"], help="scope new marks to this quantisation (when: {quantize: ...})")
    c.add_argument("--dry-run", action="store_true", help="print the diff instead of writing the file")
    c.set_defaults(func=_calibrate)
    return p


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["run"]:
        return run_spec(argv[1:])
    args = parser().parse_args(argv)
    try:
        return args.func(args)
    except (CaseFileError, TranscriptError) as e:
        print(f"shisa-spec: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
