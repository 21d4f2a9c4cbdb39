"""Calibration rewrites known-failure marks from a run's verdicts, minimally, and never writes an invalid case file."""

import difflib
import json
import shutil
from pathlib import Path

import pytest
import yaml

from shisa_spec.gate import calibrate
from shisa_spec.frontends import cli
from shisa_spec.spec.cases import DEFAULT_CASES, FIXTURES, CaseFileError, dump_suite_data, load_suite
from shisa_spec.generation.transcript import read

GATE = FIXTURES / "transcripts" / "gate"
DOCUMENT = FIXTURES / "transcripts" / "document.jsonl"


@pytest.fixture
def case_file(tmp_path: Path) -> Path:
    """A copy of the shipped case file, with the schemas folder beside it as the loader expects."""
    (tmp_path / "cases").mkdir()
    (tmp_path / "schemas").symlink_to(FIXTURES / "schemas")
    path = tmp_path / "cases" / DEFAULT_CASES.name
    shutil.copy(DEFAULT_CASES, path)
    return path


def marks(path: Path) -> dict[tuple[str, str], dict]:
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    return {(c["id"], m["check"]): m for c in data["cases"] for m in c.get("known_failures") or []}


def edit(path: Path, case_id: str, mark: dict) -> None:
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    case = next(c for c in data["cases"] if c["id"] == case_id)
    case.setdefault("known_failures", []).append(mark)
    path.write_text(dump_suite_data(data), encoding="utf-8")


def test_adds_and_removes_the_right_marks(case_file):
    before = marks(case_file)
    suite = load_suite(case_file)
    cal = calibrate.calibrate(suite, read(GATE / "candidate.jsonl"))
    assert [m.id for m in cal.added] == ["ja-apples-remaining.answer"]
    assert sorted(m.id for m in cal.removed) == ["ja-bat-and-ball.answer", "ja-bat-and-ball.eos"]
    assert cal.review == [] and cal.not_in_transcript == ["en-cookie-mystery"]
    calibrate.write(suite, cal)
    after = marks(case_file)
    assert set(after) == (set(before) | {("ja-apples-remaining", "answer")}) - {("ja-bat-and-ball", "answer"), ("ja-bat-and-ball", "eos")}
    new = after[("ja-apples-remaining", "answer")]
    assert new["reason"] == "TODO: review. This model answered 「リンゴを2個取り除いた後、残っているリンゴの数は2個です。」"
    assert "when" not in new
    for key in set(after) - {("ja-apples-remaining", "answer")}:
        assert after[key] == before[key]  # existing reasons kept
    reloaded = load_suite(case_file)
    assert reloaded.case("ja-apples-remaining").known_failure("answer", {}) is not None
    assert not reloaded.case("ja-bat-and-ball").known_failures


def test_the_diff_is_minimal(case_file):
    old = case_file.read_text(encoding="utf-8").splitlines()
    suite = load_suite(case_file)
    calibrate.write(suite, calibrate.calibrate(suite, read(GATE / "candidate.jsonl")))
    new = case_file.read_text(encoding="utf-8").splitlines()
    changed = [l for l in difflib.unified_diff(old, new, lineterm="", n=0) if l[:1] in "+-" and not l.startswith(("+++", "---"))]
    assert sorted(changed) == sorted([
        "+  known_failures:", "+  - check: answer",
        "+    reason: 'TODO: review. This model answered 「リンゴを2個取り除いた後、残っているリンゴの数は2個です。」'",
        "-  known_failures:", "-  - check: answer",
        "-    reason: The document's model wrote 「y + x = 11000」 and was cut off at 「最終回答：ボールは 5,」; the ball costs 50円.",
        "-  - check: eos",
        "-    reason: The document's output hit the 256-token limit mid-sentence (「最終回答：ボールは 5,」).",
    ])


def test_document_run_changes_nothing(case_file):
    suite = load_suite(case_file)
    cal = calibrate.calibrate(suite, read(DOCUMENT))
    assert not cal.changed and len(cal.kept) == 17
    assert dump_suite_data(cal.data) == case_file.read_text(encoding="utf-8")


def test_quantize_scope(case_file, tmp_path):
    edit(case_file, "ja-apples-remaining", {"check": "eos", "reason": "8-bit runs ramble past the budget", "when": {"quantize": "8bit"}})
    edit(case_file, "ja-translate-fruits", {"check": "counts", "reason": "4-bit runs drop the numbers", "when": {"quantize": "4bit"}})
    suite = load_suite(case_file)
    cal = calibrate.calibrate(suite, read(GATE / "candidate.jsonl"), {"quantize": "4bit"})
    assert [m.id for m in cal.added] == ["ja-apples-remaining.answer"]
    assert [m.id for m in cal.removed] == ["ja-translate-fruits.counts"]  # scoped to 4bit and passing
    assert sorted(m.id for m in cal.review) == ["ja-bat-and-ball.answer", "ja-bat-and-ball.eos"]  # unconditional: kept
    calibrate.write(suite, cal)
    after = marks(case_file)
    assert after[("ja-apples-remaining", "answer")]["when"] == {"quantize": "4bit"}
    assert after[("ja-apples-remaining", "eos")]["when"] == {"quantize": "8bit"}  # does not match: left alone
    assert ("ja-bat-and-ball", "answer") in after and ("ja-translate-fruits", "counts") not in after
    load_suite(case_file)


def test_never_writes_an_invalid_case_file(case_file):
    suite = load_suite(case_file)
    original = case_file.read_text(encoding="utf-8")
    cal = calibrate.calibrate(suite, read(GATE / "candidate.jsonl"))
    cal.data["cases"][0]["known_failures"] = [{"check": "no-such-check", "reason": "a reason long enough"}]
    with pytest.raises(CaseFileError):
        calibrate.write(suite, cal)
    assert case_file.read_text(encoding="utf-8") == original
    assert sorted(p.name for p in case_file.parent.iterdir()) == [case_file.name]  # no temp file left


def test_stub_reason_quotes_the_start():
    assert calibrate.stub_reason("  a\n b  ") == "TODO: review. This model answered 「a b」"
    long = calibrate.stub_reason("x" * 100)
    assert long.endswith("x" * 60 + "…」")
    assert "empty output" in calibrate.stub_reason("")


def test_cli_calibrate(case_file, tmp_path, capsys):
    run = tmp_path / "run.jsonl"
    run.write_text((GATE / "candidate.jsonl").read_text(encoding="utf-8"), encoding="utf-8")
    before = case_file.read_text(encoding="utf-8")
    assert cli.main(["calibrate", "--transcript", str(run), "--cases", str(case_file), "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "+ ja-apples-remaining.answer" in out and "- ja-bat-and-ball.eos" in out and "1 mark(s) added, 2 removed" in out
    assert "+  known_failures:" in out  # the diff
    assert case_file.read_text(encoding="utf-8") == before
    assert cli.main(["calibrate", "--transcript", str(run), "--cases", str(case_file), "--when-quantize", "4bit"]) == 0
    out = capsys.readouterr().out
    assert "when quantize=4bit" in out and f"wrote {case_file}" in out
    assert json.dumps(marks(case_file)[("ja-apples-remaining", "answer")]["when"]) == '{"quantize": "4bit"}'


APPLES_WRONG = "残りのりんごは2個です。"


def test_multi_sample_calibration_writes_measured_rates(case_file, multi_transcripts, capsys):
    """From 16 samples: a clearly failing check gets a mark with its rate; kept marks get the rate measured;
    a check below the requirement but not clearly (7/16) gets no mark; a mark clearly met (16/16 -> XPASS) goes."""
    run = multi_transcripts({"ja-apples-remaining": (2, APPLES_WRONG), "en-fibonacci-first-10": (7, "1, 2, 3")}, "run.jsonl")
    fixed = multi_transcripts({"ja-apples-remaining": (2, APPLES_WRONG), "en-fibonacci-first-10": (7, "1, 2, 3"),
                               "ja-family-children": (0, "夏菜子には2人の子供がいます。太郎と二郎です。")}, "fixed.jsonl")
    suite = load_suite(case_file)
    cal = calibrate.calibrate(suite, read(run))
    assert [m.id for m in cal.added] == ["ja-apples-remaining.answer"] and not cal.removed
    assert len(cal.kept) == 17 and len(cal.rated) == 17  # every document mark now carries 0/16
    calibrate.write(suite, cal)
    after = marks(case_file)
    assert after[("ja-apples-remaining", "answer")]["rate"] == "2/16"
    assert after[("ja-apples-remaining", "answer")]["reason"] == f"TODO: review. This model answered 「{APPLES_WRONG}」"
    assert after[("ja-bat-and-ball", "answer")]["rate"] == "0/16"
    assert ("en-fibonacci-first-10", "sequence") not in after
    reloaded = load_suite(case_file)
    assert reloaded.case("ja-apples-remaining").known_failure("answer", {}).rate == "2/16"
    again = calibrate.calibrate(reloaded, read(run))
    assert not again.changed  # a calibrated run reproduces itself
    cal = calibrate.calibrate(reloaded, read(fixed))
    assert sorted(m.id for m in cal.removed) == sorted(f"ja-family-children.{k}" for c, k in after if c == "ja-family-children")
    assert cli.main(["calibrate", "--transcript", str(run), "--cases", str(case_file)]) == 0
    assert "no change" in capsys.readouterr().out


def test_a_mark_shows_its_measured_rate_in_the_xfail_reason(run_spec, case_file):
    edit(case_file, "ja-apples-remaining", {"check": "answer", "reason": "answers 2 most of the time", "rate": "2/16"})
    result = run_spec("--replay", str(DOCUMENT), "--cases", str(case_file), "-k", "ja-apples-remaining and answer")
    # The document answered correctly: one sample that passes a marked check is a strict XPASS.
    result.assert_outcomes(failed=1)
    assert "[XPASS(strict)] known failure (measured 2/16): answers 2 most of the time" in result.stdout.str()
