"""no_repetition: repeated line shapes and back-to-back loops fail; ordinary lists pass."""

import json

from hypothesis import given
from hypothesis import strategies as st

from shisa_spec.spec.checks import Output, run

FAMILY = "答えは12人です。\n\n説明：\n" + "\n".join(f"{i}. 次郎は生後{20 - i}日です。" for i in range(1, 8))


def check(text, **params):
    return run("no_repetition", Output(text), params)


def test_numbered_runaway_lines_fail():
    v = check(FAMILY)
    assert not v.passed and "次郎は生後#日です" in v.detail and v.evidence["count"] == 7


def test_distinct_list_lines_pass():
    text = "材料:\n- 小麦粉: 100g\n- 卵: 2個\n- 水: 300ml\n- 塩: 少々\n- たこ: 100g\n" + "\n".join(f"{i}. 手順{i}です" for i in range(1, 4))
    assert check(text).passed


def test_threshold_is_max_repeats():
    four = "\n".join(["同じ行です。"] * 4)
    assert check(four).passed
    assert not check(four + "\n同じ行です。").passed
    assert not check(four, max_repeats=4).passed


def test_short_lines_are_ignored():
    assert check("\n".join(["---", "```", "---", "```", "---", "---", "---"])).passed
    assert not check("\n".join(["---"] * 5), min_line_chars=3).passed


def test_loop_inside_one_line_fails():
    v = check("はい。" + "これは同じ文章の繰り返しで、まだまだ続きます、" * 5)
    assert not v.passed and "in a row" in v.detail
    assert check("はい。" + "これは同じ文章の繰り返しで、まだまだ続きます、" * 5, loop_min_chars=0).passed
    assert check("はい。" + "これは同じ文章の繰り返しで、まだまだ続きます、" * 4).passed


def test_json_records_do_not_count_as_repeated_lines():
    people = [{"name": n, "age": 20 + i} for i, n in enumerate("ABCDEF")]
    assert check(json.dumps(people, indent=2)).passed


def test_malformed_input_does_not_raise():
    assert check("").passed
    assert check("\x00\x01{[[\n\n\n").passed


@given(st.text(max_size=400))
def test_never_raises(text):
    v = check(text)
    assert isinstance(v.passed, bool) and v.detail
