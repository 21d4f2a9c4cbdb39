"""concludes: what the answer concludes, not which words it mentions."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shisa_spec.spec.checks import Output, run

TOM = {"subject": ["Tom"], "predicate": ["ate", "eat", "eaten", "eating"]}
TARO = {"subject": ["太郎"], "predicate": ["食べ", "たべ"]}


def check(text, params):
    return run("concludes", Output(text), params)


@pytest.mark.parametrize(
    "text",
    [
        "Tom ate the cookie.",
        "Most likely, Tom ate it.",
        "The cookie was probably eaten by Tom.",
        "Tom came in, and he ate the cookie.",
        "There is no doubt that Tom ate it.",
        "1. Tom ate it.\n2. The wind blew it away.",  # an unranked list: the first option leads
        "Possible explanations, from most to least likely:\n1. Tom ate the cookie.\n2. A dog took it.",
        "- A dog took it.\n- Tom ate it. This is the most likely explanation.",
    ],
)
def test_english_conclusions_pass(text):
    v = check(text, TOM)
    assert v.passed, v.detail


@pytest.mark.parametrize(
    "text",
    [
        "Tom did not eat it; the dog ate the cookie.",  # the example: mentions both words
        "It is unlikely that Tom ate the cookie. The cat knocked it over.",
        "Tom never ate anything. The dog ate the cookie.",
        "I don't think Tom ate it.",
        "Tom entered the room, and cookies are often eaten by children, so we cannot say.",
        "1. Tom ate it. This is the least likely option.\n2. A bird took it. This is the most likely explanation.",
        "Tom entered the room. The cookie disappeared.",
        "",
    ],
)
def test_english_negations_and_other_conclusions_fail(text):
    v = check(text, TOM)
    assert not v.passed and v.detail and "\n" not in v.detail


@pytest.mark.parametrize(
    "text",
    [
        "太郎がクッキーを食べた可能性が高いです。",
        "たぶん太郎が食べちゃったんじゃない？",
        "太郎が食べたのではないでしょうか。",
        "太郎が食べたに違いありません。",
        "ほかに誰もいないので、太郎が食べたと考えられます。",
        "可能性の高い順に挙げます。\n1. 太郎がクッキーを食べた\n2. ペットが食べた",
        "1. 犬が持っていった: 可能性は低いです。\n2. 太郎が食べた: これが最も可能性が高いです。",
    ],
)
def test_japanese_conclusions_pass(text):
    v = check(text, TARO)
    assert v.passed, v.detail


@pytest.mark.parametrize(
    "text",
    [
        "太郎はクッキーを食べていません。",
        "太郎が食べた可能性は低いです。",
        "太郎は食べなかったと思います。",
        "太郎が食べたのではなく、猫が持っていきました。",
        "太郎が食べたんじゃないよ。",
        "1. 太郎が盗んで食べた: これは最も可能性が低いです。\n2. 電気のスイッチを入れた: これは可能性が最も高いです。",
        "太郎はクッキーを盗んだ。",
    ],
)
def test_japanese_negations_fail(text):
    v = check(text, TARO)
    assert not v.passed, v.detail


def test_detail_names_the_deciding_item():
    v = check("1. Tom ate it. Least likely.\n2. A bird took it (most likely).", TOM)
    assert not v.passed and "item 2" in v.detail and "most likely" in v.detail


@given(st.text(max_size=300))
def test_never_raises(text):
    assert isinstance(check(text, TARO).passed, bool)
