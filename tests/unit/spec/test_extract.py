"""extract: numbers with units and context, the final answer, JSON anywhere in text, Python code."""

import json

from hypothesis import given, settings
from hypothesis import strategies as st

from shisa_spec.spec.extract import final_answer, find_json, json_scalars, json_strings, numbers, one_arg_functions, parse_python, python_blocks


def vals(text):
    return [n.value for n in numbers(text)]


def test_numbers_in_order_with_units_and_prefixes():
    ns = numbers("リンゴが３個、オレンジが二つ、合計1,100円で$0.50と50 cents、大さじ1と1/2カップ。")
    assert [(n.value, n.unit, n.prefix) for n in ns] == [
        (3, "個", None), (2, "つ", None), (1100, "円", None), (0.5, None, "$"), (50, "cents", None),
        (1, None, "大さじ"), (0.5, "カップ", None),
    ]  # fmt: skip
    assert ns[1].kanji and not ns[0].kanji


def test_kanji_inside_words_are_not_numbers():
    assert vals("統一された一般的な二郎の一生") == []
    assert vals("子供二人と一日と五十円") == [2, 1, 50]


def test_enumerators_decimals_fractions_negatives():
    ns = numbers("1. 次郎は2歳です。\n2) x = -3\n3.5 と 10-20、5/2、3分の1、x2")
    assert [(n.value, n.enumerator) for n in ns] == [(1, True), (2, False), (2, True), (-3, False), (3.5, False), (10, False), (20, False), (2.5, False), (1 / 3, False)]


def test_thousands_only_with_groups_of_three():
    assert vals("0, 1, 1, 2 and 1,100 and 1,1000 and 5,") == [0, 1, 1, 2, 1100, 1, 1000, 5]


def test_final_answer_markers():
    assert final_answer("まず計算します。答えは12人です。説明：…").sentence == "答えは12人です。"
    assert final_answer("x = 1\n最終回答：ボールは 5,").marker == "最終回答"
    assert final_answer("We solve it.\nSo, the cost of the ball is 5/2 dollars.").marker.lower() == "so"
    assert final_answer("2x = 1\nx = 0.5").marker == "="
    assert final_answer("1. よって、5個です。").marker == "よって"
    assert final_answer("The answer is 3 apples.").marker.lower() == "the answer is"


def test_final_assignment_beats_earlier_markers_but_checks_do_not():
    a = final_answer("Therefore, 2x = 1.\nx = 0.5")
    assert a.marker == "=" and a.sentence == "x = 0.5"
    a = final_answer("答えは50円です。\n検算: 50 + 1050 = 1100")
    assert a.marker == "答えは"


def test_final_answer_none_without_marker():
    assert final_answer("残っているリンゴの数は3個です。") is None
    assert final_answer("") is None
    assert final_answer("y = 5500\nThat was y.") is None  # '=' only counts in the final sentence


def test_find_json_fenced_prose_and_nested_once():
    text = 'Here:\n```json\n{"a": {"b": [1, 2]}}\n```\nand also [3, 4] in prose.'
    found = find_json(text)
    assert [f.value for f in found] == [{"a": {"b": [1, 2]}}, [3, 4]]
    assert all(f.error is None for f in found)
    assert text[found[0].start : found[0].end] == found[0].raw


def test_find_json_reports_broken_and_truncated_json():
    broken = find_json('{"name": "太郎", "age": 29,}')
    assert len(broken) == 1 and broken[0].value is None and "line 1" in broken[0].error
    truncated = find_json('```json\n{"people": [{"name": "A"}, {"name": "B"')
    assert len(truncated) == 1 and truncated[0].error  # inner fragments are not taken for the document
    assert find_json('{"x": NaN}')[0].error and find_json('{"x": Infinity}')[0].error


def test_find_json_skips_prose_brackets():
    assert find_json("see [note] and {x} here") == []
    assert find_json("") == []


def test_json_strings_and_scalars():
    v = {"name": "太郎", "family": ["二郎", {"mother": "夏菜子"}], "age": 29}
    assert json_strings(v) == ["name", "太郎", "family", "二郎", "mother", "夏菜子", "age"]
    assert json_scalars(v) == ["太郎", "二郎", "夏菜子", 29]


def test_python_blocks():
    tagged = "説明です。\n```python\ndef fib(k):\n    return k\n```\n```\nprint(1)\n```"
    assert python_blocks(tagged) == ["def fib(k):\n    return k\n"]
    assert python_blocks("```\ndef f(x):\n    return x\n```") == ["def f(x):\n    return x\n"]
    bare = "こちらです：\ndef fibonacci_k(k):\n   # コメント\n   return k\n\nこの関数は…"
    assert python_blocks(bare) == ["def fibonacci_k(k):\n   # コメント\n   return k\n"]
    assert python_blocks("コードはありません") == []


def test_parse_python_and_one_arg_functions():
    module, err = parse_python("def a(x): pass\ndef b(x, y): pass\ndef c(x, memo=None): pass\ndef d(*a): pass\nclass E: pass")
    assert err is None and one_arg_functions(module) == ["a", "c", "d"]
    module, err = parse_python("def f(x)\n    return x")
    assert module is None and err.startswith("SyntaxError")


@settings(max_examples=150)
@given(st.text(max_size=300))
def test_extraction_never_raises_on_arbitrary_text(text):
    numbers(text)
    final_answer(text)
    find_json(text)
    for block in python_blocks(text):
        parse_python(block)


_json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4),
    max_leaves=12,
)
_documents = st.one_of(st.lists(_json_values, max_size=4), st.dictionaries(st.text(max_size=6), _json_values, max_size=4))
_prose = st.text(alphabet=st.characters(blacklist_characters="{}[]"), max_size=60) | st.sampled_from(["see [note] ", "{x} ", "答え：", "```json\n"])


@given(_prose, _documents, st.text(max_size=60), st.booleans(), st.booleans())
def test_embedded_json_is_found(before, doc, after, ascii_only, indent):
    raw = json.dumps(doc, ensure_ascii=ascii_only, indent=2 if indent else None)
    found = find_json(before + raw + after)
    assert doc in [f.value for f in found if f.error is None]


def test_an_indented_fence_in_a_list_is_dedented():
    text = "手順:\n\n1. 関数です。\n\n   ```python\n   def fib(k):\n       return k\n   ```\n\n2. 終わり"
    assert python_blocks(text) == ["def fib(k):\n    return k\n"]


def test_a_repl_transcript_is_read_as_code():
    text = "試した例です。\n\n>>> def fib(k):\n...     return k\n...\n>>> fib(10)\n10\n"
    src = python_blocks(text)[0]
    assert "def fib(k):\n    return k" in src and "fib(10)" in src and "\n10\n" not in src
    parse_python(src)


def test_prose_after_a_bare_function_is_left_out():
    text = "def fib(k):\n    return k\nif you call fib(3) you get 3.\n"
    assert python_blocks(text) == ["def fib(k):\n    return k\n"]
