"""Model-graded (judge) checks in the gate: judged from the replies records hold, compared like any check,
left out where no judge was asked, and the judge named in the report."""

import json

from shisa_spec.gate import calibrate, compare, report
from shisa_spec.generation.transcript import read
from shisa_spec.spec.cases import load_suite
from shisa_spec.spec.checks.judge import judge_key

SUITE = load_suite()
CASE = "ja-explain-llm"
RUBRIC = next(s for s in SUITE.case(CASE).checks if s.check == "judge").params["rubric"]


def with_replies(path, passing: int, model: str = "judge-m"):
    """The transcript with a judge reply on every sample of CASE: the first `passing` say PASS."""
    out = []
    for line in path.read_text(encoding="utf-8").splitlines():
        r = json.loads(line)
        if r["case"] == CASE:
            verdict = "PASS" if r["sample"] < passing else "FAIL"
            r["judge"] = {judge_key(RUBRIC): {"model": model, "base_url": "http://127.0.0.1:8000/v1", "prompt_version": "1",
                                              "rubric_key": judge_key(RUBRIC), "reply": f"VERDICT: {verdict}\nREASON: r", "from_cache": False}}
        out.append(json.dumps(r, ensure_ascii=False))
    path.write_text("\n".join(out) + "\n", encoding="utf-8")
    return path


def row(comp, check):
    return next((r for r in comp.checks() if (r.case, r.check) == (CASE, check)), None)


def test_judge_verdicts_drop_from_15_to_2_of_16_is_a_regression(multi_transcripts):
    base = with_replies(multi_transcripts({}, "b.jsonl"), 15)
    cand = with_replies(multi_transcripts({}, "c.jsonl"), 2)
    comp = compare.compare(SUITE, read(base), read(cand))
    r = row(comp, "explanation-judged")
    assert (r.baseline.k, r.baseline.n, r.candidate.k, r.candidate.n) == (15, 16, 2, 16)
    assert [x.id for x in comp.regressions] == [f"{CASE}.explanation-judged"]
    assert "judge-m says FAIL" in r.candidate.detail
    html = report.html_report(comp, None, {"baseline": "b", "candidate": "c"})
    assert html.count("Judge (model-graded checks): judge-m at http://127.0.0.1:8000/v1, judge prompt v1, 16 replies") == 2
    assert "Judge for the candidate's model-graded checks: judge-m at http://127.0.0.1:8000/v1" in report.markdown_summary(comp)


def test_without_judge_replies_judge_checks_are_left_out_not_failed(multi_transcripts):
    comp = compare.compare(SUITE, read(multi_transcripts({}, "b.jsonl")), read(multi_transcripts({}, "c.jsonl")))
    judge_checks = {(c.id, s.id) for c in SUITE.cases for s in c.checks if s.check == "judge"}
    assert len(judge_checks) == 3
    assert not judge_checks & {(r.case, r.check) for r in comp.checks()}
    assert len(comp.checks()) == sum(len(c.checks) for c in SUITE.cases) - 3
    assert not comp.judges("candidate") and "Judge" not in report.html_report(comp, None)


def test_calibrate_skips_judge_checks_without_replies(multi_transcripts):
    cal = calibrate.calibrate(SUITE, read(multi_transcripts({}, "c.jsonl")))
    touched = {(m.case, m.check) for m in cal.added + cal.removed + cal.review + cal.kept + cal.rated}
    assert not {("ja-friend-bot", "friend-judged"), ("ja-takoyaki-recipe", "recipe-judged")} & touched
    assert ("ja-friend-bot", "empathy") in touched  # the rule checks beside them are calibrated as before
    marks = {(c["id"], m["check"]) for c in cal.data["cases"] for m in c.get("known_failures") or []}
    assert {("ja-friend-bot", "friend-judged"), ("ja-takoyaki-recipe", "recipe-judged")} <= marks
