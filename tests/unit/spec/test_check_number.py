"""Number checks: final_number, number_sequence, numbers_present, quantities."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shisa_spec.spec.checks import Output, run

USD = {"units": ["$", "dollar", "dollars", "cents", "cent", "¢"], "unit_scale": {"cents": 0.01, "cent": 0.01, "¢": 0.01}}


def final(text, expected, **params):
    return run("final_number", Output(text), {"expected": expected, **params})


@pytest.mark.parametrize(
    "text,expected,params",
    [
        ("リンゴを5個取り除いた後、残っているリンゴの数は3個です。", 3, {"units": ["個", "つ"]}),
        ("5 - 2 = 3 なので、答えは三つです。", 3, {"units": ["個", "つ"]}),
        ("ボールの値段をxとします。x + (x + 1000) = 1100\n2x = 100\nよって、ボールは５０円です。", 50, {"units": ["円"]}),
        ("2x + 1000 = 1100 より x = 50。答え：五十円", 50, {"units": ["円"]}),
        ("Let x be the ball. 2x = 1, so\nTherefore, the ball costs $0.50 and the bat costs $10.50.", 0.5, USD),
        ("x = 1/2\nSo, the ball costs 50 cents.", 0.5, USD),
        ("The ball costs 50¢.", 0.5, USD),
        ("2x = 1\nx = 1/2", 0.5, {}),
        ("太郎と二郎の二人です。答えは2人です。", 2, {"units": ["人"]}),
        ("The answer is 1,100.", 1100, {}),
        ("答えは50円です。\n検算: 50 + 1050 = 1100", 50, {"units": ["円"]}),
        ("Therefore, 2x = 1.\nx = 0.5", 0.5, USD),
    ],
)
def test_final_number_passes(text, expected, params):
    v = final(text, expected, **params)
    assert v.passed, v.detail


def test_document_failures_name_what_was_read():
    v = final("y = 5500\n\n最終回答：ボールは 5,", 50, units=["円"])
    assert not v.passed and "5" in v.detail and "expected 50" in v.detail
    v = final("x = 5/2\n\nSo, the cost of the ball is 5/2 dollars.", 0.5, **USD)
    assert not v.passed and v.evidence["found"] == 2.5
    v = final("答えは12人です。\n\n説明：\n1. 次郎は2歳です。", 2, units=["人"])
    assert not v.passed and v.evidence["found"] == 12


def test_final_answer_beats_intermediate_numbers():
    text = "5から2を引くと3です。しかし正しくは、答えは4個です。なぜなら7 - 3 = 4だからです。"
    assert final(text, 4, units=["個"]).passed
    assert not final(text, 3, units=["個"]).passed


def test_tolerance():
    assert not final("The answer is 0.3333", 1 / 3).passed
    assert final("The answer is 0.3333", 1 / 3, tolerance=1e-3).passed


@pytest.mark.parametrize("text", ["", "わかりません。", "\x00{[garbage", "答えは"])
def test_final_number_malformed_fails_clearly(text):
    v = final(text, 3)
    assert not v.passed and ("no number" in v.detail or "expected 3" in v.detail)


def test_number_sequence():
    seq = {"expected": [0, 1, 1, 2, 3, 5, 8, 13, 21, 34], "also_accept": [[1, 1, 2, 3, 5, 8, 13, 21, 34, 55]]}
    ok = [
        "The first ten numbers are: 0, 1, 1, 2, 3, 5, 8, 13, 21, and 34.",
        "1, 1, 2, 3, 5, 8, 13, 21, 34, 55",
        "１. ０\n２. １\n３. １\n４. ２\n５. ３\n６. ５\n７. ８\n８. １３\n９. ２１\n１０. ３４",
    ]
    for text in ok:
        assert run("number_sequence", Output(text), seq).passed, text
    for text in ["0, 1, 1, 2, 3, 5, 8, 13, 21", "0, 1, 2, 3, 5, 8, 13, 21, 34, 55", "0, 1, 1, 2, 3, 4, 8, 13, 21, 34", "", "garbage"]:
        v = run("number_sequence", Output(text), seq)
        assert not v.passed and "expected the sequence" in v.detail


def test_numbers_present():
    p = {"expected": [3, 2]}
    assert run("numbers_present", Output("リンゴが3個、オレンジが2個ありました。"), p).passed
    assert run("numbers_present", Output("リンゴが三つ、オレンジが２個"), p).passed
    v = run("numbers_present", Output("リンゴが3個ありました。"), p)
    assert not v.passed and "2" in v.detail
    assert not run("numbers_present", Output(""), p).passed


def test_quantities_counts_amounts_with_units():
    recipe = "材料:\n- 小麦粉: 100g\n- 卵: 2個\n- だし汁: 400ml\n- たこ: 1/2パック\n- 醤油: 大さじ1\n- 塩: 少々\n- 紅しょうが: 適量\n- 天かす: 大さじ 2\n- ねぎ: 二本"
    v = run("quantities", Output(recipe), {"min_count": 7})
    assert v.passed and v.evidence["amounts"] == ["100g", "2個", "400ml", "1/2パック", "大さじ1", "大さじ2", "二本"]
    assert not run("quantities", Output(recipe), {"min_count": 8}).passed


def test_quantities_fails_without_amounts():
    listing = "材料:\n- 小麦粉:\n- 片栗粉:\n- 卵:\n- 塩: 少々\n- 青のり: 適量\n\n1. 生地を作る\n2. 焼く\n3. 10分待つ"
    v = run("quantities", Output(listing), {"min_count": 3})
    assert not v.passed and "only 0" in v.detail
    assert not run("quantities", Output(""), {"min_count": 1}).passed


@given(st.text(max_size=300))
def test_number_checks_never_raise(text):
    o = Output(text)
    for name, params in [
        ("final_number", {"expected": 3, **USD}),
        ("number_sequence", {"expected": [1, 2]}),
        ("numbers_present", {"expected": [3]}),
        ("quantities", {"min_count": 3}),
    ]:
        v = run(name, o, params)
        assert isinstance(v.passed, bool) and v.detail


APPLES = {"units": ["個", "つ"], "subject": ["残り"]}
BALL_JA = {"units": ["円"], "subject": ["ボール", "ball"]}
BALL_EN = {**USD, "subject": ["ball"]}


@pytest.mark.parametrize(
    "text,expected,params",
    [
        # the case: stated first, then worked through with 5個 and 2個
        ("残りのりんごは3個です。最初に5個あり、そこから2個を取り除いたので、5 - 2 = 3 となります。", 3, APPLES),
        ("残りのりんごの数：5 - 2 = 3個", 3, APPLES),
        ("５個から２個とったら、残りは３個だよ！", 3, APPLES),
        ("りんごは五つありましたが、二つ取り除いたので、残りは三つになります。", 3, APPLES),
        ("ボールは50円です。\nボールをx円とすると、バットはx + 1000円です。x + (x + 1000) = 1100 より x = 50。", 50, BALL_JA),
        ("答えは50円です。\n確認：バットは1050円、ボールは50円なので、合計は1050 + 50 = 1100円です。", 50, BALL_JA),
        ("ボールは五十円だね！バットが千五十円で、足すとちゃんと千百円になるよ。", 50, BALL_JA),
        ("The ball costs 50 cents, and the bat costs $10.50. Together that is $11.", 0.5, BALL_EN),
        ("The ball costs $0.50.\n\nLet the ball be x. Then the bat is x + 10, so 2x = 1.", 0.5, BALL_EN),
        ("夏菜子には2人の子供がいます。太郎は29歳、二郎は24歳です。", 2, {"units": ["人"], "subject": ["子供", "children"]}),
        ("Kanako has 2 children, Taro (29) and Jiro (24).", 2, {"units": ["人"], "subject": ["子供", "children"]}),
    ],
)
def test_the_asserted_answer_passes(text, expected, params):
    v = final(text, expected, **params)
    assert v.passed, v.detail


@pytest.mark.parametrize(
    "text,expected,params,both",
    [
        ("答えは3個です。\nただし、最終的なりんごの数は5個です。", 3, APPLES, ("3", "5")),
        ("ボールの値段は50円です。\n1100 - 1000 = 100 なので、最終的な答えは100円です。", 50, BALL_JA, ("50", "100")),
        ("The ball costs $0.50.\nChecking: $11 - $10 = $1, so the final answer is $1.", 0.5, BALL_EN, ("0.50", "1")),
    ],
)
def test_two_different_asserted_answers_fail_naming_both(text, expected, params, both):
    v = final(text, expected, **params)
    assert not v.passed and "two different answers" in v.detail
    assert all(b in v.detail for b in both), v.detail


def test_a_subject_named_beside_another_or_compared_is_not_an_answer():
    v = final("バットとボールの合計は1100円です。バットはボールより1000円高いので、\n最終回答：ボールは", 50, **BALL_JA)
    assert not v.passed
    assert final("A bat and a ball cost $11. So the ball costs $0.50.", 0.5, **BALL_EN).passed
