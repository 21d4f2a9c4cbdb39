"""Check ``japanese``: the answer is written in Japanese.

What is set aside first: fenced code, JSON values, URLs, inline `code` and the ``ignore``
names (proper names the answer may legitimately spell in Latin letters). Then

    share = Japanese-script characters / (Japanese-script characters + letters of Latin words)

where Japanese script means hiragana, katakana and CJK ideographs (by Unicode character name)
and a Latin word is a run of two or more Latin letters. A single Latin letter standing alone
(a math variable: x, y) is not counted, so a Japanese derivation of x + y = 1100 stays Japanese.

Threshold: ``min_share`` 0.85 by default. Japanese technical prose routinely carries some
English terms (API, GPU, Python): 0.85 leaves room for roughly one Latin letter per six
Japanese characters, while an answer with an English sentence or more in it falls below.
``min_chars`` (5) makes an answer with almost no text fail rather than pass vacuously.

Kanji alone do not make Japanese: ``min_kana_share`` (0.15) is the least share of hiragana and
katakana among the Japanese-script characters. Japanese prose runs at 0.4 to 0.8 (the document's
answers: 0.44 to 0.80); Chinese, which the tokenizer can also produce (the authors list language
leakage as a known weakness), has none.
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


@register("japanese", _SCHEMA)
def japanese(output: Output, min_share: float = 0.85, min_chars: int = 5, ignore: list[str] | None = None,
             min_kana_share: float = 0.15) -> Verdict:
    text = prose(output.text, ignore or [])
    ja = sum(map(is_japanese_char, text))
    kana = sum(map(is_kana, text))
    latin = sum(n for is_l, run in itertools.groupby(text, is_latin_letter) if is_l and (n := len(list(run))) >= 2)
    share = ja / (ja + latin) if ja + latin else 0.0
    ev = {"japanese_chars": ja, "kana": kana, "latin_word_letters": latin, "share": round(share, 3)}
    if ja < min_chars:
        return Verdict(False, f"only {ja} Japanese characters (need {min_chars}); the answer is not Japanese prose", ev)
    if kana < min_kana_share * ja:
        return Verdict(False, f"only {kana} of {ja} Japanese-script characters are kana (need {min_kana_share:.0%}): kanji without kana reads as Chinese", ev)
    if share < min_share:
        return Verdict(False, f"Japanese share {share:.2f} < {min_share} ({ja} Japanese chars, {latin} letters of Latin words)", ev)
    return Verdict(True, f"Japanese share {share:.2f} >= {min_share} ({ja} Japanese chars, {latin} letters of Latin words)", ev)
