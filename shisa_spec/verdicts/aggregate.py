"""A (case, check)'s verdict over all its samples: k of N passed, the interval, and the decision."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

from shisa_spec.spec import checks
from shisa_spec.spec.cases import Case, CheckSpec
from shisa_spec.spec.checks.judge import has_reply
from shisa_spec.verdicts import stats
from shisa_spec.verdicts.judge import judge, sample_key


@dataclass(frozen=True)
class CheckVerdict:
    """One check judged on every sample of its case."""

    check: CheckSpec
    samples: tuple[checks.Verdict, ...]  # in sample order
    decision: stats.Decision

    @property
    def k(self) -> int:
        return self.decision.k

    @property
    def n(self) -> int:
        return self.decision.n

    @property
    def passed(self) -> bool:
        """The check's verdict for the run, ignoring marks: True unless the decision fails it."""
        return not stats.decide(self.k, self.n, self.check.min_pass_rate).failed

    @property
    def detail(self) -> str:
        """The decision, and the first failing sample's finding (the only sample's for one sample)."""
        failing = [(i, v) for i, v in enumerate(self.samples) if not v.passed]
        if self.n == 1:
            return self.samples[0].detail
        head = self.decision.summary()
        if failing:
            i, v = failing[0]
            return f"{head}; first failing sample {i}: {v.detail}"
        return head

    def first_failing(self) -> int | None:
        return next((i for i, v in enumerate(self.samples) if not v.passed), None)


def rate_text(k: int, n: int) -> str:
    return f"{k}/{n}"


def judged_by_model(spec: CheckSpec, records: Sequence[dict[str, Any]]) -> bool:
    """False for a ``judge`` check none of whose samples holds the judge's reply (no judge was asked): not judged."""
    return spec.check != "judge" or any(has_reply(r.get("judge"), spec.params.get("rubric", "")) for r in records)


def judge_samples(case: Case, records: Sequence[dict[str, Any]], marked: dict[str, bool] | None = None) -> dict[str, CheckVerdict]:
    """Every check of the case on every sample record; ``marked[check id]`` selects the known-failure rule.
    A ``judge`` check no judge was asked about (no reply in any record) is left out: not judged."""
    if not records:
        raise ValueError(f"case {case.id!r}: no samples to judge")
    seen: dict[tuple[str, str, str], dict[str, checks.Verdict]] = {}  # checks are pure: judge each distinct text once
    per_sample = []
    for rec in records:
        key = sample_key(rec)
        if key not in seen:
            seen[key] = judge(case, rec)
        per_sample.append(seen[key])
    out = {}
    for spec in case.checks:
        if not judged_by_model(spec, records):
            continue
        vs = tuple(v[spec.id] for v in per_sample)
        k = sum(v.passed for v in vs)
        decision = stats.decide(k, len(vs), spec.min_pass_rate, bool((marked or {}).get(spec.id)))
        out[spec.id] = CheckVerdict(spec, vs, decision)
    return out
