"""The upgrade gate: ``--baseline PATH`` fails the run on regressions; ``--report PATH`` writes HTML and Markdown.

Registered by ``shisa_spec.frontends.pytest_plugin`` (not meant for ``-p``). At session end the controller (not
an xdist worker) compares the run's transcript records with the baseline transcript, both judged
by the current case file, over the (case, check) tests this run selected: per check k/N, 95% interval,
one-sided Fisher p-value Holm-adjusted over the checks, and the suite's paired difference. The
comparison goes into the JUnit XML as the global property ``shisa_gate`` (JSON), so the gate runs
before the JUnit writer (tryfirst).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import json

import pytest

from shisa_spec.frontends import pytest_state
from shisa_spec.gate import compare
from shisa_spec.gate import report
from shisa_spec.generation.transcript import TranscriptError
from shisa_spec.generation.transcript import read as read_transcript

GATE_KEY = pytest.StashKey["Gate"]()


def add_gate_options(parser: pytest.Parser) -> None:
    g = parser.getgroup("shisa-spec")
    g.addoption("--baseline", dest="shisa_baseline", default=None,
                help="transcript of an earlier run: fail on checks it passed that this run fails, and list the changes")
    g.addoption("--report", dest="shisa_report", default=None,
                help="write an HTML report to this path, and a Markdown summary beside it (suffix .md)")


def _param_id(nodeid: str) -> str | None:
    return nodeid[nodeid.rindex("[") + 1:-1] if nodeid.endswith("]") and "[" in nodeid else None


class Gate:
    """Per-config state, registered as a plugin object so its hooks see the config."""

    def __init__(self, config: pytest.Config):
        self.config = config
        self.baseline_path: str | None = config.option.shisa_baseline
        self.report_path: str | None = config.option.shisa_report
        self.baseline: compare.Records | None = None
        if self.baseline_path:
            try:
                self.baseline = read_transcript(self.baseline_path)
            except TranscriptError as e:
                raise pytest.UsageError(f"--baseline: {e}") from None
        self.selected: set[tuple[str, str]] = set()
        self._ids: set[tuple[str, str]] | None = None
        self.comparison: compare.Comparison | None = None
        self.written: tuple[Path, Path] | None = None

    def _spec_pair(self, nodeid: str) -> tuple[str, str] | None:
        pid = _param_id(nodeid)
        if not pid or "." not in pid:
            return None
        if self._ids is None:
            self._ids = {(c.id, s.id) for c in pytest_state._suite(self.config).cases for s in c.checks}
        pair = tuple(pid.rsplit(".", 1))
        return pair if pair in self._ids else None  # type: ignore[return-value]

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if report.when == "setup":
            pair = self._spec_pair(report.nodeid)
            if pair:
                self.selected.add(pair)

    @pytest.hookimpl(tryfirst=True)
    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        state = pytest_state._state(self.config)
        records = pytest_state.finalize_records(self.config)
        self.comparison = compare.compare(
            pytest_state._suite(self.config), self.baseline, records,
            conditions=lambda case, _rec: state.run_conditions(case), select=self.selected,
        )
        self._junit_properties()
        if self.report_path:
            self.written = report.write(self.comparison, self.report_path, report.load_document(), self.labels(state))
        n = len(self.comparison.regressions)
        if n and self.baseline is not None:
            if session.exitstatus == pytest.ExitCode.OK:
                session.exitstatus = pytest.ExitCode.TESTS_FAILED
            if not session.shouldfail:
                session.shouldfail = f"shisa-spec: {n} regression{'s' * (n != 1)} against the baseline {self.baseline_path}"

    def _junit_properties(self) -> None:
        from _pytest.junitxml import xml_key

        xml = self.config.stash.get(xml_key, None)
        comp = self.comparison
        if xml is None or comp is None or not comp.has_baseline:
            return
        rows = [{"case": r.case, "check": r.check, "status": r.status,
                 "baseline": r.rates("baseline"), "candidate": r.rates("candidate"),
                 "p": r.p_value, "p_holm": r.p_adjusted} for r in comp.checks()]
        d = comp.difference
        suite = {"mean": d.mean, "se": d.se, "low": d.low, "high": d.high} if d is not None else None
        xml.add_global_property("shisa_gate", json.dumps({"alpha": comp.alpha, "checks": rows, "suite_difference": suite}, ensure_ascii=False))

    def labels(self, state: Any) -> dict[str, str]:
        cand = f"replay of {state.replay_path}" if not state.live else f"this run ({self.config.option.shisa_model})"
        return {"baseline": str(self.baseline_path or "none"), "candidate": cand}

    @pytest.hookimpl(trylast=True)
    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        comp = self.comparison
        if comp is None:
            return
        tr = terminalreporter
        if comp.has_baseline:
            for r in comp.regressions:
                self._write_regression(tr, comp.case(r.case), r)
            self._write_changes(tr, comp)
        if self.written:
            tr.write_line(f"shisa-spec report: {self.written[0]} (Markdown summary: {self.written[1]})")

    def _write_regression(self, tr: Any, c: compare.CaseResult, r: compare.CheckResult) -> None:
        tr.write_sep("_", f"REGRESSION {r.id} [{r.kind}]", red=True)
        if r.p_value is None:
            tr.write_line(f"passed in the baseline ({r.baseline.detail}); fails now: {r.candidate.detail}")
        else:
            tr.write_line(f"baseline {r.rates('baseline')} -> candidate {r.rates('candidate')}; {r.test_text()}")
        shown = (("baseline", c.baseline_samples, r.baseline, True), ("candidate", c.candidate_samples, r.candidate, False))
        for side, samples, v, want in shown:  # a passing baseline sample beside a failing candidate one
            i = next((n for n, x in enumerate(v.samples) if x.passed == want), 0)
            rec = samples[i]
            which = "output" if len(samples) == 1 else f"sample {i} of {len(samples)}"
            tr.write_line(f"--- {side} {which} (finish_reason={rec['finish_reason']}) ---")
            tr.write_line(report.short(rec["output"], 600))

    def _write_changes(self, tr: Any, comp: compare.Comparison) -> None:
        counts = (f"{len(comp.regressions)} regression(s), {len(comp.improvements)} improvement(s), "
                  f"{len(comp.changed_outputs)} changed output(s), {len(comp.new_cases)} new, {len(comp.missing_cases)} missing case(s)")
        tr.write_sep("-", f"shisa-spec changes against {self.baseline_path}", red=bool(comp.regressions), green=not comp.regressions)
        tr.write_line(counts)
        def rate(r: compare.CheckResult, side: str) -> str:
            v = r.baseline if side == "baseline" else r.candidate
            return f" {r.rates(side)}" if v is not None and v.n > 1 else ""

        rows = [(r.status, r.id, f"{report.OUTCOME_LABEL[r.outcome('baseline')]}{rate(r, 'baseline')} -> "
                 f"{report.OUTCOME_LABEL[r.outcome('candidate')]}{rate(r, 'candidate')}" + (f"; {r.test_text()}" if r.p_value is not None else ""))
                for r in comp.regressions + comp.improvements]
        for c in comp.changed_outputs:
            what = "text" if c.text_changed else ""
            if c.finish_changed:
                what += (", " if what else "") + f"finish {c.baseline['finish_reason']} -> {c.candidate['finish_reason']}"
            rows.append(("changed", c.case, what))
        rows += [("new", c.case, "no baseline output") for c in comp.new_cases]
        rows += [("missing", c.case, "no output in this run") for c in comp.missing_cases]
        width = max((len(r[1]) for r in rows), default=0)
        for status, name, what in rows:
            tr.write_line(f"  {status:<12} {name:<{width}}  {what}", red=status == compare.REGRESSION, green=status == compare.IMPROVEMENT)
        for line in report.statistics_lines(comp):
            tr.write_line(line)


def pytest_configure(config: pytest.Config) -> None:
    if hasattr(config, "workerinput"):
        return
    if config.option.shisa_baseline or config.option.shisa_report:
        gate = Gate(config)
        config.stash[GATE_KEY] = gate
        config.pluginmanager.register(gate, "shisa-spec-gate")
