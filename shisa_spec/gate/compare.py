"""Baseline comparison: judge two runs' transcripts by the same (current) spec and classify each change.

Pure: takes a suite and two dicts of per-case sample records (``transcript.read``'s shape) and returns
a ``Comparison`` that the gate plugin, the report and calibration use.

A (case, check) is a regression when its candidate pass rate is significantly below the baseline's:
a one-sided Fisher exact test per check, Holm-adjusted over every check compared with more than one
sample on a side, at family-wise alpha 0.05. When both sides have one sample there is no test: a
check that passed and now fails is a regression, as before multi-sample runs. Beside it, the suite's
mean paired difference over checks with a case-clustered standard error (``stats.paired_difference``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Callable, Iterable

from shisa_spec.generation.transcript import Records
from shisa_spec.spec.cases import Case, Suite
from shisa_spec.verdicts import stats
from shisa_spec.verdicts.aggregate import CheckVerdict, judge_samples
from shisa_spec.verdicts.judge import record_conditions

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
    baseline: CheckVerdict | None
    candidate: CheckVerdict | None
    known_failure: str | None  # the mark's reason when the case file marks this check for the run
    status: str
    p_value: float | None = None  # one-sided Fisher: candidate below baseline (None: not tested)
    p_adjusted: float | None = None  # Holm-adjusted over the checks tested
    known_rate: str | None = None  # the mark's measured rate, e.g. "2/16"

    @property
    def id(self) -> str:
        return f"{self.case}.{self.check}"

    def outcome(self, side: str) -> str | None:
        """pass, fail, xfail (known failure, not clearly meeting the requirement) or xpass (marked, clearly
        meets it now); None if absent. The rule is ``stats.decide``'s."""
        v = self.baseline if side == "baseline" else self.candidate
        if v is None:
            return None
        return stats.decide(v.k, v.n, v.check.min_pass_rate, self.known_failure is not None).outcome

    def rates(self, side: str) -> str:
        """'k/N (95% CI lo-hi)' or 'k/1 (1 sample: no interval)'; '' if absent."""
        v = self.baseline if side == "baseline" else self.candidate
        if v is None:
            return ""
        d = v.decision
        return f"{v.k}/1 (1 sample: no interval)" if v.n == 1 else f"{v.k}/{v.n} (95% CI {d.low:.2f}-{d.high:.2f})"

    def test_text(self) -> str:
        if self.p_value is None:
            both = self.baseline is not None and self.candidate is not None
            return "1 sample each: no test" if both else ""
        return f"p = {self.p_value:.2g} (Holm-adjusted {self.p_adjusted:.2g})"


@dataclass(frozen=True)
class CaseResult:
    case: str
    prompt: str
    category: str
    language: str
    baseline_samples: tuple[dict[str, Any], ...]
    candidate_samples: tuple[dict[str, Any], ...]
    checks: tuple[CheckResult, ...]

    @property
    def baseline(self) -> dict[str, Any] | None:
        """Sample 0's record (the one-sample view), None if the baseline lacks the case."""
        return self.baseline_samples[0] if self.baseline_samples else None

    @property
    def candidate(self) -> dict[str, Any] | None:
        return self.candidate_samples[0] if self.candidate_samples else None

    @property
    def presence(self) -> str:
        return NEW if self.baseline is None else MISSING if self.candidate is None else "both"

    @property
    def text_changed(self) -> bool:
        """Any sample's text differs (or the number of samples does)."""
        return self.presence == "both" and [r["output"] for r in self.baseline_samples] != [r["output"] for r in self.candidate_samples]

    @property
    def finish_changed(self) -> bool:
        return self.presence == "both" and self.baseline["finish_reason"] != self.candidate["finish_reason"]


@dataclass(frozen=True)
class Comparison:
    suite: str
    has_baseline: bool
    cases: tuple[CaseResult, ...]
    unknown: tuple[str, ...] = ()  # record case ids the suite does not define (not judged)
    difference: stats.SuiteDifference | None = None  # candidate minus baseline pass rates over checks
    alpha: float = stats.ALPHA

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

    def judges(self, side: str) -> list[dict[str, Any]]:
        """The judge models whose replies one run's records hold (model, base_url, prompt_version, replies)."""
        seen: dict[tuple[Any, Any, Any], int] = {}
        for c in self.cases:
            for rec in c.baseline_samples if side == "baseline" else c.candidate_samples:
                for entry in (rec.get("judge") or {}).values():
                    if isinstance(entry, dict):
                        key = (entry.get("model"), entry.get("base_url"), entry.get("prompt_version"))
                        seen[key] = seen.get(key, 0) + 1
        return [{"model": m, "base_url": u, "prompt_version": v, "replies": n} for (m, u, v), n in sorted(seen.items(), key=str)]

    def provenances(self, side: str) -> list[tuple[dict[str, Any], list[str]]]:
        """The distinct provenance dicts of one run's records, each with the cases that carry it."""
        groups: dict[str, tuple[dict[str, Any], list[str]]] = {}
        for c in self.cases:
            rec = c.baseline if side == "baseline" else c.candidate
            if rec is None:
                continue
            samples = c.baseline_samples if side == "baseline" else c.candidate_samples
            rec = {**rec, "samples": len(samples)}
            prov = dict(rec.get("provenance") or {})
            for key in ("source", "seed", "batch_size", "samples"):
                if key in rec and key not in prov:
                    prov[key] = rec[key]
            groups.setdefault(json.dumps(prov, sort_keys=True, ensure_ascii=False), (prov, []))[1].append(c.case)
        return list(groups.values())


def _status(before: CheckVerdict | None, after: CheckVerdict | None, p_adj: float | None, p_up_adj: float | None, alpha: float) -> str:
    if before is None:
        return NEW
    if after is None:
        return MISSING
    if p_adj is None:  # one sample each: no test, the verdicts themselves
        if before.passed:
            return UNCHANGED_PASS if after.passed else REGRESSION
        return IMPROVEMENT if after.passed else UNCHANGED_FAIL
    if p_adj <= alpha:
        return REGRESSION
    if p_up_adj is not None and p_up_adj <= alpha:
        return IMPROVEMENT
    return UNCHANGED_PASS if after.passed else UNCHANGED_FAIL


def compare(
    suite: Suite,
    baseline: Records | None,
    candidate: Records,
    conditions: Conditions = record_conditions,
    select: Iterable[tuple[str, str]] | None = None,
    alpha: float = stats.ALPHA,
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
    pending = []  # (case, CaseResult fields, rows without status)
    for case in suite.cases:
        if chosen_cases is not None and case.id not in chosen_cases:
            continue
        b, c = base.get(case.id) or [], candidate.get(case.id) or []
        if not b and not c:
            continue
        run = conditions(case, c[0] if c else b[0])
        vb = judge_samples(case, b) if b else {}
        vc = judge_samples(case, c) if c else {}
        rows = []
        for spec in case.checks:
            if chosen is not None and (case.id, spec.id) not in chosen:
                continue
            if vb.get(spec.id) is None and vc.get(spec.id) is None:
                continue  # a judge check no judge was asked about on either side: not judged, not compared
            kf = case.known_failure(spec.id, run)
            rows.append((spec, kf, vb.get(spec.id), vc.get(spec.id)))
        pending.append((case, b, c, rows))
    # One family of tests: every check with both sides and more than one sample on a side.
    tested = [(ci, ri) for ci, (_, _, _, rows) in enumerate(pending) for ri, (_, _, vb, vc) in enumerate(rows)
              if vb is not None and vc is not None and max(vb.n, vc.n) > 1]
    down = [stats.regression_p(pending[ci][3][ri][2].k, pending[ci][3][ri][2].n, pending[ci][3][ri][3].k, pending[ci][3][ri][3].n)
            for ci, ri in tested]
    up = [stats.regression_p(pending[ci][3][ri][3].k, pending[ci][3][ri][3].n, pending[ci][3][ri][2].k, pending[ci][3][ri][2].n)
          for ci, ri in tested]
    down_adj, up_adj = stats.holm(down), stats.holm(up)
    test = {key: (down[i], down_adj[i], up_adj[i]) for i, key in enumerate(tested)}
    results = []
    pairs = []
    for ci, (case, b, c, rows) in enumerate(pending):
        out = []
        for ri, (spec, kf, before, after) in enumerate(rows):
            p, p_adj, p_up = test.get((ci, ri), (None, None, None))
            status = _status(before, after, p_adj, p_up, alpha)
            out.append(CheckResult(case.id, spec.id, spec.check, before, after, kf.reason if kf else None, status,
                                   p, p_adj, kf.rate if kf else None))
            if before is not None and after is not None:
                pairs.append((case.id, before.k / before.n, after.k / after.n))
        results.append(CaseResult(case.id, case.prompt, case.category, case.language, tuple(b), tuple(c), tuple(out)))
    unknown = sorted((set(base) | set(candidate)) - known)
    diff = stats.paired_difference(pairs) if baseline is not None else None
    return Comparison(suite.name, baseline is not None, tuple(results), tuple(unknown), diff, alpha)
