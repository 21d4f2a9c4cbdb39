"""The HTML report and Markdown summary: well-formed, self-contained, escaped, and showing what changed."""

import shutil
import subprocess
import sys
from html.parser import HTMLParser

import pytest

from shisa_spec.frontends import cli
from shisa_spec.gate import compare
from shisa_spec.gate import report
from shisa_spec.spec.cases import FIXTURES, load_suite
from shisa_spec.generation.transcript import read

ROOT = FIXTURES.parent
GATE = FIXTURES / "transcripts" / "gate"
SUITE = load_suite()
DOC = read(FIXTURES / "transcripts" / "document.jsonl")
VOID = {"meta", "br", "hr", "img", "input", "link", "col", "wbr", "source", "area", "base", "embed", "param", "track"}


class Tree(HTMLParser):
    """Checks tag nesting and collects the text of each output box (<div class="out">'s <pre>) per case."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[str] = []
        self.tags: set[str] = set()
        self.urls: list[str] = []
        self.case: str | None = None
        self.outputs: dict[str, list[str]] = {}
        self._pre_depth: int | None = None
        self._in_out = 0

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        self.tags.add(tag)
        self.urls += [v for k, v in attrs if k in ("src", "href") and v and not v.startswith("#")]
        if tag == "section" and (a.get("id") or "").startswith("case-"):
            self.case = a["id"][5:]
        if tag == "div" and "out" in (a.get("class") or "").split():
            self._in_out = len(self.stack) + 1
        if tag == "pre" and self._in_out and self.case:
            self._pre_depth = len(self.stack) + 1
            self.outputs.setdefault(self.case, []).append("")
        if tag not in VOID:
            self.stack.append(tag)

    def handle_endtag(self, tag):
        assert self.stack and self.stack[-1] == tag, f"</{tag}> closes <{self.stack[-1] if self.stack else None}>"
        self.stack.pop()
        if self._pre_depth is not None and len(self.stack) < self._pre_depth:
            self._pre_depth = None
        if self._in_out and len(self.stack) < self._in_out:
            self._in_out = 0

    def handle_data(self, data):
        if self._pre_depth is not None and self.case:
            self.outputs[self.case][-1] += data


@pytest.fixture(scope="module")
def comp():
    return compare.compare(SUITE, read(GATE / "baseline.jsonl"), read(GATE / "candidate.jsonl"))


@pytest.fixture(scope="module")
def page(comp):
    return report.html_report(comp, DOC, {"baseline": "old.jsonl", "candidate": "new.jsonl"})


def parse(html: str) -> Tree:
    t = Tree()
    t.feed(html)
    t.close()
    assert t.stack == [], f"unclosed tags {t.stack}"
    return t


def test_html_is_well_formed_and_self_contained(page):
    t = parse(page)
    assert page.startswith("<!DOCTYPE html>")
    assert {"html", "head", "style", "body", "table", "section"} <= t.tags
    assert not ({"script", "link", "img", "iframe"} & t.tags)
    assert t.urls == []
    assert "http://" not in page and "https://" not in page


def test_model_text_is_escaped(page):
    assert "<script>" not in page
    assert "&lt;script&gt;alert(&#x27;pwned&#x27;)&lt;/script&gt;" in page


def test_side_by_side_outputs_round_trip_through_the_diff(page, comp):
    t = parse(page)
    cand = read(GATE / "candidate.jsonl")
    base = read(GATE / "baseline.jsonl")
    for case in ("ja-apples-remaining", "ja-bat-and-ball", "en-first-president"):
        texts = t.outputs[case]
        assert texts[0] == base[case][0]["output"] and texts[1] == cand[case][0]["output"], case
        assert texts[2] == DOC[case][0]["output"]  # the write-up's output
    sec = page[page.index('id="case-ja-apples-remaining"'):]
    sec = sec[: sec.index("</section>")]
    assert 'class="sbs"' in sec and "<del>5</del>" in sec and "<ins>2</ins>" in sec
    assert "regression" in sec and "output changed" in sec


def test_sections_and_callouts(page):
    for heading in ("What changed", "Capability matrix", "Known failures and XPASSes", "Cases", "Provenance"):
        assert f"<h2>{heading}</h2>" in page
    assert "1 regression against the baseline" in page
    assert "ja-bat-and-ball.answer" in page and "XPASS" in page  # strict XPASS called out
    assert "The document&#x27;s model wrote" in page  # a known failure's reason
    assert "NVIDIA H100 80GB HBM3" in page and "transcribed from the source write-up" in page  # both provenances
    assert "new case" in page and "missing case" in page


def test_report_without_baseline(comp):
    one = compare.compare(SUITE, None, read(GATE / "candidate.jsonl"))
    html = report.html_report(one)
    parse(html)
    assert "No baseline given" in html and "What changed" not in html and "<th>Baseline</th>" not in html
    md = report.markdown_summary(one)
    assert "no baseline given" in md and "`ja-apples-remaining` | `answer`" in md


def test_char_diff_of_japanese():
    left, right = report.diff_html("残りのりんごは3個です。", "残りのりんごは2個です。")
    assert left == "残りのりんごは<del>3</del>個です。" and right == "残りのりんごは<ins>2</ins>個です。"
    left, right = report.diff_html("<b>", "<i>")
    assert "<b>" not in left and "&lt;" in left and "<i>" not in right


def test_markdown_summary(comp):
    md = report.markdown_summary(comp, {"baseline": "old.jsonl", "candidate": "new.jsonl"}, "out.html")
    assert md.startswith("## shisa-spec · shisa-7b-v1-document")
    assert "❌ 1 regression" in md and "| `ja-apples-remaining` | `answer` | regression | pass 1/1 (1 sample: no interval) | fail 0/1 (1 sample: no interval):" in md
    assert "リンゴを2個取り除いた後" in md and "リンゴを5個取り除いた後" in md  # both outputs of the regression
    assert "New cases: `ja-json-format`" in md and "Missing cases: `en-cookie-mystery`" in md
    assert "XPASS" in md and "`ja-bat-and-ball.eos`" in md
    assert "<script>" not in md.split("```")[0]


def test_cli_report_writes_html_and_markdown(tmp_path, capsys):
    out = tmp_path / "out.html"
    rc = cli.main(["report", "--baseline", str(GATE / "baseline.jsonl"), "--candidate", str(GATE / "candidate.jsonl"), "--out", str(out)])
    assert rc == 0 and out.exists() and (tmp_path / "out.md").exists()
    assert "1 regression(s), 2 improvement(s)" in capsys.readouterr().out
    assert report.markdown_path("r.md").name == "r.md.md"


def test_cli_report_bad_transcript_is_one_line(tmp_path, capsys):
    bad = tmp_path / "bad.jsonl"
    bad.write_text("{not json\n", encoding="utf-8")
    assert cli.main(["report", "--candidate", str(bad), "--out", str(tmp_path / "o.html")]) == 2
    assert "bad.jsonl:1" in capsys.readouterr().err


@pytest.mark.skipif(shutil.which("chromium") is None, reason="chromium not installed (apt-get install chromium): cannot render the report headless")
def test_report_renders_in_headless_chromium(tmp_path, page):
    html = tmp_path / "report.html"
    html.write_text(page, encoding="utf-8")
    res = subprocess.run([sys.executable, str(ROOT / "tools" / "render_report.py"), str(html), "--dump-dom"],
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    dom = res.stdout
    assert "<h2>Capability matrix</h2>" in dom and "ja-apples-remaining" in dom
    assert "リンゴを<ins>2</ins>個取り除いた後" in dom
    assert "&lt;script&gt;alert" in dom and "<script>alert" not in dom
