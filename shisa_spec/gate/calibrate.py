"""Calibration: rewrite a case file's known-failure marks from a real run's verdicts.

For every case in the transcript, each check is judged on every recorded sample and decided by the
verdict rule (``stats.decide``). A check that fails (clearly below its required rate; with one
sample: the sample failed) with no mark that applies to the run gets a new mark (``when`` = the
calibration's scope, a ``TODO: review`` reason quoting the first failing sample, and, from a
multi-sample transcript, ``rate: k/N``); a marked check that XPASSes (clearly meets the requirement)
loses the marks that apply to the run, unless a mark covers more runs than the calibration's scope
(then it is listed for review and kept). A kept mark's ``rate`` is set to the measured k/N when the
transcript has several samples of the case. Marks whose ``when`` does not match the run are left
alone, as are cases the transcript lacks. The result is validated with ``load_suite`` before it
replaces the file.
"""

from __future__ import annotations

import copy
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from shisa_spec.spec.cases import KnownFailure, Suite, dump_suite_data, load_suite
from shisa_spec.gate.compare import Records
from shisa_spec.verdicts import stats
from shisa_spec.verdicts.aggregate import judge_samples
from shisa_spec.verdicts.judge import record_conditions


@dataclass(frozen=True)
class MarkChange:
    case: str
    check: str
    reason: str  # the mark's reason (new stub, or the removed/kept one)
    detail: str  # the verdict's detail on this run

    @property
    def id(self) -> str:
        return f"{self.case}.{self.check}"


@dataclass
class Calibration:
    data: dict[str, Any]  # the new raw case-file data
    scope: dict[str, str]
    added: list[MarkChange] = field(default_factory=list)
    removed: list[MarkChange] = field(default_factory=list)
    review: list[MarkChange] = field(default_factory=list)  # passing, but the mark covers more runs than the scope
    kept: list[MarkChange] = field(default_factory=list)
    rated: list[MarkChange] = field(default_factory=list)  # kept marks whose measured rate changed
    not_in_transcript: list[str] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return bool(self.added or self.removed or self.rated)

    def summary(self) -> str:
        lines = [f"+ {m.id} (fails now: {m.detail}): {m.reason}" for m in self.added]
        lines += [f"- {m.id} (passes now: {m.detail})" for m in self.removed]
        lines += [f"~ {m.id}: measured rate {m.reason}" for m in self.rated]
        lines += [f"? {m.id}: passes now, but its mark applies beyond {scope_text(self.scope)}; "
                  "narrow or remove it by hand" for m in self.review]
        counts = f"{len(self.added)} mark(s) added, {len(self.removed)} removed, {len(self.kept)} kept"
        if self.rated:
            counts += f" ({len(self.rated)} with a new measured rate)"
        if self.review:
            counts += f", {len(self.review)} to review"
        if self.not_in_transcript:
            counts += f"; {len(self.not_in_transcript)} case(s) not in the transcript left alone ({', '.join(self.not_in_transcript)})"
        return "\n".join(lines + [counts])


def scope_text(scope: dict[str, str]) -> str:
    return "when " + ", ".join(f"{k}={v}" for k, v in scope.items()) if scope else "all runs"


def stub_reason(output: str, limit: int = 60) -> str:
    """The reason of a new mark: a TODO quoting the start of the output."""
    flat = " ".join(output.split())
    if not flat:
        return "TODO: review. This model answered nothing (empty output)."
    quote = flat if len(flat) <= limit else flat[:limit] + "…"
    return f"TODO: review. This model answered 「{quote}」"


def calibrate(suite: Suite, records: Records, when: dict[str, str] | None = None) -> Calibration:
    """The case file's raw data with marks added/removed to match the records' verdicts (pure)."""
    scope = dict(when or {})
    data = copy.deepcopy(suite.raw)
    cal = Calibration(data, scope)
    raw_cases = {c["id"]: c for c in data["cases"]}
    for case in suite.cases:
        recs = records.get(case.id)
        if not recs:
            cal.not_in_transcript.append(case.id)
            continue
        run = {**record_conditions(case, recs[0]), **scope}
        verdicts = judge_samples(case, recs)
        raw_case = raw_cases[case.id]
        marks = list(raw_case.get("known_failures") or [])
        drop: set[int] = set()
        for spec in case.checks:
            v = verdicts.get(spec.id)
            if v is None:  # a judge check no judge was asked about: nothing to calibrate from
                continue
            rate = f"{v.k}/{v.n}"
            applying = [i for i, m in enumerate(marks)
                        if m["check"] == spec.id and KnownFailure(m["check"], m["reason"], dict(m.get("when") or {})).applies(run)]
            if applying:
                if not stats.decide(v.k, v.n, spec.min_pass_rate, marked=True).outcome == stats.XPASS:
                    m = marks[applying[0]]
                    cal.kept.append(MarkChange(case.id, spec.id, m["reason"], v.detail))
                    if v.n > 1 and m.get("rate") != rate:
                        m["rate"] = rate
                        cal.rated.append(MarkChange(case.id, spec.id, rate, v.detail))
                    continue
                for i in applying:
                    m = marks[i]
                    if scope.items() <= dict(m.get("when") or {}).items():
                        drop.add(i)
                        cal.removed.append(MarkChange(case.id, spec.id, m["reason"], v.detail))
                    else:
                        cal.review.append(MarkChange(case.id, spec.id, m["reason"], v.detail))
                continue
            if stats.decide(v.k, v.n, spec.min_pass_rate).outcome != stats.FAIL:
                continue
            bad = recs[v.first_failing() or 0]
            new: dict[str, Any] = {"check": spec.id, "reason": stub_reason(bad["output"])}
            if v.n > 1:
                new["rate"] = rate
            if scope:
                new["when"] = dict(scope)
            marks.append(new)
            cal.added.append(MarkChange(case.id, spec.id, new["reason"], v.detail))
        marks = [m for i, m in enumerate(marks) if i not in drop]
        if marks:
            raw_case["known_failures"] = marks
        else:
            raw_case.pop("known_failures", None)
    return cal


def write(suite: Suite, cal: Calibration) -> Path:
    """Validate the calibrated data with ``load_suite`` and atomically replace the case file."""
    path = suite.path
    fd, tmp = tempfile.mkstemp(prefix=path.stem + ".", suffix=".calibrating.yaml", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(dump_suite_data(cal.data))
        load_suite(tmp)  # raises CaseFileError: never write an invalid case file
        os.replace(tmp, path)
    finally:
        Path(tmp).unlink(missing_ok=True)
    return path
