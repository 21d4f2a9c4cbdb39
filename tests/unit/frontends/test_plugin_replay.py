"""The spec agrees with the document: replaying its transcript passes every check except the known failures."""


import pytest

from shisa_spec.spec.cases import load_suite

from shisa_spec.spec.cases import FIXTURES

DOCUMENT = FIXTURES / "transcripts" / "document.jsonl"

SUITE = load_suite()
ALL = [(c.id, k.id) for c in SUITE.cases for k in c.checks]
# model-graded checks: the document has no judge replies, so they are skipped (not judged), marked or not
JUDGED = {(c.id, k.id) for c in SUITE.cases for k in c.checks if k.check == "judge"}
KNOWN = {(c.id, kf.check) for c in SUITE.cases for kf in c.known_failures} - JUDGED
RULED = len(ALL) - len(JUDGED)


def node(case, check):
    return f"test_spec[{case}.{check}]"


def test_collect_lists_every_case(run_spec, spec_pytester):
    result = run_spec("--collect-only", "-q")
    out = result.stdout.str()
    for case in SUITE.cases:
        assert f"test_spec[{case.id}." in out, case.id
    result.assert_outcomes()  # nothing ran
    assert f"{len(ALL)} tests collected" in out


def test_document_replay_matches_known_failures(run_spec, spec_pytester):
    result = run_spec("--replay", str(DOCUMENT))
    result.assert_outcomes(passed=RULED - len(KNOWN), xfailed=len(KNOWN), skipped=len(JUDGED))
    skips = [l for l in result.stdout.lines if l.startswith("SKIPPED ")]
    assert len(skips) == 3 and all("[judge]: no judge reply in the records and no judge asked: pass --judge-model M" in l for l in skips), skips
    for case, check in KNOWN:
        assert any(l.startswith("XFAIL ") and f"test_spec.py::{node(case, check)} " in l for l in result.stdout.lines), (case, check)


def test_runxfail_fails_exactly_the_known_failures(run_spec, spec_pytester):
    result = run_spec("--replay", str(DOCUMENT), "--runxfail")
    result.assert_outcomes(passed=RULED - len(KNOWN), failed=len(KNOWN), skipped=len(JUDGED))
    failed = {line.split("::", 1)[1].split(" ")[0] for line in result.stdout.lines if line.startswith("FAILED ")}
    assert failed == {node(c, k) for c, k in KNOWN}


def test_improvement_is_a_strict_xpass(run_spec, edited_document):
    path = edited_document({"ja-family-children": ("夏菜子には2人の子供がいます。太郎と二郎です。", "eos")})
    result = run_spec("--replay", str(path))
    result.assert_outcomes(passed=RULED - len(KNOWN), xfailed=len(KNOWN) - 3, failed=3, skipped=len(JUDGED))
    assert "[XPASS(strict)]" in result.stdout.str()


def test_case_missing_from_replay_fails_even_where_marked(run_spec, spec_pytester, tmp_path):
    lines = [l for l in DOCUMENT.read_text(encoding="utf-8").splitlines() if '"ja-family-children"' not in l]
    path = tmp_path / "partial.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    result = run_spec("--replay", str(path), "-k", "ja-family-children")
    n = len([1 for c, _ in ALL if c == "ja-family-children"])
    result.assert_outcomes(errors=n)
    assert "case 'ja-family-children' is not in the replayed transcript" in result.stdout.str()


@pytest.mark.parametrize("content, message", [
    ('{"case": "x", "output": "y"}\n', "record has no 'finish_reason'"),
    ("not json\n", "not JSON"),
    ('{"case": "x", "output": "y", "finish_reason": "stop"}\n', "expected 'eos' or 'length'"),
])
def test_malformed_replay_is_one_line(run_spec, spec_pytester, tmp_path, content, message):
    path = tmp_path / "bad.jsonl"
    path.write_text(content, encoding="utf-8")
    result = run_spec("--replay", str(path))
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert any(message in line and "bad.jsonl:1" in line for line in result.stderr.lines)


def test_malformed_case_file_fails_collection_naming_case_and_field(run_spec, spec_pytester, tmp_path):
    (tmp_path / "schemas").mkdir(exist_ok=True)
    text = SUITE.path.read_text(encoding="utf-8").replace("expected: 3\n", "expected: three\n", 1)
    (tmp_path / "cases").mkdir(exist_ok=True)
    bad = tmp_path / "cases" / "bad.yaml"
    bad.write_text(text, encoding="utf-8")
    result = run_spec("--replay", str(DOCUMENT), "--cases", str(bad))
    assert result.ret != 0
    out = result.stdout.str() + result.stderr.str()
    assert "bad.yaml: case 'ja-apples-remaining': field checks[0].params.expected" in out


def test_without_cuda_the_spec_skips_with_one_reason(run_spec, spec_pytester):
    result = run_spec(subprocess=True)
    if "no CUDA device" not in result.stdout.str() and result.ret == 0:
        pytest.skip("this machine has CUDA")
    result.assert_outcomes(skipped=len(ALL))
    assert "no CUDA device: the spec needs a GPU" in result.stdout.str()
