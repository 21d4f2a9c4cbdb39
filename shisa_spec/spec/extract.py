"""Extraction: find numbers, the final answer, JSON values and Python code in a model's text.

Nothing here judges. Positions refer to the NFKC-normalised text (``normalize.nfkc``), which
every function here works on; callers that need positions should normalise first.
"""

from __future__ import annotations

import ast
import json
import re
import textwrap
from dataclasses import dataclass
from typing import Any

from shisa_spec.spec.normalize import KANJI_NUMERAL_CHARS, nfkc, parse_number

# Units and counters recognised after a number (longest match wins). Latin ones need a word boundary.
UNITS = sorted(
    {
        *"個 个 つ 人 名 歳 才 円 本 枚 杯 匹 頭 羽 台 冊 回 度 番 日 月 年 時 分 秒 倍 割 点 階 件 歩 足 着 玉 片 粒 尾 束 袋 缶 株 房 合 膳 皿 品 種 位 号 部 滴 かけ 切れ 切 ヶ月 か月 カ月 ケ月 箇月 時間 分間 秒間 人前 種類 通り つ目 番目 グラム キロ キログラム ミリリットル リットル メートル センチ ドル セント カップ パック 個分".split(),
        *"g kg mg ml mL l L cc cm mm m km oz lb lbs cup cups tbsp tsp dollar dollars cent cents yen % ¢ years year".split(),
    },
    key=len,
    reverse=True,
)
# Units written before the number: currency symbols and Japanese measuring spoons/cups (大さじ1).
PREFIXES = ("大さじ", "小さじ", "カップ", "$", "¥", "€", "£")
# Characters after which a lone kanji numeral is still a number (二人, 三つ, 一日), not part of a word (一般, 二郎).
_COUNTER_CHARS = {u[0] for u in UNITS if not u[0].isascii()}

_ASCII = r"\d{1,3}(?:,\d{3})+(?:\.\d+)?(?!\d)|\d+(?:\.\d+)?"
_NUM_RE = re.compile(
    rf"(?<![A-Za-z_\d.])(?:-(?=\d))?(?:{_ASCII}|[{KANJI_NUMERAL_CHARS}])(?:{_ASCII}|[{KANJI_NUMERAL_CHARS}])*"
    rf"(?:\s*[/⁄]\s*\d+(?![\d.]))?"
)
_JP_FRACTION_RE = re.compile(r"(\d+)分の(\d+)")


@dataclass(frozen=True)
class Number:
    value: int | float
    start: int
    end: int
    raw: str
    unit: str | None  # a known unit or counter right after the number (one space allowed)
    prefix: str | None  # a currency symbol or 大さじ/小さじ/カップ right before it
    before: str  # up to 16 characters of context either side
    after: str
    kanji: bool  # written with kanji numerals
    enumerator: bool  # a list-item number at the start of a line ("3. ...")


def _unit_after(text: str, end: int) -> str | None:
    rest = text[end : end + 12]
    rest = rest[1:] if rest[:1] == " " else rest
    for u in UNITS:
        nxt = rest[len(u) : len(u) + 1]
        if rest.startswith(u) and not (u[-1].isascii() and u[-1].isalpha() and nxt.isascii() and nxt.isalpha()):
            return u
    return None


def _prefix_before(text: str, start: int) -> str | None:
    head = text[max(0, start - 6) : start]
    head = head[:-1] if head.endswith(" ") else head
    return next((p for p in PREFIXES if head.endswith(p)), None)


def _is_word_kanji(text: str, start: int, end: int) -> bool:
    """A single kanji numeral inside a word (一般, 統一, 二郎, 千葉) rather than a number."""
    if end - start != 1 or text[start] not in KANJI_NUMERAL_CHARS:
        return False
    if text[start] in "万億兆":
        return True
    prev = text[start - 1] if start else ""
    nxt = text[end] if end < len(text) else ""
    if nxt in _COUNTER_CHARS and nxt:
        return False
    cjk = lambda c: bool(c) and "\u4e00" <= c <= "\u9fff"  # noqa: E731
    return cjk(prev) or cjk(nxt)


def numbers(text: str) -> list[Number]:
    """Every number in ``text`` (normalised), in order, with unit, prefix and context."""
    t = nfkc(text)
    out: list[Number] = []
    pos = 0
    while (m := _NUM_RE.search(t, pos)) is not None:
        raw, start, end = m.group(), m.start(), m.end()
        pos = end
        kanji = any(c in KANJI_NUMERAL_CHARS for c in raw)
        if kanji and _is_word_kanji(t, start, end):
            continue
        jf = None if kanji else _JP_FRACTION_RE.match(t, start)
        if jf and int(jf.group(1)):  # 3分の1 -> 1/3
            value, end, raw = int(jf.group(2)) / int(jf.group(1)), jf.end(), jf.group()
            pos = end
        else:
            neg = raw.startswith("-")
            body = raw[1:] if neg else raw
            value = parse_number(body)
            if value is None:  # a malformed kanji run (百十百) or a zero denominator
                continue
            value = -value if neg else value
        line_start = t.rfind("\n", 0, start) + 1
        enumerator = t[line_start:start].strip() in ("", "-", "*") and re.match(r"[.)、](?!\d)", t[end : end + 1]) is not None
        out.append(
            Number(
                value=value,
                start=start,
                end=end,
                raw=raw,
                unit=_unit_after(t, end),
                prefix=_prefix_before(t, start),
                before=t[max(0, start - 16) : start],
                after=t[end : end + 16],
                kanji=kanji,
                enumerator=enumerator,
            )
        )
    return out


def unit_in(num: Number, units: list[str] | tuple[str, ...]) -> str | None:
    """Which of ``units`` (any spelling the case file uses) is written right after, or before, ``num``."""
    after = num.after[1:] if num.after[:1] == " " else num.after
    before = num.before[:-1] if num.before.endswith(" ") else num.before
    for u in sorted((nfkc(x) for x in units), key=len, reverse=True):
        nxt = after[len(u) : len(u) + 1]
        boundary = not (u[-1].isascii() and u[-1].isalpha() and nxt.isascii() and nxt.isalpha())
        if after.lower().startswith(u.lower()) and boundary:
            return u
        if not u[0].isalnum() and before.endswith(u):  # "$0.50"
            return u
    return None


# --- sentences and the final answer -------------------------------------------------------

_SENT_END = re.compile(r"[。！？!?\n]|\.(?=\s|$)")
_ANYWHERE = re.compile(
    r"最終回答|最終的な答え|答えは|答え\s*:|答\s*:|正解は|正解\s*:|結論\s*:|\bthe answer is\b|\bfinal answer\b|\banswer\s*:|\btherefore\b|\bthus\b|\bhence\b",
    re.I,
)
_AT_START = re.compile(r"(?:よって|したがって|従って|つまり|ゆえに|故に|以上より|以上から|so\b|in conclusion\b)", re.I)
_BULLET = re.compile(r"^[\s>*#\-•]*(?:\d+[.)]\s+)?[\s*]*")


@dataclass(frozen=True)
class Sentence:
    text: str
    start: int
    end: int


def sentences(text: str) -> list[Sentence]:
    """Sentences of the normalised text, split at 。！？!? newlines and '. ' (not after a list number)."""
    t = nfkc(text)
    out, start = [], 0
    for m in _SENT_END.finditer(t):
        if m.group() == "." and re.search(r"(?:^|\n)\s*\d+$", t[start : m.start()]):
            continue  # "1. " opens a list item
        if t[start : m.end()].strip():
            out.append(Sentence(t[start : m.end()], start, m.end()))
        start = m.end()
    if t[start:].strip():
        out.append(Sentence(t[start:], start, len(t)))
    return out


@dataclass(frozen=True)
class Answer:
    sentence: str  # the answer sentence
    marker: str  # the marker that made it one ("答えは", "so", "=" ...), "" if none
    start: int  # where the answer region starts (after the marker) in the normalised text
    end: int


_FINAL_EQ = re.compile(r"^[^\d=+\-*/×÷()<>]+=\s*[-$¥]?\s*[\d" + KANJI_NUMERAL_CHARS + r"][^=]*$")


def final_answer(text: str) -> Answer | None:
    """The last sentence that states an answer (答えは, 最終回答, よって…, the answer is, so, …).

    The text's final sentence also counts when it assigns a value to a name (``x = 1/2``,
    ``ボール = 50円``), but not when it is a check such as ``50 + 1050 = 1100``. Returns None
    when no sentence carries a marker; the region runs from just after the marker to the end
    of its sentence.
    """
    sents = sentences(text)
    if sents:
        last = sents[-1]
        body = _BULLET.sub("", last.text, count=1).strip()
        if _FINAL_EQ.match(body) and not _ANYWHERE.search(body) and not _AT_START.match(body):
            eq = last.text.rindex("=")
            return Answer(last.text.strip(), "=", last.start + eq + 1, last.end)
    for s in reversed(sents):
        hits = list(_ANYWHERE.finditer(s.text))
        if hits:
            h = hits[-1]
            return Answer(s.text.strip(), h.group(), s.start + h.end(), s.end)
        body = _BULLET.sub("", s.text, count=1)
        m = _AT_START.match(body)
        if m:
            off = len(s.text) - len(body)
            return Answer(s.text.strip(), m.group(), s.start + off + m.end(), s.end)
    return None


# --- JSON -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class JsonFound:
    value: Any  # the parsed value (None when broken)
    start: int
    end: int
    raw: str
    error: str | None = None  # set when a JSON-looking span does not parse


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


_DECODER = json.JSONDecoder(parse_constant=_reject_constant)


def _balanced_end(text: str, i: int) -> int | None:
    """Index after the bracket closing the one at ``i`` (string-aware), or None if never closed."""
    depth, in_str, esc = 0, False, False
    for j in range(i, len(text)):
        c = text[j]
        if in_str:
            if esc:
                esc = False
            elif c == "\\":
                esc = True
            elif c == '"':
                in_str = False
            continue
        if c == '"':
            in_str = True
        elif c in "{[":
            depth += 1
        elif c in "}]":
            depth -= 1
            if depth == 0:
                return j + 1
    return None


def _looks_like_json(text: str, i: int) -> bool:
    nxt = text[i + 1 : i + 200].lstrip()[:1]
    return nxt in ('"', "'", "}") if text[i] == "{" else nxt in ('"', "{", "[", "]", "-") or nxt.isdigit()


def find_json(text: str) -> list[JsonFound]:
    """Top-level JSON objects/arrays anywhere in ``text`` (prose or ``` fences), strictly parsed.

    Scans with ``JSONDecoder.raw_decode`` (NaN/Infinity rejected). A JSON-looking span that does
    not parse is returned with ``error`` set (to its closing bracket, or to the end of the text
    when it never closes, e.g. a truncated answer) so that fragments inside it are not mistaken
    for the document. Works on the raw text: JSON escapes matter to some checks.
    """
    out: list[JsonFound] = []
    i, n = 0, len(text)
    while i < n:
        if text[i] not in "{[":
            i += 1
            continue
        try:
            value, end = _DECODER.raw_decode(text, i)
        except (json.JSONDecodeError, ValueError, RecursionError) as e:
            if not _looks_like_json(text, i):
                i += 1
                continue
            end = _balanced_end(text, i) or n
            if isinstance(e, json.JSONDecodeError):
                line = text.count("\n", i, e.pos) + 1
                col = e.pos - (text.rfind("\n", i, e.pos) + 1 if line > 1 else i) + 1
                msg = f"{e.msg} at line {line} column {col} of the JSON"
            else:
                msg = f"{type(e).__name__}: {e}"
            out.append(JsonFound(None, i, end, text[i:end], msg))
            i = end
            continue
        out.append(JsonFound(value, i, end, text[i:end]))
        i = end
    return out


def json_strings(value: Any) -> list[str]:
    """Every string in a JSON value, keys included, depth first."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for k, v in value.items() for s in (k, *json_strings(v))]
    if isinstance(value, list):
        return [s for v in value for s in json_strings(v)]
    return []


def json_scalars(value: Any) -> list[Any]:
    """Every non-container value in a JSON value (dict values, list items), depth first."""
    if isinstance(value, dict):
        return [s for v in value.values() for s in json_scalars(v)]
    if isinstance(value, list):
        return [s for v in value for s in json_scalars(v)]
    return [value]


# --- Python code ------------------------------------------------------------------------------

_FENCE_RE = re.compile(r"^([ \t]*)```[ \t]*([\w+-]*)[^\n]*\n(.*?)(?:^[ \t]*```|\Z)", re.S | re.M)
_CODE_START = re.compile(r"^(?:async\s+def|def|class|import|from\s+\S+\s+import)\b")
_CODE_LINE = re.compile(r"^(?:[#@]|(?:async\s+def|def|class|import|from|if|for|while|try|except|finally|with|return|print|assert|elif|else)\b|[A-Za-z_][\w.]*\s*(?:[-+*/]?=|\(|\[))")
_REPL_LINE = re.compile(r"^[ \t]*(>>>|\.\.\.)(?: |$)")


def fenced_blocks(text: str) -> list[tuple[str, str, int, int]]:
    """``` fenced blocks as (language tag, body, start, end); an unclosed fence runs to the end.

    A fence may be indented (a code block inside a list item); its body is dedented by the
    fence's own indentation, as markdown does, so the code parses.
    """
    out = []
    for m in _FENCE_RE.finditer(text):
        indent, body = m.group(1), m.group(3)
        if indent:
            body = "".join(ln[len(indent) :] if ln.startswith(indent) else ln.lstrip(" \t") for ln in body.splitlines(keepends=True))
        out.append((m.group(2).lower(), textwrap.dedent(body) if indent else body, m.start(), m.end()))
    return out


def repl_source(text: str) -> str | None:
    """The code typed into a ``>>>`` Python session (prompts stripped, printed output dropped), or None."""
    lines = text.splitlines()
    if not any(ln.lstrip().startswith(">>>") for ln in lines):
        return None
    code = [m_line for ln in lines if (m := _REPL_LINE.match(ln)) for m_line in [ln[m.end() :]]]
    return textwrap.dedent("\n".join(code)) + "\n"


def _parses(src: str) -> bool:
    try:
        ast.parse(src)
        return True
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return False


def _trim_prose(block: list[str]) -> list[str]:
    """Drop trailing lines (prose that happens to look like code) until the block parses, if it ever does."""
    for end in range(len(block), 0, -1):
        if _parses("\n".join(block[:end]) + "\n"):
            return block[:end]
    return block


def python_blocks(text: str) -> list[str]:
    """Python code in ``text``, best candidates first.

    ```python fences, then untagged fences that look like Python, then ``>>>`` session
    transcripts, then bare def/class/import blocks (ended by the first line that is neither
    indented nor code, so prose after a function is left out).
    """
    fences = fenced_blocks(text)
    tagged = [b for lang, b, _, _ in fences if lang in ("python", "py", "python3", "pycon")]
    untagged = [b for lang, b, _, _ in fences if not lang and ("def " in b or "import " in b or ">>>" in b)]
    found = [repl_source(b) or b for b in tagged + untagged]
    if found:
        return found
    repl = repl_source(text)
    if repl:
        return [repl]
    lines = text.splitlines()
    blocks, i = [], 0
    while i < len(lines):
        if not _CODE_START.match(lines[i]):
            i += 1
            continue
        j = i + 1
        while j < len(lines) and (not lines[j].strip() or lines[j][:1] in " \t" or _CODE_LINE.match(lines[j])):
            j += 1
        block = lines[i:j]
        while block and not block[-1].strip():
            block.pop()
        blocks.append("\n".join(_trim_prose(block)) + "\n")
        i = j
    return blocks


def parse_python(source: str) -> tuple[ast.Module | None, str | None]:
    """(module, None) or (None, a one-line description of the syntax error)."""
    try:
        return ast.parse(source), None
    except SyntaxError as e:
        return None, f"SyntaxError: {e.msg} (line {e.lineno})"
    except (ValueError, RecursionError, MemoryError) as e:
        return None, f"{type(e).__name__}: {e}"


def one_arg_functions(module: ast.Module) -> list[str]:
    """Top-level functions callable with exactly one positional argument."""
    out = []
    for node in module.body:
        if isinstance(node, ast.FunctionDef):
            a = node.args
            pos = a.posonlyargs + a.args
            takes_one = (len(pos) >= 1 and len(pos) - len(a.defaults) <= 1) or a.vararg is not None
            if takes_one and all(d is not None for d in a.kw_defaults):
                out.append(node.name)
    return out
