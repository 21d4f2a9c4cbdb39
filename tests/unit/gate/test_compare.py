"""Baseline comparison: both runs judged by the current spec; every (case, check) classified.

Fixtures: fixtures/transcripts/gate/baseline.jsonl is the document's transcript without
ja-json-format; candidate.jsonl is the document's with a regression (ja-apples-remaining answers 2),
an improvement (ja-bat-and-ball answers 50円 and ends itself), a reworded en-first-president, and
no en-cookie-mystery.
"""

from pathlib import Path

import pytest

from shisa_spec.spec import checks
from shisa_spec.gate import compare
from shisa_spec.spec.cases import FIXTURES, dump_suite_data, load_suite
from shisa_spec.generation.transcript import read

GATE = FIXTURES / "transcripts" / "gate"
SUITE = load_suite()
DOC = read(FIXTURES / "transcripts" / "document.jsonl")
BASE = read(GATE / "baseline.jsonl")
CAND = read(GATE / "candidate.jsonl")


@pytest.fixture(scope="module")
def comp() -> compare.Comparison:
    return compare.compare(SUITE, BASE, CAND)


def ids(rows):
    return sorted(r.id for r in rows)


def test_regression_improvement_and_output_changes(comp):
    assert ids(comp.regressions) == ["ja-apples-remaining.answer"]
    assert ids(comp.improvements) == ["ja-bat-and-ball.answer", "ja-bat-and-ball.eos"]
    assert sorted(c.case for c in comp.changed_outputs) == ["en-first-president", "ja-apples-remaining", "ja-bat-and-ball"]
    bat = comp.case("ja-bat-and-ball")
    assert bat.text_changed and bat.finish_changed
    assert comp.case("en-first-president").text_changed and not comp.case("en-first-president").finish_changed
    assert not comp.case("ja-translate-fruits").text_changed


def test_new_and_missing_cases(comp):
    assert [c.case for c in comp.new_cases] == ["ja-json-format"]
    assert [c.case for c in comp.missing_cases] == ["en-cookie-mystery"]
    assert {r.status for r in comp.case("ja-json-format").checks} == {compare.NEW}
    assert {r.status for r in comp.case("en-cookie-mystery").checks} == {compare.MISSING}
    assert comp.case("en-cookie-mystery").candidate is None


def test_every_other_check_is_unchanged(comp):
    other = [r for r in comp.checks() if r.status not in (compare.REGRESSION, compare.IMPROVEMENT, compare.NEW, compare.MISSING)]
    new_missing = len(SUITE.case("ja-json-format").checks) + len(SUITE.case("en-cookie-mystery").checks)
    assert len(other) == len(comp.checks()) - 1 - 2 - new_missing
    for r in other:
        assert r.status == (compare.UNCHANGED_PASS if r.baseline.passed else compare.UNCHANGED_FAIL)
        assert r.baseline.passed == r.candidate.passed


def test_known_failures_and_xpass(comp):
    bat = {r.check: r for r in comp.case("ja-bat-and-ball").checks}
    assert bat["answer"].known_failure and bat["answer"].outcome("baseline") == "xfail"
    assert bat["answer"].outcome("candidate") == "xpass"
    apples = {r.check: r for r in comp.case("ja-apples-remaining").checks}
    assert apples["answer"].known_failure is None and apples["answer"].outcome("candidate") == "fail"
    assert comp.tally("candidate") == {"pass": 44, "fail": 1, "xfail": 15, "xpass": 2}
    assert comp.tally("baseline") == {"pass": 45, "fail": 0, "xfail": 15, "xpass": 0}


def test_identical_runs_have_no_changes():
    same = compare.compare(SUITE, DOC, DOC)
    assert not (same.regressions or same.improvements or same.changed_outputs or same.new_cases or same.missing_cases)
    assert same.tally("candidate") == {"pass": 48, "fail": 0, "xfail": 17, "xpass": 0}


def test_no_baseline_judges_one_run():
    one = compare.compare(SUITE, None, CAND)
    assert not one.has_baseline
    assert not (one.regressions or one.improvements or one.new_cases or one.missing_cases or one.changed_outputs)
    assert len(one.cases) == len(CAND)
    assert all(r.baseline is None for r in one.checks())


def test_select_limits_to_the_tests_that_ran():
    comp = compare.compare(SUITE, BASE, CAND, select=[("ja-apples-remaining", "answer"), ("ja-bat-and-ball", "eos")])
    assert [c.case for c in comp.cases] == ["ja-apples-remaining", "ja-bat-and-ball"]
    assert ids(comp.checks()) == ["ja-apples-remaining.answer", "ja-bat-and-ball.eos"]
    assert not comp.missing_cases  # en-cookie-mystery did not run: not missing


def test_unknown_record_cases_are_listed_not_judged():
    extra = {**CAND, "not-a-case": [{"case": "not-a-case", "output": "x", "finish_reason": "eos"}]}
    assert compare.compare(SUITE, BASE, extra).unknown == ("not-a-case",)


def test_a_check_that_raises_counts_as_failed(monkeypatch):
    real = checks.run

    def run(name, output, params=None):
        if name == "japanese":
            raise RuntimeError("boom")
        return real(name, output, params)

    monkeypatch.setattr(checks, "run", run)
    comp = compare.compare(SUITE, None, {"ja-apples-remaining": CAND["ja-apples-remaining"]})
    jp = next(r for r in comp.checks() if r.check == "japanese")
    assert not jp.candidate.passed and "RuntimeError: boom" in jp.candidate.detail


def test_known_failure_when_is_matched_against_the_run_conditions(tmp_path: Path):
    import yaml

    data = yaml.safe_load(SUITE.path.read_text(encoding="utf-8"))
    case = next(c for c in data["cases"] if c["id"] == "ja-apples-remaining")
    case["known_failures"] = [{"check": "answer", "reason": "4-bit quantisation loses the count", "when": {"quantize": "4bit"}}]
    (tmp_path / "cases").mkdir()
    (tmp_path / "schemas").symlink_to(FIXTURES / "schemas")
    path = tmp_path / "cases" / "c.yaml"
    path.write_text(dump_suite_data(data), encoding="utf-8")
    suite = load_suite(path)
    recs = {"ja-apples-remaining": CAND["ja-apples-remaining"]}
    plain = compare.compare(suite, None, recs)
    assert next(r for r in plain.checks() if r.check == "answer").outcome("candidate") == "fail"
    rec = recs["ja-apples-remaining"][0]
    q4 = {**rec, "provenance": {**rec["provenance"], "quantize": "4bit"}}
    marked = compare.compare(suite, None, {"ja-apples-remaining": [q4]})
    assert next(r for r in marked.checks() if r.check == "answer").outcome("candidate") == "xfail"
    forced = compare.compare(suite, None, recs, conditions=lambda c, r: {"quantize": "4bit"})
    assert next(r for r in forced.checks() if r.check == "answer").known_failure == "4-bit quantisation loses the count"


def test_record_conditions_reads_provenance():
    case = SUITE.case("ja-apples-remaining")
    assert compare.record_conditions(case, DOC[case.id][0]) == {"quantize": "none", "prompt_style": "document", "model": "augmxnt/shisa-7b-v1"}
    assert compare.record_conditions(case, None)["prompt_style"] == case.prompt_style
