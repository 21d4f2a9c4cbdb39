"""JSON checks: json_valid (schema, multiple, UTF-8), json_mentions, json_values."""

import json
from pathlib import Path

import jsonschema
import pytest
from hypothesis import given
from hypothesis import strategies as st

from shisa_spec.spec.checks import Output, run

SCHEMAS = Path(__file__).resolve().parents[3] / "fixtures" / "schemas"
ANY = json.loads((SCHEMAS / "any-json-document.schema.json").read_text(encoding="utf-8"))
PERSON = json.loads((SCHEMAS / "person-format.schema.json").read_text(encoding="utf-8"))
EVERYONE = [["太郎", "Taro"], ["二郎", "Jiro"], ["夏菜子", "Kanako"]]


def valid(text, schema=ANY, **params):
    return run("json_valid", Output(text), {"schema": schema, **params})


@pytest.mark.parametrize("schema", [ANY, PERSON])
def test_schemas_are_draft_2020_12(schema):
    jsonschema.Draft202012Validator.check_schema(schema)
    assert schema["$schema"].endswith("2020-12/schema")


def test_json_valid_fenced_and_prose():
    assert valid('以下です。\n```json\n{"a": 1}\n```').passed
    assert valid('答え: [{"name": "太郎"}] です').passed


def test_single_document_is_the_largest():
    text = '例: {"x": 1}\n本番:\n{"name": "太郎", "age": 29, "family": ["二郎"]}'
    assert valid(text, PERSON).passed
    assert not valid('{"name": "太郎", "age": 29, "family": []}\n{"a": [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15]}', PERSON).passed


def test_json_valid_schema_errors_name_the_path():
    v = valid('{"name": "太郎", "age": "29歳", "family": []}', PERSON)
    assert not v.passed and "$.age" in v.detail
    v = valid('{"name": "太郎", "family": ["二郎", 3], "age": 29}', PERSON)
    assert not v.passed and "$.family[1]" in v.detail
    assert not valid("{}").passed and not valid("[]").passed


def test_json_valid_by_file_name():
    assert valid('{"name": "太郎", "age": null, "family": ["二郎"]}', "person-format.schema.json").passed
    assert not valid('{"a": 1}', "no-such.schema.json").passed


def test_multiple_documents():
    one = '{"name": "太郎", "age": 29, "family": ["二郎"]}'
    two = '{"name": "二郎", "age": 24, "family": ["太郎", "夏菜子"]}'
    for text in (one, f"{one}\n{two}", f"```json\n[{one}, {two}]\n```", f"```json\n{one}\n```\n```json\n{two}\n```"):
        v = valid(text, PERSON, multiple=True)
        assert v.passed, (text, v.detail)
    v = valid(f'{one}\n{{"name": "夏菜子", "family": []}}', PERSON, multiple=True)
    assert not v.passed and "document 2 of 2" in v.detail and "'age' is a required property" in v.detail
    assert not valid(f"{one}\n{{\"name\": \"二郎\", }}", PERSON, multiple=True).passed
    assert not valid("[]", PERSON, multiple=True).passed


def test_forbid_unicode_escapes():
    escaped = json.dumps({"name": "太郎"})
    assert "\\u592a" in escaped
    assert valid(escaped).passed
    v = valid(escaped, forbid_unicode_escapes=True)
    assert not v.passed and "UTF-8" in v.detail
    assert valid(json.dumps({"name": "太郎"}, ensure_ascii=False), forbid_unicode_escapes=True).passed
    assert valid('{"a": "\\u0041 and \\\\u592a"}', forbid_unicode_escapes=True).passed  # ASCII escape, escaped backslash


@pytest.mark.parametrize(
    "text,why",
    [
        ("", "no JSON"),
        ("JSONはありません", "no JSON"),
        ('{"name": "太郎", "age": 29,}', "does not parse"),
        ('```json\n{"name": "太郎", "family": ["二郎"', "does not parse"),
        ("{'name': '太郎'}", "does not parse"),
        ('{"age": NaN}', "does not parse"),
    ],
)
def test_json_valid_malformed_fails_clearly(text, why):
    v = valid(text)
    assert not v.passed and why in v.detail


def test_json_mentions_keys_and_values_any_key_names():
    text = '{"characters": {"Taro": {"age": 29}, "family": ["二郎さん", {"mother": "夏菜子"}]}}'
    assert run("json_mentions", Output(text), {"all_of": EVERYONE}).passed
    v = run("json_mentions", Output('{"name": "太郎", "family": ["次郎"]}'), {"all_of": EVERYONE})
    assert not v.passed and "二郎/Jiro" in v.detail and "夏菜子/Kanako" in v.detail


def test_json_mentions_only_reads_json():
    text = '太郎と二郎と夏菜子です。\n{"name": "太郎"}'
    assert not run("json_mentions", Output(text), {"all_of": EVERYONE}).passed
    for bad in ("", "太郎 二郎 夏菜子", '{"name": "太郎", "x": "二郎", "y": "夏菜子"'):
        v = run("json_mentions", Output(bad), {"all_of": EVERYONE})
        assert not v.passed and "no JSON in the answer" in v.detail


def test_strictness_belongs_to_json_valid_content_checks_read_leniently():
    broken = "```json\n{'太郎': {'年齢': 29}, '二郎': {'年齢': 24}, '夏菜子': {'関係': '母親'},}\n```"
    assert not run("json_valid", Output(broken), {"schema": {"type": "object"}}).passed
    assert run("json_mentions", Output(broken), {"all_of": EVERYONE}).passed
    assert run("json_values", Output(broken), {"expected": [29, 24]}).passed


def test_named_by_needs_an_object_per_person():
    one = '{"name": "太郎", "age": 29, "family": ["二郎", "夏菜子"]}'
    assert run("json_mentions", Output(one), {"all_of": EVERYONE}).passed  # named somewhere
    v = run("json_mentions", Output(one), {"all_of": EVERYONE, "named_by": ["name", "名前"]})
    assert not v.passed and "no object whose name/名前 is" in v.detail and "二郎" in v.detail
    three = '[{"名前": "太郎"}, {"name": "Jiro"}, {"name": "夏菜子", "family": []}]'
    assert run("json_mentions", Output(three), {"all_of": EVERYONE, "named_by": ["name", "名前"]}).passed


def test_json_values():
    p = {"expected": [29, 24]}
    assert run("json_values", Output('[{"age": 29}, {"age": "24歳"}]'), p).passed
    assert run("json_values", Output('{"a": {"b": ["29", 24.0]}}'), p).passed
    v = run("json_values", Output('{"age": 24, "note": "太郎は29歳"}'), p)  # a number inside prose is not a value
    assert not v.passed and "29" in v.detail
    assert not run("json_values", Output('{"age": true, "x": "二郎"}'), {"expected": [1, 2]}).passed
    assert not run("json_values", Output("ages 29 and 24"), p).passed
    assert not run("json_values", Output('{"age": 29, '), p).passed


@given(st.text(max_size=300))
def test_json_checks_never_raise(text):
    o = Output(text)
    run("json_valid", o, {"schema": PERSON, "multiple": True, "forbid_unicode_escapes": True})
    run("json_valid", o, {"schema": ANY})
    run("json_mentions", o, {"all_of": EVERYONE})
    run("json_values", o, {"expected": [29]})
