"""Baseline comparison: judge two runs' transcripts by the same (current) spec and classify each change.

Pure: takes a suite and two dicts of transcript records (``transcript.read``'s shape) and returns a
``Comparison`` that the gate plugin, the report and calibration use.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Callable, Iterable

from shisa_spec.spec import checks
from shisa_spec.spec.cases import Case, Suite
from shisa_spec.verdicts.judge import judge, record_conditions

Records = dict[str, dict[str, Any]]
Conditions = Callable[[Case, "dict[str, Any] | None"], dict[str, str]]

REGRESSION = "regression"
IMPROVEMENT = "improvement"
UNCHANGED_PASS = "unchanged-pass"
UNCHANGED_FAIL = "unchanged-fail"
NEW = "new"
MISSING = "missing"


@dataclass(frozen=True)
class CheckResult:
    """One (case, check): both runs' verdicts, the case file's known-failure mark, and the change."""

    case: str
    check: str
    kind: str
    baseline: checks.Verdict | None
    candidate: checks.Verdict | None
    known_failure: str | None  # the mark's reason when the case file marks this check for the run
    status: str

    @property
    def id(self) -> str:
        return f"{self.case}.{self.check}"

    def outcome(self, side: str) -> str | None:
        """pass, fail, xfail (known failure, still failing) or xpass (marked but passed); None if absent."""
        v = self.baseline if side == "baseline" else self.candidate
        if v is None:
            return None
        if self.known_failure is None:
            return "pass" if v.passed else "fail"
        return "xpass" if v.passed else "xfail"


@dataclass(frozen=True)
class CaseResult:
    case: str
    prompt: str
    category: str
    language: str
    baseline: dict[str, Any] | None
    candidate: dict[str, Any] | None
    checks: tuple[CheckResult, ...]

    @property
    def presence(self) -> str:
        return NEW if self.baseline is None else MISSING if self.candidate is None else "both"

    @property
    def text_changed(self) -> bool:
        return self.presence == "both" and self.baseline["output"] != self.candidate["output"]

    @property
    def finish_changed(self) -> bool:
        return self.presence == "both" and self.baseline["finish_reason"] != self.candidate["finish_reason"]


@dataclass(frozen=True)
class Comparison:
    suite: str
    has_baseline: bool
    cases: tuple[CaseResult, ...]
    unknown: tuple[str, ...] = ()  # record case ids the suite does not define (not judged)

    def checks(self) -> list[CheckResult]:
        return [r for c in self.cases for r in c.checks]

    def with_status(self, status: str) -> list[CheckResult]:
        return [r for r in self.checks() if r.status == status]

    @property
    def regressions(self) -> list[CheckResult]:
        return self.with_status(REGRESSION)

    @property
    def improvements(self) -> list[CheckResult]:
        return self.with_status(IMPROVEMENT)

    @property
    def changed_outputs(self) -> list[CaseResult]:
        return [c for c in self.cases if c.text_changed or c.finish_changed]

    @property
    def new_cases(self) -> list[CaseResult]:
        return [c for c in self.cases if c.presence == NEW] if self.has_baseline else []

    @property
    def missing_cases(self) -> list[CaseResult]:
        return [c for c in self.cases if c.presence == MISSING]

    def case(self, case_id: str) -> CaseResult:
        return next(c for c in self.cases if c.case == case_id)

    def tally(self, side: str) -> dict[str, int]:
        """How many checks of one run had each outcome (pass, fail, xfail, xpass)."""
        out = {"pass": 0, "fail": 0, "xfail": 0, "xpass": 0}
        for r in self.checks():
            o = r.outcome(side)
            if o:
                out[o] += 1
        return out

    def provenances(self, side: str) -> list[tuple[dict[str, Any], list[str]]]:
        """The distinct provenance dicts of one run's records, each with the cases that carry it."""
        groups: dict[str, tuple[dict[str, Any], list[str]]] = {}
        for c in self.cases:
            rec = c.baseline if side == "baseline" else c.candidate
            if rec is None:
                continue
            prov = dict(rec.get("provenance") or {})
            for key in ("source", "seed", "batch_size"):
                if key in rec and key not in prov:
                    prov[key] = rec[key]
            groups.setdefault(json.dumps(prov, sort_keys=True, ensure_ascii=False), (prov, []))[1].append(c.case)
        return list(groups.values())


def _status(before: checks.Verdict | None, after: checks.Verdict | None) -> str:
    if before is None:
        return NEW
    if after is None:
        return MISSING
    if before.passed:
        return UNCHANGED_PASS if after.passed else REGRESSION
    return IMPROVEMENT if after.passed else UNCHANGED_FAIL


def compare(
    suite: Suite,
    baseline: Records | None,
    candidate: Records,
    conditions: Conditions = record_conditions,
    select: Iterable[tuple[str, str]] | None = None,
) -> Comparison:
    """Judge both runs' records with the suite's checks and classify every (case, check).

    ``baseline`` None means no baseline (every case counts as new). ``conditions(case, record)`` gives
    the run settings known-failure marks are matched against (default: the candidate record's
    provenance). ``select`` limits the comparison to these (case id, check id) pairs, e.g. the tests a
    ``-k`` run selected; a baseline case outside it is not "missing".
    """
    chosen = None if select is None else set(select)
    chosen_cases = None if chosen is None else {c for c, _ in chosen}
    base = baseline or {}
    known = {c.id for c in suite.cases}
    results = []
    for case in suite.cases:
        if chosen_cases is not None and case.id not in chosen_cases:
            continue
        b, c = base.get(case.id), candidate.get(case.id)
        if b is None and c is None:
            continue
        vb = judge(case, b) if b is not None else {}
        vc = judge(case, c) if c is not None else {}
        run = conditions(case, c if c is not None else b)
        rows = []
        for spec in case.checks:
            if chosen is not None and (case.id, spec.id) not in chosen:
                continue
            kf = case.known_failure(spec.id, run)
            before, after = vb.get(spec.id), vc.get(spec.id)
            rows.append(CheckResult(case.id, spec.id, spec.check, before, after, kf.reason if kf else None, _status(before, after)))
        results.append(CaseResult(case.id, case.prompt, case.category, case.language, b, c, tuple(rows)))
    unknown = sorted((set(base) | set(candidate)) - known)
    return Comparison(suite.name, baseline is not None, tuple(results), tuple(unknown))
