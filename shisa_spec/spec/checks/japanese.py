"""Check ``japanese``: the answer is written in Japanese, not English and not Chinese.

What is set aside first: fenced code, JSON values, URLs, inline `code` and the ``ignore``
names (text the answer may legitimately quote in another language). The rest is read sentence
by sentence, as a reader would:

- a sentence with kana in it is Japanese, English terms, names and variables included
  (「self-attentionを使うTransformerモデル」, 「Life is hard って言うけど」);
- a sentence without kana is English when it has two or more Latin words and their letters
  outweigh its Japanese-script characters, and Chinese when it holds a Chinese marker (below) or 12 or more ideographs;
  a short kanji line (a heading, 【材料】) stays Japanese.

``share`` is the weight (Japanese-script characters plus Latin-word letters) of the Japanese
sentences over all sentences; it must be at least ``min_share`` (0.85): an English or Chinese
paragraph fails, an English aside of a few words does not.

Chinese drift (a known failure of Japanese models built on multilingual bases) is measured too:
Chinese markers are ideographs Japanese writing does not use (not encodable in cp932, i.e.
outside JIS X 0208 and the NEC/IBM extensions that Japanese text uses: 这, 们, 视, 设, 经) and
Chinese function words Japanese does not use that way (的 after 我/你/他/这 or before 是/一, 了 at
a clause end, 是 as a copula, 个). Their share of the Japanese-script characters must not exceed
``max_chinese_share`` (0.02), so a Japanese answer that drifts into Chinese fails, naming the share.
Kanji alone do not make Japanese either: ``min_kana_share`` (0.15) is the least share of kana
among the Japanese-script characters (Japanese prose runs at 0.4 to 0.8; Chinese has none).
``min_chars`` (5) makes an answer with almost no text fail rather than pass vacuously.
"""

from __future__ import annotations

import itertools
import re

from shisa_spec.spec.checks import Output, Verdict, register
from shisa_spec.spec.extract import fenced_blocks, find_json
from shisa_spec.spec.normalize import is_japanese_char, is_kana, is_latin_letter, nfkc

_SCHEMA = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "min_share": {"type": "number", "minimum": 0, "maximum": 1},
        "min_chars": {"type": "integer", "minimum": 0},
        "min_kana_share": {"type": "number", "minimum": 0, "maximum": 1},
        "max_chinese_share": {"type": "number", "minimum": 0, "maximum": 1},
        "ignore": {"type": "array", "items": {"type": "string", "minLength": 1}},
    },
}


def _cut(text: str, spans: list[tuple[int, int]]) -> str:
    out, pos = [], 0
    for a, b in sorted(spans):
        if a >= pos:
            out.append(text[pos:a])
            pos = b
        else:
            pos = max(pos, b)
    out.append(text[pos:])
    return " ".join(out)


def prose(text: str, ignore: list[str] = ()) -> str:
    """The text with code, JSON, URLs and ignored names set aside (NFKC-normalised)."""
    text = _cut(text, [(a, b) for _, _, a, b in fenced_blocks(text)])
    text = _cut(text, [(j.start, j.end) for j in find_json(text) if j.error is None])
    text = nfkc(text)
    text = re.sub(r"https?://\S+|www\.\S+", " ", text)
    text = re.sub(r"`[^`\n]*`", " ", text)
    for name in sorted((nfkc(n) for n in ignore), key=len, reverse=True):
        text = text.replace(name, " ")
    return text


_CHINESE_WORDS = re.compile(
    r"(?<=[我你他她它们這这那])的|的(?=[是一])|(?<![完終修魅満未読校投])了(?=[。，,！？!?]|$)|是(?![非正認々])|个|很(?=[\u4e00-\u9fff])",
    re.M,
)
_SENTENCE = re.compile(r"(?<=[。！？!?\n])|(?<=\.)(?=\s)")


def _not_japanese_ideograph(ch: str) -> bool:
    """A CJK ideograph that Japanese writing does not use: not encodable in cp932 (JIS X 0208 + NEC/IBM)."""
    if not ("\u4e00" <= ch <= "\u9fff" or "\u3400" <= ch <= "\u4dbf" or ch >= "\U00020000"):
        return False
    try:
        ch.encode("cp932")
        return False
    except UnicodeEncodeError:
        return True


def chinese_markers(text: str) -> list[str]:
    """The Chinese markers in ``text``: ideographs Japanese does not use, and Chinese function words."""
    out = [c for c in text if _not_japanese_ideograph(c)]
    out += [m.group() for m in _CHINESE_WORDS.finditer(text)]
    return out


def _latin_letters(text: str) -> int:
    return sum(n for is_l, run in itertools.groupby(text, is_latin_letter) if is_l and (n := len(list(run))) >= 2)


def classify(sentence: str) -> tuple[str, int]:
    """(``ja``, ``en`` or ``zh``, weight) of one sentence of prose."""
    ja = sum(map(is_japanese_char, sentence))
    kana = sum(map(is_kana, sentence))
    latin = _latin_letters(sentence)
    weight = ja + latin
    if kana:
        return "ja", weight
    if latin > ja and len(re.findall(r"[A-Za-z]{2,}", sentence)) >= 2:  # a one-word line (a label, a name) is not English prose
        return "en", weight
    if chinese_markers(sentence) or ja >= 12:
        return "zh", weight
    return "ja", weight


@register("japanese", _SCHEMA)
def japanese(output: Output, min_share: float = 0.85, min_chars: int = 5, ignore: list[str] | None = None,
             min_kana_share: float = 0.15, max_chinese_share: float = 0.02) -> Verdict:
    text = prose(output.text, ignore or [])
    ja = sum(map(is_japanese_char, text))
    kana = sum(map(is_kana, text))
    latin = _latin_letters(text)
    weights = {"ja": 0, "en": 0, "zh": 0}
    for sent in _SENTENCE.split(text):
        kind, w = classify(sent)
        weights[kind] += w
    total = sum(weights.values())
    share = weights["ja"] / total if total else 0.0
    zh = chinese_markers(text)
    zh_share = len(zh) / ja if ja else 0.0
    ev = {"japanese_chars": ja, "kana": kana, "latin_word_letters": latin, "share": round(share, 3),
          "english_weight": weights["en"], "chinese_weight": weights["zh"], "chinese_markers": "".join(zh[:20]), "chinese_share": round(zh_share, 3)}
    if ja < min_chars:
        return Verdict(False, f"only {ja} Japanese characters (need {min_chars}); the answer is not Japanese prose", ev)
    if kana < min_kana_share * ja:
        return Verdict(False, f"only {kana} of {ja} Japanese-script characters are kana (need {min_kana_share:.0%}): kanji without kana reads as Chinese", ev)
    if zh_share > max_chinese_share:
        return Verdict(False, f"Chinese drift: {len(zh)} Chinese markers in {ja} Japanese-script characters ({zh_share:.1%} > {max_chinese_share:.0%}: {''.join(zh[:8])})", ev)
    if share < min_share:
        other = "Chinese" if weights["zh"] > weights["en"] else "English"
        return Verdict(False, f"Japanese share {share:.2f} < {min_share}: {1 - share:.0%} of the text is in {other} sentences ({weights['en']} English, {weights['zh']} Chinese of {total})", ev)
    return Verdict(True, f"Japanese share {share:.2f} >= {min_share} ({ja} Japanese chars, {latin} letters of Latin words, Chinese markers {zh_share:.1%})", ev)
