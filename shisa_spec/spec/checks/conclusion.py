"""Check ``concludes``: the answer concludes that the subject did the predicate (太郎 / 食べ, Tom / ate).

Words are not enough: "Tom did not eat it; the dog ate the cookie" mentions Tom and "ate" and
concludes the opposite. The check reads claims, not keywords:

- A *claim* is a clause holding one of the ``predicate`` forms and the subject: one of the
  ``subject`` names, or a pronoun (he, she, 彼, 彼女) once the subject has been named. Clauses end
  at sentence ends, semicolons, and English ", and" / ", but" / "but" (so in "Tom entered, and
  cookies are often eaten by children" nobody claims Tom ate).
- A claim is *negated* when a negation is in its scope: not, n't, never, unlikely, least likely,
  doubt, no one, impossible; ない, ません, なかった, ではない, じゃない, 可能性は低い, 考えにくい. In English
  the scope is the whole clause ("It is unlikely that Tom ate it"); in Japanese, where negation
  follows the verb, it runs from the subject to the end of the clause (「太郎が食べた可能性は低い」,
  「太郎は食べていません」). A question-shaped ない is a suggestion, not a negation
  (「太郎が食べたんじゃない？」, 「食べたのではないでしょうか」).
- In an enumerated list of possibilities, the option the answer ranks most likely counts: the item
  it calls most likely (most likely, 最も可能性が高い), else the first item when the answer says the
  list is ordered (from most to least likely, 可能性の高い順) or does not rank it at all (answers list
  the likeliest first). An item the answer calls unlikely is a negated claim.

Passes when the deciding claims hold one that is not negated and none that is negated.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from shisa_spec.spec.checks import Output, Verdict, register
from shisa_spec.spec.normalize import contains_term, fold

_TERMS = {"type": "array", "minItems": 1, "items": {"type": "string", "minLength": 1}}
_SCHEMA = {
    "type": "object",
    "additionalProperties": False,
    "required": ["subject", "predicate"],
    "properties": {"subject": _TERMS, "predicate": _TERMS, "pronouns": {"type": "array", "items": {"type": "string", "minLength": 1}}},
}
PRONOUNS = ["he", "she", "they", "彼", "彼女"]

_EN_NEG = re.compile(r"\bnot\b|n't\b|\bnever\b|\bunlikely\b|\bleast likely\b|\bimprobable\b|\bimpossible\b|\bdoubt\b|\bno one\b|\bnobody\b|\bno way\b|\bcannot\b|\brather than\b|\binstead of\b", re.I)
_JA_NEG = re.compile(
    r"(?<![少危幼汚])な(?:い|く|かった)(?![？?]|か|でしょうか|だろうか|かな|ですか)"
    r"|ません(?!か)|ではな|じゃな(?!い[？?]|いか)|可能性(?:は|が)(?:低|少な|ほとんどな)|考えにく|ありえ|あり得|有り得|以外"
)
# Negative forms that affirm: suggestions (食べたんじゃない？) and certainty (に違いない, としか考えられない, no doubt).
_AFFIRMING = re.compile(
    r"(?:ん|の)(?:じゃ|では)ない(?:[？?]|か|でしょうか|だろうか|かな)|(?:に|は)?(?:間)?違い(?:な(?:い|く)|ありません)|しか(?:考えられ|思え|ありえ|あり得)(?:ない|ません)"
    r"|\bno doubt\b|\bwithout (?:a )?doubt\b|\bcould(?:n't| not) have been anyone else\b|\bno one else\b|\bnobody else\b",
    re.I,
)
_MOST = re.compile(r"\bmost likely\b|\bmost probable\b|\blikeliest\b|\bmost plausible\b|最も可能性(?:が|の)高|可能性が(?:最も|一番)高|一番可能性(?:が|の)高|最もありそう|最も考えられ", re.I)
_LOW = re.compile(r"\bleast likely\b|\bunlikely\b|\bless likely\b|\bimprobable\b|可能性(?:は|が)(?:低|少な)|可能性が最も低|最も可能性(?:が|の)低|考えにく", re.I)
_ORDERED = re.compile(r"most to least|in order of (?:likelihood|probability)|ranked|most likely first|可能性(?:の|が)高い順|高い順|ありそうな順", re.I)
_ITEM = re.compile(r"^\s*(?:\d+[.)、]|[-*•・])\s+", re.M)
_EN_CLAUSE = re.compile(r";|,\s*(?:and|but|while|whereas)\b|\bbut\b|(?<=[.!?])\s+")
_SENT = re.compile(r"(?<=[。！？!?\n])|(?<=\.)(?=\s|$)")  # zero-width: a sentence keeps its ？ (a suggestion's mark)


@dataclass(frozen=True)
class Claim:
    text: str
    negated: bool


def _has(text: str, terms: list[str]) -> int:
    """Position of the first term found in folded ``text`` (-1 when none)."""
    best = -1
    for t in terms:
        ft = fold(t)
        if not contains_term(text, ft):
            continue
        left = r"(?<![A-Za-z0-9])" if ft[0].isascii() and ft[0].isalnum() else ""
        right = r"(?![A-Za-z0-9])" if ft[-1].isascii() and ft[-1].isalnum() else ""
        m = re.search(left + re.escape(ft) + right, text)
        if m and (best < 0 or m.start() < best):
            best = m.start()
    return best


def _negated(clause: str, subj_at: int, pred_at: int) -> bool:
    clause = _AFFIRMING.sub(" ", clause)
    if _EN_NEG.search(clause):
        return True
    start = min(subj_at, pred_at) if subj_at >= 0 else pred_at
    return _JA_NEG.search(clause[start:]) is not None or _LOW.search(clause) is not None


def claims(text: str, subject: list[str], predicate: list[str], pronouns: list[str], named_before: bool = False) -> list[Claim]:
    """The clauses of ``text`` that claim subject + predicate, with whether each is negated."""
    out: list[Claim] = []
    named = named_before
    for sent in _SENT.split(fold(text)):
        for clause in _EN_CLAUSE.split(sent):
            if not clause.strip():
                continue
            p = _has(clause, predicate)
            s = _has(clause, subject)
            if s < 0 and named and p >= 0:
                s = _has(clause, pronouns)
            if s >= 0 and p >= 0:
                # Japanese: negation scope starts at the subject mention nearest before the predicate
                subj_at = max((m.start() for t in subject for m in re.finditer(re.escape(fold(t)), clause[: p + 1])), default=s)
                out.append(Claim(clause.strip(), _negated(clause, subj_at, p)))
            if _has(clause, subject) >= 0:
                named = True
    return out


def _items(text: str) -> tuple[str, list[str]]:
    """(the text before the list, the list's items) for the answer's enumerated list, if it has one of 2+ items."""
    marks = list(_ITEM.finditer(text))
    if len(marks) < 2:
        return text, []
    items = [text[m.end() : (marks[i + 1].start() if i + 1 < len(marks) else len(text))] for i, m in enumerate(marks)]
    return text[: marks[0].start()], items


@register("concludes", _SCHEMA)
def concludes(output: Output, subject: list[str], predicate: list[str], pronouns: list[str] | None = None) -> Verdict:
    pron = PRONOUNS if pronouns is None else pronouns
    what = f"{subject[0]} / {predicate[0]}"
    intro, items = _items(output.text)
    item_claims = [claims(it, subject, predicate, pron, named_before=_has(fold(intro), subject) >= 0) for it in items]
    outside = claims(intro, subject, predicate, pron)
    deciding: list[Claim]
    where: str
    if items and any(item_claims):
        ranked = [i for i, it in enumerate(items) if _MOST.search(it) and not _LOW.search(_MOST.sub("", it))]
        top = ranked[0] if ranked else 0
        how = "the item it calls most likely" if ranked else ("the first item of a ranked list" if _ORDERED.search(intro) else "the first item (the list is not ranked)")
        deciding = item_claims[top]
        if deciding and _LOW.search(items[top]) and not ranked:
            deciding = [Claim(c.text, True) for c in deciding]
        where = f"{how}, item {top + 1}: {items[top].strip()[:80]!r}"
        if not deciding:
            return Verdict(False, f"the answer ranks another option first ({where}); it does not conclude {what}", {"item": top + 1})
    else:
        deciding = outside + [c for cl in item_claims for c in cl]
        where = "the answer's claims"
    ev = {"claims": [(c.text[:80], "negated" if c.negated else "asserted") for c in deciding]}
    if not deciding:
        return Verdict(False, f"no clause claims {what}: the answer does not conclude it", ev)
    neg = [c for c in deciding if c.negated]
    pos = [c for c in deciding if not c.negated]
    if neg:
        return Verdict(False, f"the answer negates {what}: {neg[0].text[:80]!r} ({where})", ev)
    return Verdict(True, f"the answer concludes {what}: {pos[0].text[:80]!r} ({where})", ev)
