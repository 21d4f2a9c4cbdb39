"""The gate on multi-sample transcripts (hand-made, 16 samples per case): significance decides a regression."""

from shisa_spec.gate import compare
from shisa_spec.gate import report
from shisa_spec.generation.transcript import read
from shisa_spec.spec.cases import load_suite

SUITE = load_suite()
APPLES_WRONG = "残りのりんごは2個です。"
FIB_WRONG = "The first ten numbers are 1, 2, 3, 4, 5, 6, 7, 8, 9, 10."


def pair(multi_transcripts, apples, fib):
    base = multi_transcripts({"ja-apples-remaining": (apples[0], APPLES_WRONG), "en-fibonacci-first-10": (fib[0], FIB_WRONG)}, "b.jsonl")
    cand = multi_transcripts({"ja-apples-remaining": (apples[1], APPLES_WRONG), "en-fibonacci-first-10": (fib[1], FIB_WRONG)}, "c.jsonl")
    return compare.compare(SUITE, read(base), read(cand))


def row(comp, case, check):
    return next(r for r in comp.checks() if (r.case, r.check) == (case, check))


def test_15_of_16_to_3_of_16_is_a_regression_8_to_7_is_not(multi_transcripts):
    comp = pair(multi_transcripts, apples=(15, 3), fib=(8, 7))
    apples, fib = row(comp, "ja-apples-remaining", "answer"), row(comp, "en-fibonacci-first-10", "sequence")
    assert [r.id for r in comp.regressions] == ["ja-apples-remaining.answer"]
    assert (apples.baseline.k, apples.baseline.n, apples.candidate.k, apples.candidate.n) == (15, 16, 3, 16)
    assert apples.p_value < 1e-4 and apples.p_adjusted <= 0.05
    assert apples.rates("baseline") == "15/16 (95% CI 0.70-1.00)" and apples.rates("candidate") == "3/16 (95% CI 0.04-0.46)"
    assert fib.status == compare.UNCHANGED_PASS and fib.p_value > 0.3
    assert "p = " in fib.test_text() and "Holm-adjusted" in fib.test_text()
    assert not comp.improvements
    d = comp.difference
    assert d.mean < 0 and d.low < d.mean < d.high  # (3 - 15 + 7 - 8) / 16 over the checks compared
    assert d.checks == len(comp.checks())


def test_the_reverse_change_is_an_improvement_not_a_regression(multi_transcripts):
    comp = pair(multi_transcripts, apples=(3, 15), fib=(7, 8))
    assert not comp.regressions
    assert [r.id for r in comp.improvements] == ["ja-apples-remaining.answer"]


def test_identical_multi_sample_runs_have_no_changes(multi_transcripts):
    comp = pair(multi_transcripts, apples=(10, 10), fib=(8, 8))
    assert not (comp.regressions or comp.improvements or comp.changed_outputs)
    assert comp.difference.mean == 0


def test_report_shows_rates_p_values_and_every_sample(multi_transcripts, tmp_path):
    comp = pair(multi_transcripts, apples=(15, 3), fib=(8, 7))
    html = report.html_report(comp, None, {"baseline": "b", "candidate": "c"})
    assert "15/16 (95% CI 0.70-1.00)" in html and "3/16 (95% CI 0.04-0.46)" in html
    assert "Holm-adjusted" in html and "clustered by case" in html and "false-alarm rate" in html
    assert html.count("All 16 candidate samples") == len(comp.cases)
    assert html.count(APPLES_WRONG) >= 13 + 1  # the candidate's 13 wrong samples, and the baseline's one
    md = report.markdown_summary(comp, {"baseline": "b", "candidate": "c"})
    assert "| `ja-apples-remaining` | `answer` | regression | pass 15/16 (95% CI 0.70-1.00) | fail 3/16 (95% CI 0.04-0.46)" in md
    assert "false-alarm rate" in md
