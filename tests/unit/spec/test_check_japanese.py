"""japanese: the share of Japanese script among Japanese characters and Latin-word letters."""

from hypothesis import given
from hypothesis import strategies as st

from shisa_spec.spec.checks import Output, run


def check(text, **params):
    return run("japanese", Output(text), params)


def test_japanese_prose_passes():
    v = check("リンゴを5個取り除いた後、残っているリンゴの数は3個です。")
    assert v.passed and v.evidence["share"] == 1.0


def test_math_variables_do_not_count():
    assert check("ボールの値段をx、バットの値段をyとする。y = x + 1000、x + y = 1100 なので 2x = 100。").passed


def test_english_answer_fails():
    v = check("The first President of the United States was George Washington.")
    assert not v.passed and "only 0 Japanese" in v.detail


def test_mixed_answer_below_threshold_fails():
    v = check("これは説明です。However, the model is trained on a large amount of text data from the web.")
    assert not v.passed and "share" in v.detail


def test_some_english_terms_are_fine():
    assert check("大規模言語モデルは、APIを通じて利用でき、GPUで高速に推論できます。多くの企業が使っています。").passed


def test_code_json_urls_and_ignored_names_are_set_aside():
    text = (
        "フィボナッチ数を返す関数です。\n```python\ndef fibonacci(k):\n    return k if k < 2 else fibonacci(k-1) + fibonacci(k-2)\n```\n"
        '結果は {"result": "computed by the recursive function"} のようになります。詳しくは https://example.com/fibonacci-numbers を、`fibonacci(10)` を試してください。'
    )
    assert check(text).passed
    names = "George Washington Carverさんとは話しました。"  # a Japanese sentence with a name in it is Japanese
    assert check(names).passed
    quoted = "English: There were 3 apples and 2 oranges.\n日本語: りんごが3個とオレンジが2個ありました。"
    assert not check(quoted).passed
    assert check(quoted, ignore=["There were 3 apples and 2 oranges."]).passed


def test_thresholds_are_params():
    text = "日本語の文章です。Some English words here."
    assert not check(text).passed
    assert check(text, min_share=0.25).passed
    assert not check("はい", min_chars=5).passed and check("はい", min_chars=2).passed


def test_empty_and_garbage_fail_clearly():
    for text in ("", "    ", "12345 !!! ???", "\x00\ufffd"):
        v = check(text)
        assert not v.passed and "Japanese characters" in v.detail


@given(st.text(max_size=300))
def test_never_raises(text):
    v = check(text)
    assert 0 <= v.evidence["share"] <= 1



def test_chinese_without_kana_fails():
    v = check("大规模语言模型是一种基于深度学习的人工智能模型，能够理解和生成自然语言文本。")
    assert not v.passed and "kana" in v.detail and v.evidence["kana"] == 0


def test_kanji_dense_japanese_list_still_passes():
    v = check("材料：小麦粉、卵、牛乳、天かす、紅生姜、青ねぎ、たこ。")
    assert v.passed, v.detail


def test_kana_share_is_a_param():
    text = "大規模言語模型基於深度學習之模型。"  # kanji only, no Chinese markers
    assert not check(text).passed
    assert check(text, min_kana_share=0, min_share=0).passed


def test_chinese_drift_with_some_kana_fails_with_its_share():
    v = check("大規模言語モデルは、大量のテキストで学習したAIです。这些模型通过学习大量的数据，可以生成流畅的文本。")
    assert not v.passed and "Chinese" in v.detail and "%" in v.detail
    assert v.evidence["chinese_share"] > 0.02


def test_characters_japanese_does_not_use_are_chinese_markers():
    from shisa_spec.spec.checks.japanese import chinese_markers

    assert set(chinese_markers("开视设经这们")) == set("开视设经这们")
    assert chinese_markers("開発、視聴、設定、経済、髙橋さん、﨑") == []  # Japanese forms (cp932, incl. NEC/IBM)
    assert chinese_markers("我的书是一个好的。") and not chinese_markers("具体的な目的は、完了しました。")


def test_japanese_with_english_terms_asides_and_code_passes():
    assert check("LLM（Large Language Model）は、self-attentionを使うTransformerモデルを大量のテキストでpre-trainingしたものです。").passed
    assert check("うわー、バイトクビは本当にショックだよね…。Life is hard って言うけど、今日は休んでね。").passed
    assert check("大規模言語モデルの特徴：\n1. Transformerを使う\n2. GPT-4やLlamaが代表例").passed
