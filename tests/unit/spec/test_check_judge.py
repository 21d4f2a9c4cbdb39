"""The `judge` check: parsing the judge's reply, judging from the record only, and the loader's rule that it is never a case's only check."""

import pytest

from shisa_spec.spec import checks
from shisa_spec.spec.cases import CaseFileError, load_suite
from shisa_spec.spec.checks.judge import judge_key, judge_prompt, parse_reply

RUBRIC = "Does the answer name George Washington?"


def out(reply=None, text="George Washington."):
    judge = {} if reply is None else {judge_key(RUBRIC): {"model": "judge-x", "reply": reply}}
    return checks.Output(text, "eos", judge)


@pytest.mark.parametrize("reply,expected", [
    ("VERDICT: PASS\nREASON: it names him.", (True, "it names him.")),
    ("verdict: fail\nreason:  the answer   names Lincoln", (False, "the answer names Lincoln")),
    ("**VERDICT:** PASS", (True, "")),  # markdown bold around the label is tolerated
    ("VERDICT：PASS\nREASON：全角コロン", (True, "全角コロン")),
    ("I think it passes", (None, "")),
])
def test_parse_reply(reply, expected):
    assert parse_reply(reply) == expected


def test_verdict_and_reason_come_from_the_recorded_reply():
    v = checks.run("judge", out("VERDICT: PASS\nREASON: names him"), {"rubric": RUBRIC})
    assert v.passed and v.detail == "judge-x says PASS to 'Does the answer name George Washington?': names him"
    v = checks.run("judge", out("VERDICT: FAIL\nREASON: no name"), {"rubric": RUBRIC})
    assert not v.passed and "FAIL" in v.detail and v.evidence["reply"] == "VERDICT: FAIL\nREASON: no name"


def test_no_reply_or_an_unparseable_reply_fails_with_one_line():
    v = checks.run("judge", out(None), {"rubric": RUBRIC})
    assert not v.passed and v.detail.startswith("no judge reply for this rubric in the record")
    v = checks.run("judge", out("maybe?"), {"rubric": RUBRIC})
    assert not v.passed and v.detail == "the judge's reply has no 'VERDICT: PASS|FAIL' line: 'maybe?'"
    # a reply stored under another rubric does not count
    v = checks.run("judge", out("VERDICT: PASS"), {"rubric": "Is it polite?"})
    assert not v.passed


def test_prompt_holds_question_answer_and_rubric():
    p = judge_prompt("Who?", "Washington", RUBRIC)
    assert "Who?" in p and "Washington" in p and RUBRIC in p and "VERDICT: PASS or FAIL" in p
    assert judge_key(RUBRIC) != judge_key("Is it polite?")


def _case_file(tmp_path, checks_yaml):
    (tmp_path / "cases").mkdir()
    (tmp_path / "schemas").symlink_to(load_suite().path.parent.parent / "schemas")
    p = tmp_path / "cases" / "c.yaml"
    p.write_text("suite: s\ncases:\n  - id: c1\n    language: en\n    prompt: Who was the first president?\n    checks:\n" + checks_yaml, encoding="utf-8")
    return p


def test_a_judge_check_beside_a_rule_check_loads(tmp_path):
    p = _case_file(tmp_path, f"      - {{id: name, check: mentions, params: {{all_of: [[Washington]]}}}}\n      - {{id: j, check: judge, params: {{rubric: '{RUBRIC}'}}}}\n")
    case = load_suite(p).cases[0]
    assert [c.check for c in case.checks] == ["mentions", "judge"]


def test_a_judge_check_alone_is_refused(tmp_path):
    p = _case_file(tmp_path, f"      - {{id: j, check: judge, params: {{rubric: '{RUBRIC}'}}}}\n")
    with pytest.raises(CaseFileError) as e:
        load_suite(p)
    assert str(e.value) == f"{p}: case 'c1': field checks: a judge check cannot be a case's only kind of check: add a rule-based check beside it"


def test_a_judge_check_needs_a_rubric(tmp_path):
    p = _case_file(tmp_path, "      - {id: name, check: eos}\n      - {id: j, check: judge}\n")
    with pytest.raises(CaseFileError, match="rubric"):
        load_suite(p)
