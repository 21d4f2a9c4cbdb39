"""The case file loader: the shipped file is valid, and malformed files fail with one line naming file, case and field."""

from pathlib import Path

import pytest
import yaml

from shisa_spec.spec.cases import DEFAULT_CASES, CaseFileError, dump_suite_data, load_suite

DOC_IDS = [
    "en-fibonacci-first-10", "en-first-president", "ja-apples-remaining", "ja-bat-and-ball", "en-bat-and-ball",
    "ja-python-fibonacci", "ja-translate-fruits", "ja-friend-bot", "en-cookie-mystery", "ja-cookie-mystery",
    "ja-takoyaki-recipe", "ja-explain-llm", "ja-family-children", "ja-json-relationships", "ja-json-utf8", "ja-json-format",
]


def raw():
    return yaml.safe_load(DEFAULT_CASES.read_text(encoding="utf-8"))


def write(tmp_path: Path, data) -> Path:
    (tmp_path / "cases").mkdir(exist_ok=True)
    schemas = tmp_path / "schemas"
    if not schemas.exists():
        schemas.symlink_to(DEFAULT_CASES.parent.parent / "schemas")
    p = tmp_path / "cases" / "c.yaml"
    p.write_text(data if isinstance(data, str) else dump_suite_data(data), encoding="utf-8")
    return p


def error_of(tmp_path, data) -> str:
    with pytest.raises(CaseFileError) as e:
        load_suite(write(tmp_path, data))
    msg = str(e.value)
    assert "\n" not in msg
    return msg


def test_shipped_case_file_is_valid_and_has_the_document_ids():
    suite = load_suite()
    assert [c.id for c in suite.cases] == DOC_IDS
    for case in suite.cases:
        ids = [c.id for c in case.checks]
        assert ids[:2] == ["eos", "no-repetition"], case.id
        assert case.generation.max_new_tokens == 256 and case.generation.temperature == 0.3
        for kf in case.known_failures:
            assert kf.check in ids


def test_prompts_keep_their_exact_whitespace():
    suite = load_suite()
    assert suite.case("ja-friend-bot").prompt.startswith("\nあなたは友達ボットです。")
    assert suite.case("ja-friend-bot").prompt.endswith("アシスタント:\n")
    assert suite.case("ja-translate-fruits").prompt.endswith("in total?")


def test_dump_round_trips_the_shipped_file():
    data = raw()
    assert yaml.safe_load(dump_suite_data(data)) == data


def test_schema_files_are_resolved_for_checks():
    case = load_suite().case("ja-json-format")
    params = {c.id: c.params for c in case.checks}["json"]
    assert isinstance(params["schema"], dict) and params["schema"]["type"] == "object"


def test_missing_file(tmp_path):
    with pytest.raises(CaseFileError, match="no such case file"):
        load_suite(tmp_path / "nope.yaml")


def test_yaml_syntax_error_names_line(tmp_path):
    msg = error_of(tmp_path, "suite: x\ncases:\n  - id: [unclosed\n")
    assert "c.yaml" in msg and "YAML syntax error at line" in msg


def _set(path, value):
    def mutate(data):
        *parents, last = path
        target = data
        for key in parents:
            target = target[key]
        if value is DELETE:
            del target[last]
        else:
            target[last] = value(data) if callable(value) else value
    return mutate


DELETE = object()


@pytest.mark.parametrize("mutate, expected", [
    (_set(["cases", 3, "checks", 0, "params", "expected"], "fifty"), ["case 'ja-bat-and-ball'", "checks[0].params.expected"]),
    (_set(["cases", 0, "prompt"], DELETE), ["case 'en-fibonacci-first-10'", "'prompt' is a required property"]),
    (_set(["cases", 1, "promt"], "typo"), ["case 'en-first-president'", "promt"]),
    (_set(["cases", 2, "checks", 0, "check"], "final_nubmer"), ["case 'ja-apples-remaining'", "checks[0].check", "final_number"]),
    (_set(["cases", 4, "known_failures", 0, "check"], "nonexistent"), ["case 'en-bat-and-ball'", "known_failures[0].check"]),
    (_set(["cases", 1, "id"], lambda d: d["cases"][0]["id"]), ["duplicate case id"]),
    (_set(["cases", 0, "id"], "Bad Id"), ["case 'Bad Id'", "field id"]),
    (_set(["cases", 15, "checks", 0, "params", "schema"], "missing.schema.json"), ["case 'ja-json-format'", "no schema file"]),
    (_set(["cases", 0, "generation"], {"top_p": 1.5}), ["case 'en-fibonacci-first-10'", "generation.top_p"]),
], ids=["wrong-type", "missing-field", "unknown-field", "unknown-check", "bad-known-failure", "duplicate-id",
        "bad-id", "missing-schema-file", "out-of-range"])
def test_malformed_case_file_is_one_line_naming_file_case_and_field(tmp_path, mutate, expected):
    data = raw()
    mutate(data)
    msg = error_of(tmp_path, data)
    assert "c.yaml" in msg
    for part in expected:
        assert part in msg


def test_not_utf8(tmp_path):
    p = write(tmp_path, "suite: x\n")
    p.write_bytes("suite: 日本".encode("shift_jis"))
    with pytest.raises(CaseFileError, match="not UTF-8"):
        load_suite(p)


def test_known_failure_when_applies_only_to_matching_runs(tmp_path):
    data = raw()
    data["cases"][0]["known_failures"] = [{"check": "sequence", "reason": "only the 4-bit model drops a number", "when": {"quantize": "4bit"}}]
    case = load_suite(write(tmp_path, data)).case("en-fibonacci-first-10")
    assert case.known_failure("sequence", {"quantize": "4bit"}) is not None
    assert case.known_failure("sequence", {"quantize": "none"}) is None


def test_min_pass_rate_per_check_else_the_file_else_the_default(tmp_path):
    from shisa_spec.spec.cases import DEFAULT_MIN_PASS_RATE

    assert {k.min_pass_rate for c in load_suite().cases for k in c.checks} == {DEFAULT_MIN_PASS_RATE}
    data = raw()
    data["min_pass_rate"] = 0.7
    data["cases"][0]["checks"][0]["min_pass_rate"] = 0.9
    suite = load_suite(write(tmp_path, data))
    first = suite.cases[0]
    assert first.checks[-1].min_pass_rate == 0.9 and first.checks[0].min_pass_rate == 0.7  # eos (a default check): the file's
    assert suite.cases[1].checks[-1].min_pass_rate == 0.7


@pytest.mark.parametrize("mutate, expected", [
    (lambda d: d.update(min_pass_rate=1.5), "file: field min_pass_rate: 1.5 is greater than the maximum of 1"),
    (lambda d: d["cases"][0]["checks"][0].update(min_pass_rate=-0.1), "case 'en-fibonacci-first-10': field checks[0].min_pass_rate"),
    (lambda d: d["cases"][3]["known_failures"][0].update(rate="2 of 16"), "field known_failures[0].rate: '2 of 16' does not match"),
    (lambda d: d["cases"][3]["known_failures"][0].update(rate="17/16"), "field known_failures[0].rate: '17/16': more passes than samples"),
])
def test_bad_rates_are_one_line(tmp_path, mutate, expected):
    data = raw()
    mutate(data)
    assert expected in error_of(tmp_path, data)
