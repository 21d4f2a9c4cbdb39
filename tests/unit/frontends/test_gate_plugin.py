"""The upgrade gate in a real pytest run (pytester): --baseline fails on regressions and names them; --report writes."""

from pathlib import Path

import pytest

from shisa_spec.spec.cases import DEFAULT_CASES, FIXTURES

ROOT = FIXTURES.parent
SPEC_TEST = ROOT / "tests" / "spec" / "test_spec.py"
DOCUMENT = FIXTURES / "transcripts" / "document.jsonl"
GATE = FIXTURES / "transcripts" / "gate"


@pytest.fixture
def spec_dir(pytester: pytest.Pytester) -> pytest.Pytester:
    pytester.makefile(".ini", pytest="[pytest]\nmarkers =\n    gpu: spec\nxfail_strict = true\n")
    pytester.makepyfile(test_spec=SPEC_TEST.read_text(encoding="utf-8"))
    return pytester


def run(p: pytest.Pytester, *args: str) -> pytest.RunResult:
    return p.runpytest("-p", "shisa_spec.frontends.pytest_plugin", "-p", "no:cacheprovider", "-p", "no:randomly", "-m", "gpu",
                       "--cases", str(DEFAULT_CASES), *args)


@pytest.fixture
def fixed_bat_and_ball(edited_document) -> Path:
    """The document's transcript with ja-bat-and-ball answered correctly (a marked check passes)."""
    return edited_document({"ja-bat-and-ball": ("最終回答：ボールは50円です。", "eos")}, name="fixed.jsonl")


def test_regression_fails_the_run_and_names_case_check_and_outputs(spec_dir):
    result = run(spec_dir, "--replay", str(GATE / "candidate.jsonl"), "--baseline", str(GATE / "baseline.jsonl"),
                 "--report", "out.html")
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    out = result.stdout.str()
    assert "REGRESSION ja-apples-remaining.answer [final_number]" in out
    assert "リンゴを5個取り除いた後、残っているリンゴの数は3個です。" in out  # baseline output
    assert "リンゴを2個取り除いた後、残っているリンゴの数は2個です。" in out  # candidate output
    result.stdout.fnmatch_lines([
        "*shisa-spec changes against*baseline.jsonl*",
        "1 regression(s), 2 improvement(s), 3 changed output(s), 1 new, 1 missing case(s)",
        "  regression   ja-apples-remaining.answer  pass -> fail",
        "  improvement  ja-bat-and-ball.eos * known failure -> XPASS",
        "  improvement  ja-bat-and-ball.answer * known failure -> XPASS",
        "  changed      en-first-president * text",
        "  changed      ja-bat-and-ball * text, finish length -> eos",
        "  new          ja-json-format*",
        "  missing      en-cookie-mystery*",
        "shisa-spec report: out.html (Markdown summary: out.md)",
        "*shisa-spec: 1 regression against the baseline*",
    ])
    html = (spec_dir.path / "out.html").read_text(encoding="utf-8")
    assert "ja-apples-remaining" in html and "&lt;script&gt;" in html
    assert "❌ 1 regression" in (spec_dir.path / "out.md").read_text(encoding="utf-8")


def test_the_gate_alone_fails_a_run_whose_tests_pass(spec_dir, fixed_bat_and_ball):
    # The baseline answered ja-bat-and-ball; the candidate (the document) fails it again. That check is
    # marked as a known failure, so every test passes or xfails: only the gate catches the regression.
    result = run(spec_dir, "--replay", str(DOCUMENT), "--baseline", str(fixed_bat_and_ball))
    outcomes = result.parseoutcomes()
    assert "failed" not in outcomes and "errors" not in outcomes and outcomes["xfailed"] == 17 and outcomes["skipped"] == 3  # judge checks: no judge
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    out = result.stdout.str()
    assert "REGRESSION ja-bat-and-ball.answer [final_number]" in out
    assert "REGRESSION ja-bat-and-ball.eos [eos]" in out
    assert "最終回答：ボールは50円です。" in out and "最終回答：ボールは 5," in out


def test_no_regression_passes(spec_dir):
    result = run(spec_dir, "--replay", str(DOCUMENT), "--baseline", str(DOCUMENT))
    assert result.ret == pytest.ExitCode.OK
    result.stdout.fnmatch_lines(["0 regression(s), 0 improvement(s), 0 changed output(s), 0 new, 0 missing case(s)"])
    assert "REGRESSION" not in result.stdout.str()


def test_selection_limits_the_comparison(spec_dir):
    # -k deselects ja-apples-remaining: its regression is not this run's business, nor are unselected cases missing.
    result = run(spec_dir, "--replay", str(GATE / "candidate.jsonl"), "--baseline", str(GATE / "baseline.jsonl"),
                 "-k", "en-first-president or ja-translate-fruits")
    assert result.ret == pytest.ExitCode.OK
    result.stdout.fnmatch_lines(["0 regression(s), 0 improvement(s), 1 changed output(s), 0 new, 0 missing case(s)"])


def test_report_without_baseline(spec_dir):
    result = run(spec_dir, "--replay", str(DOCUMENT), "--report", "sub/report.html")
    assert result.ret == pytest.ExitCode.OK
    html = (spec_dir.path / "sub" / "report.html").read_text(encoding="utf-8")
    md = (spec_dir.path / "sub" / "report.md").read_text(encoding="utf-8")
    assert "No baseline given" in html and "Capability matrix" in html
    assert "48 pass, 0 fail, 17 known failures, 0 XPASS" in md
    assert "shisa-spec changes" not in result.stdout.str()


def test_under_xdist_only_the_controller_gates(spec_dir):
    pytest.importorskip("xdist")
    result = run(spec_dir, "-n", "2", "--replay", str(GATE / "candidate.jsonl"), "--baseline", str(GATE / "baseline.jsonl"),
                 "--report", "x.html", "-k", "ja-apples-remaining or ja-bat-and-ball")
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    out = result.stdout.str()
    assert out.count("REGRESSION ja-apples-remaining.answer") == 1
    result.stdout.fnmatch_lines(["1 regression(s), 2 improvement(s), 2 changed output(s), 0 new, 0 missing case(s)"])
    assert (spec_dir.path / "x.html").exists()


def test_unreadable_baseline_is_a_usage_error(spec_dir, tmp_path):
    result = run(spec_dir, "--replay", str(DOCUMENT), "--baseline", str(tmp_path / "nope.jsonl"))
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert "--baseline:" in result.stderr.str() and "no such transcript" in result.stderr.str()


APPLES_WRONG = "残りのりんごは2個です。"
FIB_WRONG = "The first ten numbers are 1, 2, 3, 4, 5, 6, 7, 8, 9, 10."


def test_multi_sample_replay_shows_k_of_n_and_the_interval(spec_dir, multi_transcripts):
    cand = multi_transcripts({"ja-apples-remaining": (3, APPLES_WRONG), "en-fibonacci-first-10": (7, FIB_WRONG)}, "c.jsonl")
    result = run(spec_dir, "--replay", str(cand), "-rA")
    out = result.stdout.str()
    assert "ja-apples-remaining.answer [final_number]: 3/16 passed (95% CI 0.04-0.46), requires 0.5: clearly below the requirement" in out
    assert "first failing sample 3:" in out and "--- output of sample 3 (finish_reason=eos) ---" in out
    assert any(l.startswith("PASSED ") and l.endswith("test_spec[en-fibonacci-first-10.sequence]") for l in result.stdout.lines)  # 7/16: below, not clearly
    assert "16 cases, 256 samples (16 per case) replayed from" in out
    result.assert_outcomes(failed=1, passed=47, xfailed=17, skipped=3)


def test_multi_sample_gate_calls_only_the_significant_drop(spec_dir, multi_transcripts):
    base = multi_transcripts({"ja-apples-remaining": (15, APPLES_WRONG), "en-fibonacci-first-10": (8, FIB_WRONG)}, "b.jsonl")
    cand = multi_transcripts({"ja-apples-remaining": (9, APPLES_WRONG), "en-fibonacci-first-10": (7, FIB_WRONG)}, "c.jsonl")
    result = run(spec_dir, "--replay", str(cand), "--baseline", str(base), "--junitxml", "j.xml")
    out = result.stdout.str()
    # 9/16 still meets the requirement (every test passes), but the drop from 15/16 is not significant after Holm:
    assert result.ret == pytest.ExitCode.OK, out[-2000:]
    cand = multi_transcripts({"ja-apples-remaining": (3, APPLES_WRONG), "en-fibonacci-first-10": (7, FIB_WRONG)}, "c.jsonl")
    result = run(spec_dir, "--replay", str(cand), "--baseline", str(base), "--junitxml", "j.xml")
    out = result.stdout.str()
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    assert "baseline 15/16 (95% CI 0.70-1.00) -> candidate 3/16 (95% CI 0.04-0.46); p = " in out
    assert "--- baseline sample 0 of 16" in out and "--- candidate sample 3 of 16 (finish_reason=eos) ---" in out
    result.stdout.fnmatch_lines(["  regression   ja-apples-remaining.answer  pass 15/16 * -> fail 3/16 *; p = * (Holm-adjusted *)",
                                 "suite: mean change in pass rate -0.0* clustered by case*",
                                 "gate: one-sided Fisher per check, Holm over 65 checks, alpha 0.05; simulated*false-alarm rate*"])
    assert "en-fibonacci-first-10.sequence" not in out.split("shisa-spec changes against")[1]
    import json
    import xml.etree.ElementTree as ET

    props = {p.get("name"): p.get("value") for p in ET.parse(spec_dir.path / "j.xml").iter("property")}
    gate = json.loads(props["shisa_gate"])
    apples = next(c for c in gate["checks"] if (c["case"], c["check"]) == ("ja-apples-remaining", "answer"))
    assert apples["status"] == "regression" and apples["p_holm"] <= 0.05 and apples["candidate"].startswith("3/16")
    test_props = [json.loads(p.get("value")) for p in ET.parse(spec_dir.path / "j.xml").iter("property") if p.get("name") == "shisa"]
    one = next(p for p in test_props if (p["case"], p["check"]) == ("ja-apples-remaining", "answer"))
    assert (one["k"], one["n"], one["outcome"]) == (3, 16, "fail") and one["ci_high"] < 0.5
