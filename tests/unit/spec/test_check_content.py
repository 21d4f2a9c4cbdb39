"""mentions: every group needs one alternative, after NFKC; ignore strings are removed first."""

from hypothesis import given
from hypothesis import strategies as st

from shisa_spec.spec.checks import Output, run


def check(text, **params):
    return run("mentions", Output(text), params)


def test_all_groups_present_passes():
    v = check("1. Tom ate it.", all_of=[["Tom"], ["ate", "eaten"]])
    assert v.passed and v.evidence["found"] == ["Tom", "ate"]


def test_missing_group_is_named():
    v = check("太郎はクッキーを盗んだ", all_of=[["太郎"], ["食べ", "たべ"]])
    assert not v.passed and "食べ/たべ" in v.detail and "found 太郎" in v.detail


def test_ignore_removes_compounds_before_matching():
    params = {"all_of": [["たこ", "タコ"]], "ignore": ["たこ焼き"]}
    assert not check("たこ焼きの材料：小麦粉", **params).passed
    assert check("たこ焼きの材料：ゆでだこ、たこ 100g", **params).passed


def test_nfkc_and_case():
    assert check("ＷＡＳＨＩＮＧＴＯＮ", all_of=[["Washington"]]).passed
    assert not check("washington", all_of=[["Washington"]], case_sensitive=True).passed
    assert check("ｶﾀｶﾅのバイト", all_of=[["カタカナ"]]).passed


def test_latin_terms_match_whole_words():
    assert not check("The cookie was created.", all_of=[["ate"]]).passed


def test_empty_and_garbage_fail_clearly():
    v = check("", all_of=[["太郎"]])
    assert not v.passed and "empty answer" in v.detail
    assert not check("\x00\ufffd@@@", all_of=[["太郎"]]).passed


@given(st.text(max_size=200))
def test_never_raises(text):
    run("mentions", Output(text), {"all_of": [["a"], ["あ"]], "ignore": ["x"]})
