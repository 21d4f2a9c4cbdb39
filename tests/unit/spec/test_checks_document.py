"""The spec agrees with the document: its 16 outputs get exactly the verdicts a careful grader gives."""

import json
from pathlib import Path

import jsonschema
import pytest

from shisa_spec.spec import checks
from shisa_spec.spec.cases import load_suite
from shisa_spec.spec.checks import Output

TRANSCRIPT = Path(__file__).resolve().parents[3] / "fixtures" / "transcripts" / "document.jsonl"

# (case, check id) pairs the document's outputs fail; every other (case, check) passes.
EXPECTED_FAILURES = {
    ("ja-bat-and-ball", "answer"), ("ja-bat-and-ball", "eos"),
    ("en-bat-and-ball", "answer"),
    ("ja-python-fibonacci", "runs"),
    ("ja-friend-bot", "topic"), ("ja-friend-bot", "empathy"),
    ("ja-cookie-mystery", "taro-ate-it"),
    ("ja-takoyaki-recipe", "octopus"), ("ja-takoyaki-recipe", "quantities"),
    ("ja-explain-llm", "eos"),
    ("ja-family-children", "answer"), ("ja-family-children", "eos"), ("ja-family-children", "no-repetition"),
    ("ja-json-relationships", "everyone"),
    ("ja-json-utf8", "ages"),
    ("ja-json-format", "everyone"), ("ja-json-format", "ages"),
}  # fmt: skip

# Model-graded (judge) checks the document's outputs are marked to fail. The document has no judge replies,
# so these are not judged on it; the marks say what a grader reading the document's output sees.
JUDGE_MARKED = {("ja-friend-bot", "friend-judged"), ("ja-takoyaki-recipe", "recipe-judged")}

SUITE = load_suite()
RECORDS = {r["case"]: r for r in map(json.loads, TRANSCRIPT.read_text(encoding="utf-8").splitlines()) if r}
PAIRS = [(case.id, spec) for case in SUITE.cases for spec in case.checks if spec.check != "judge"]
JUDGE_PAIRS = [(case.id, spec) for case in SUITE.cases for spec in case.checks if spec.check == "judge"]


def test_transcript_covers_the_suite():
    assert len(SUITE.cases) == 16 and set(RECORDS) == {c.id for c in SUITE.cases}
    assert EXPECTED_FAILURES <= {(cid, spec.id) for cid, spec in PAIRS}


@pytest.mark.parametrize("case_id,spec", PAIRS, ids=[f"{c}:{s.id}" for c, s in PAIRS])
def test_document_verdict(case_id, spec):
    rec = RECORDS[case_id]
    verdict = checks.run(spec.check, Output(rec["output"], rec["finish_reason"]), spec.params)
    expected = (case_id, spec.id) not in EXPECTED_FAILURES
    assert verdict.passed is expected, f"{case_id}/{spec.id}: {verdict.detail}"
    assert verdict.detail and "\n" not in verdict.detail


def test_known_failures_in_the_case_file_match_the_table():
    marked = {(c.id, kf.check) for c in SUITE.cases for kf in c.known_failures}
    assert marked == EXPECTED_FAILURES | JUDGE_MARKED


def test_judge_checks_are_not_judged_on_the_document_which_has_no_judge_replies():
    from shisa_spec.verdicts.aggregate import judge_samples, judged_by_model

    assert {c for c, _ in JUDGE_PAIRS} == {"ja-friend-bot", "ja-takoyaki-recipe", "ja-explain-llm"}
    for case_id, spec in JUDGE_PAIRS:
        assert not judged_by_model(spec, [RECORDS[case_id]])
        verdicts = judge_samples(SUITE.case(case_id), [RECORDS[case_id]])
        assert spec.id not in verdicts and set(verdicts) == {s.id for s in SUITE.case(case_id).checks if s.check != "judge"}


@pytest.mark.parametrize("name", checks.names())
def test_every_check_declares_a_closed_params_schema(name):
    schema = checks.get(name).params_schema
    jsonschema.Draft202012Validator.check_schema(schema)
    assert schema["type"] == "object" and schema["additionalProperties"] is False
    assert not jsonschema.Draft202012Validator(schema).is_valid({"no_such_param": 1})
