"""Reports of a comparison: a self-contained HTML page (no external resources) and a Markdown summary.

The page is for people deciding on a model upgrade: a verdict, what changed (with each check's k/N,
95% interval and p-value), the suite-level paired difference and the gate's simulated false-alarm and
detection rates, the capability matrix, known failures and XPASSes, every case's prompt and outputs
(the write-up's, the baseline's and the candidate's, sample 0 side by side with character-level
differences highlighted, and every sample's text one click away), and provenance. All model text is escaped.
"""

from __future__ import annotations

import datetime as _dt
import difflib
import json
from html import escape
from pathlib import Path
from typing import Any

from shisa_spec.spec.cases import FIXTURES
from shisa_spec.gate.compare import IMPROVEMENT, MISSING, NEW, REGRESSION, CaseResult, CheckResult, Comparison, Records
from shisa_spec.verdicts import stats
from shisa_spec.generation.transcript import TranscriptError
from shisa_spec.generation.transcript import read as read_transcript

DEFAULT_DOCUMENT = FIXTURES / "transcripts" / "document.jsonl"

OUTCOME_LABEL = {"pass": "pass", "fail": "fail", "xfail": "known failure", "xpass": "XPASS", None: "—"}
OUTCOME_ICON = {"pass": "✓", "fail": "✗", "xfail": "≈", "xpass": "!", None: ""}
CHANGE_LABEL = {REGRESSION: "regression", IMPROVEMENT: "improvement", NEW: "new case", MISSING: "missing case",
                "unchanged-pass": "", "unchanged-fail": ""}


def short(text: str, limit: int = 300) -> str:
    """Text cut to ``limit`` characters, saying how much was left out."""
    return text if len(text) <= limit else text[:limit] + f"… [{len(text) - limit} more chars]"


def load_document(path: str | Path | None = DEFAULT_DOCUMENT) -> Records | None:
    """The write-up's transcript, or None when there is none at ``path``."""
    if path is None:
        return None
    try:
        return read_transcript(path)
    except TranscriptError:
        return None


# ---------------------------------------------------------------- diff


def _segments(a: str, b: str) -> list[tuple[str, str, str]]:
    """(tag, a-part, b-part) runs of a character-level diff; tiny equal runs between changes are folded in."""
    sm = difflib.SequenceMatcher(None, a, b, autojunk=False)
    if a and b and sm.ratio() < 0.25:
        return [("replace", a, b)]
    segs = [(tag, a[i1:i2], b[j1:j2]) for tag, i1, i2, j1, j2 in sm.get_opcodes()]
    for n in range(1, len(segs) - 1):
        tag, x, _ = segs[n]
        if tag == "equal" and len(x) < 3 and segs[n - 1][0] != "equal" and segs[n + 1][0] != "equal":
            segs[n] = ("replace", x, x)
    merged: list[tuple[str, str, str]] = []
    for seg in segs:
        if merged and seg[0] != "equal" and merged[-1][0] != "equal":
            merged[-1] = ("replace", merged[-1][1] + seg[1], merged[-1][2] + seg[2])
        else:
            merged.append(seg)
    return merged


def diff_html(a: str, b: str) -> tuple[str, str]:
    """Escaped HTML of both texts: removed runs in <del> on the left, added runs in <ins> on the right."""
    left, right = [], []
    for tag, x, y in _segments(a, b):
        if tag == "equal":
            left.append(escape(x))
            right.append(escape(y))
            continue
        if x:
            left.append(f"<del>{escape(x)}</del>")
        if y:
            right.append(f"<ins>{escape(y)}</ins>")
    return "".join(left), "".join(right)


# ---------------------------------------------------------------- HTML pieces

CSS = """
:root{--ink:#1f2330;--muted:#667085;--line:#e4e7ec;--bg:#f6f7f9;--card:#fff;
--pass:#107a43;--pass-bg:#e3f6ea;--fail:#b42318;--fail-bg:#fde8e7;--xfail:#8a5a00;--xfail-bg:#fdf2d0;
--xpass:#6b2fb3;--xpass-bg:#f0e6fc;--none:#98a2b3;--ins:#c9f0d6;--del:#ffd3cf}
*{box-sizing:border-box}
body{margin:0;background:var(--bg);color:var(--ink);font:14px/1.55 system-ui,-apple-system,"Segoe UI",
"Hiragino Sans","Noto Sans CJK JP","Noto Sans JP","Yu Gothic",Meiryo,sans-serif}
main{max-width:1320px;margin:0 auto;padding:28px 32px 64px}
h1{font-size:24px;margin:0 0 4px}h2{font-size:18px;margin:36px 0 12px;padding-bottom:6px;border-bottom:2px solid var(--line)}
h3{font-size:16px;margin:0}
a{color:#2454c5;text-decoration:none}a:hover{text-decoration:underline}
code,.mono{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,"Noto Sans Mono CJK JP",monospace;font-size:12.5px}
.sub{color:var(--muted);margin:0 0 18px}
.banner{border-radius:10px;padding:14px 18px;font-size:16px;font-weight:600;margin:16px 0}
.banner.bad{background:var(--fail-bg);color:var(--fail);border:1px solid #f5b5b0}
.banner.good{background:var(--pass-bg);color:var(--pass);border:1px solid #a6dfbb}
.banner.info{background:#e8eefc;color:#1d3f8f;border:1px solid #b9c9f2}
.cards{display:grid;grid-template-columns:repeat(auto-fit,minmax(128px,1fr));gap:10px}
.card{background:var(--card);border:1px solid var(--line);border-radius:10px;padding:10px 14px}
.card b{display:block;font-size:22px}.card span{color:var(--muted);font-size:12px}
.card.bad b{color:var(--fail)}.card.good b{color:var(--pass)}.card.warn b{color:var(--xpass)}
table{border-collapse:collapse;width:100%;background:var(--card);border:1px solid var(--line);border-radius:10px;overflow:hidden}
th,td{padding:6px 10px;border-bottom:1px solid var(--line);text-align:left;vertical-align:top}
th{background:#f0f2f5;font-size:12px;text-transform:uppercase;letter-spacing:.04em;color:#475467}
tr:last-child td{border-bottom:0}
td.case{font-weight:600;background:#fafbfc;border-right:1px solid var(--line)}
tr.regression td:not(.case){background:#fff4f3}tr.improvement td:not(.case){background:#f1fbf4}
.b{display:inline-block;border-radius:999px;padding:1px 9px;font-size:12px;font-weight:600;white-space:nowrap}
.b.pass{background:var(--pass-bg);color:var(--pass)}.b.fail{background:var(--fail-bg);color:var(--fail)}
.b.xfail{background:var(--xfail-bg);color:var(--xfail)}.b.xpass{background:var(--xpass-bg);color:var(--xpass)}
.b.none{background:#f2f4f7;color:var(--none)}
.b.regression{background:var(--fail);color:#fff}.b.improvement{background:var(--pass);color:#fff}
.b.new,.b.missing{background:#475467;color:#fff}.b.changed{background:#2454c5;color:#fff}
.detail{color:var(--muted);font-size:12.5px}
.rate{font-size:12.5px;font-variant-numeric:tabular-nums}
.case-box{background:var(--card);border:1px solid var(--line);border-radius:12px;padding:16px 18px;margin:16px 0}
.case-box.regression{border-left:5px solid var(--fail)}.case-box.improvement{border-left:5px solid var(--pass)}
.case-head{display:flex;gap:8px;align-items:center;flex-wrap:wrap;margin-bottom:10px}
.case-head .meta{color:var(--muted);font-size:12.5px}
.label{font-size:12px;font-weight:600;color:#475467;text-transform:uppercase;letter-spacing:.04em;margin:12px 0 4px}
pre{margin:0;white-space:pre-wrap;word-break:break-word;overflow-wrap:anywhere;font:13px/1.6 ui-monospace,SFMono-Regular,
Menlo,Consolas,"Noto Sans Mono CJK JP","Noto Sans CJK JP",monospace}
.prompt{background:#f4f6fb;border:1px solid #dde3f0;border-radius:8px;padding:10px 12px}
.sbs{display:grid;grid-template-columns:1fr 1fr;gap:12px}
.out{border:1px solid var(--line);border-radius:8px;overflow:hidden;background:#fff}
.out .h{display:flex;justify-content:space-between;gap:8px;background:#f8f9fb;border-bottom:1px solid var(--line);
padding:5px 10px;font-size:12px;color:#475467;font-weight:600}
.out pre{padding:10px 12px}
.out .h .fin.changed{color:#2454c5}
td a,td code{white-space:nowrap}
.same{color:var(--muted);font-size:11.5px;margin-left:6px}
ins{background:var(--ins);text-decoration:none;border-radius:2px}
del{background:var(--del);text-decoration:line-through;text-decoration-color:#d92d20aa;border-radius:2px}
details>summary{cursor:pointer;color:#2454c5;font-size:13px;margin:10px 0 4px}
.checks td{font-size:13px}.checks{margin-top:6px}
.kv td:first-child{width:180px;color:#475467;font-weight:600}
.kv td{font-size:12.5px;overflow-wrap:anywhere}
.prov{display:grid;grid-template-columns:1fr 1fr;gap:14px}
ul.tight{margin:6px 0;padding-left:20px}
footer{color:var(--muted);font-size:12px;margin-top:40px}
"""


def _badge(outcome: str | None) -> str:
    cls = outcome or "none"
    return f'<span class="b {cls}">{OUTCOME_ICON[outcome]} {OUTCOME_LABEL[outcome]}</span>'


def _change_badge(status: str) -> str:
    label = CHANGE_LABEL.get(status, "")
    return f'<span class="b {status}">{label}</span>' if label else ""


def _anchor(case_id: str) -> str:
    return "case-" + escape(case_id)


def _verdict_cell(r: CheckResult, side: str, note: str = "") -> str:
    v = r.baseline if side == "baseline" else r.candidate
    if v is None:
        return _badge(None)
    rate = f'<div class="rate">{escape(r.rates(side))}</div>'
    return f'{_badge(r.outcome(side))}{rate}<div class="detail">{escape(v.detail)}{note}</div>'


def _verdict_cells(comp: Comparison, r: CheckResult) -> str:
    """Baseline and candidate cells of a check; one spanning cell when both runs got the same verdict."""
    if not comp.has_baseline:
        return f"<td>{_verdict_cell(r, 'candidate')}</td>"
    b, c = r.baseline, r.candidate
    if b is not None and c is not None and (b.k, b.n, b.detail) == (c.k, c.n, c.detail) and r.outcome("baseline") == r.outcome("candidate"):
        return f'<td colspan="2">{_verdict_cell(r, "candidate", "<span class=same>(same in both runs)</span>")}</td>'
    return f"<td>{_verdict_cell(r, 'baseline')}</td><td>{_verdict_cell(r, 'candidate')}</td>"


def _cards(comp: Comparison) -> str:
    cand = comp.tally("candidate")
    total = sum(cand.values())
    items = [("", f"{cand['pass'] + cand['xpass']}/{total}", "checks pass (candidate)")]
    if comp.has_baseline:
        base = comp.tally("baseline")
        items.append(("", f"{base['pass'] + base['xpass']}/{sum(base.values())}", "checks pass (baseline)"))
        items += [
            ("bad" if comp.regressions else "", str(len(comp.regressions)), "regressions"),
            ("good" if comp.improvements else "", str(len(comp.improvements)), "improvements"),
            ("", str(len(comp.changed_outputs)), "changed outputs"),
            ("", f"{len(comp.new_cases)} / {len(comp.missing_cases)}", "new / missing cases"),
        ]
    else:
        items.append(("bad" if cand["fail"] else "", str(cand["fail"]), "unexpected failures"))
    items += [("", str(cand["xfail"]), "known failures"), ("warn" if cand["xpass"] else "", str(cand["xpass"]), "XPASS (mark must go)")]
    return '<div class="cards">' + "".join(
        f'<div class="card {cls}"><b>{escape(v)}</b><span>{escape(k)}</span></div>' for cls, v, k in items) + "</div>"


def _banner(comp: Comparison) -> str:
    if comp.has_baseline:
        n = len(comp.regressions)
        if n:
            return f'<div class="banner bad">✗ {n} regression{"s" * (n != 1)} against the baseline: the candidate fails checks the baseline passed.</div>'
        return '<div class="banner good">✓ No regressions against the baseline.</div>'
    fails = comp.tally("candidate")["fail"]
    return f'<div class="banner info">No baseline given: this report shows one run. {fails} unexpected failure{"s" * (fails != 1)}.</div>'


def _changes(comp: Comparison) -> str:
    if not comp.has_baseline:
        return ""
    rows = []
    for r in comp.regressions + comp.improvements:
        rows.append(f'<tr class="{r.status}"><td><a href="#{_anchor(r.case)}">{escape(r.case)}</a></td><td><code>{escape(r.check)}</code></td>'
                    f'<td>{_change_badge(r.status)}</td><td>{_verdict_cell(r, "baseline")}</td><td>{_verdict_cell(r, "candidate")}</td>'
                    f'<td class="detail">{escape(r.test_text())}</td></tr>')
    body = ("<table><tr><th>Case</th><th>Check</th><th>Change</th><th>Baseline</th><th>Candidate</th><th>Test</th></tr>" + "".join(rows) + "</table>") if rows \
        else '<p class="detail">No check changed its verdict.</p>'
    extra = []
    changed = comp.changed_outputs
    if changed:
        extra.append("<li>Output changed: " + ", ".join(
            f'<a href="#{_anchor(c.case)}">{escape(c.case)}</a>'
            + (f' (finish {escape(c.baseline["finish_reason"])} → {escape(c.candidate["finish_reason"])})' if c.finish_changed else "")
            for c in changed) + "</li>")
    for label, cs in (("New cases (no baseline output)", comp.new_cases), ("Missing cases (no candidate output)", comp.missing_cases)):
        if cs:
            extra.append(f"<li>{label}: " + ", ".join(f'<a href="#{_anchor(c.case)}">{escape(c.case)}</a>' for c in cs) + "</li>")
    if comp.unknown:
        extra.append("<li>Records of cases the case file does not define (not judged): " + ", ".join(escape(u) for u in comp.unknown) + "</li>")
    return "<h2>What changed</h2>" + body + (f'<ul class="tight">{"".join(extra)}</ul>' if extra else "") + _statistics(comp)


def gate_simulation(comp: Comparison, sims: int = 2000) -> stats.GateSimulation | None:
    """The gate's false-alarm rate with both runs drawn from the baseline's observed rates, and its
    detection rate for one extra check falling from 0.9 to 0.3, at this comparison's size and N."""
    rows = [r for r in comp.checks() if r.baseline is not None and r.candidate is not None]
    ns = {r.baseline.n for r in rows} | {r.candidate.n for r in rows}
    if not rows or ns == {1} or len(ns) != 1:
        return None
    n = ns.pop()
    return stats.simulate_gate([r.baseline.k / n for r in rows], n, sims=sims, alpha=comp.alpha)


def statistics_lines(comp: Comparison) -> list[str]:
    """Plain-text lines on the suite-level difference and the gate's error rates (report, terminal)."""
    out = []
    if comp.difference is not None:
        out.append(comp.difference.summary())
    sim = gate_simulation(comp)
    if sim is not None:
        out.append(f"gate: one-sided Fisher per check, Holm over {sim.checks} checks, alpha {sim.alpha:g}; simulated "
                   f"({sim.sims} suites, N={sim.n}, both runs at the baseline's rates) false-alarm rate {sim.false_alarm:.3f}, "
                   f"detection of one check falling {sim.drop[0]:g} -> {sim.drop[1]:g}: {sim.detection:.3f}")
    return out


def _statistics(comp: Comparison) -> str:
    lines = statistics_lines(comp)
    return ('<div class="label">Statistics</div><ul class="tight">' + "".join(f"<li>{escape(x)}</li>" for x in lines) + "</ul>") if lines else ""


def _matrix(comp: Comparison) -> str:
    head = "<tr><th>Case</th><th>Check</th><th>Kind</th>" + ("<th>Baseline</th>" if comp.has_baseline else "") + "<th>Candidate</th>" \
        + ("<th>Change</th>" if comp.has_baseline else "<th>Detail</th>") + "</tr>"
    rows = []
    for c in comp.cases:
        for n, r in enumerate(c.checks):
            presence = _change_badge(c.presence) if comp.has_baseline and c.presence != "both" else ""
            case_cell = (f'<td class="case" rowspan="{len(c.checks)}"><a href="#{_anchor(c.case)}">{escape(c.case)}</a>'
                         f'<div class="detail">{escape(c.category)} · {escape(c.language)}</div>{presence}</td>') if n == 0 else ""
            cells = [case_cell, f"<td><code>{escape(r.check)}</code></td>", f'<td class="detail">{escape(r.kind)}</td>']
            if comp.has_baseline:
                cells.append(f"<td>{_badge(r.outcome('baseline'))}<div class='rate'>{escape(r.rates('baseline'))}</div></td>")
            cells.append(f"<td>{_badge(r.outcome('candidate'))}<div class='rate'>{escape(r.rates('candidate'))}</div></td>")
            if comp.has_baseline:
                cells.append(f"<td>{_change_badge(r.status) if c.presence == 'both' else ''}<div class='detail'>{escape(r.test_text())}</div></td>")
            else:
                cells.append(f'<td class="detail">{escape(r.candidate.detail)}</td>')
            rows.append(f'<tr class="{r.status}">' + "".join(cells) + "</tr>")
    legend = ('<p class="detail">' + " ".join(_badge(o) for o in ("pass", "fail", "xfail", "xpass")) +
              " — known failure: the case file marks the check as failing (strict xfail); XPASS: marked but passed, so the mark must go.</p>")
    return "<h2>Capability matrix</h2>" + legend + "<table>" + head + "".join(rows) + "</table>"


def _known(comp: Comparison) -> str:
    marked = [r for r in comp.checks() if r.known_failure is not None]
    if not marked:
        return "<h2>Known failures</h2><p class='detail'>The case file marks no check of these cases as a known failure.</p>"
    rows = "".join(
        f'<tr class="{"improvement" if r.outcome("candidate") == "xpass" else ""}"><td><a href="#{_anchor(r.case)}">{escape(r.case)}</a></td>'
        f"<td><code>{escape(r.check)}</code></td><td>{_badge(r.outcome('candidate'))}<div class='rate'>{escape(r.rates('candidate'))}</div></td>"
        f"<td class='detail'>{escape(r.known_rate or '—')}</td><td class='detail'>{escape(r.known_failure or '')}</td></tr>"
        for r in marked)
    xp = [r for r in marked if r.outcome("candidate") == "xpass"]
    note = (f'<p><span class="b xpass">! XPASS</span> {len(xp)} marked check{"s" * (len(xp) != 1)} now pass'
            " (strict: the spec run fails until the mark is removed, e.g. with <code>shisa-spec calibrate</code>): "
            + ", ".join(f"<code>{escape(r.id)}</code>" for r in xp) + "</p>") if xp else ""
    return ("<h2>Known failures and XPASSes</h2>" + note +
            "<table><tr><th>Case</th><th>Check</th><th>Candidate</th><th>Known rate</th><th>Reason in the case file</th></tr>" + rows + "</table>")


def _output_box(title: str, rec: dict[str, Any] | None, body: str | None = None, fin_changed: bool = False) -> str:
    if rec is None:
        return f'<div class="out"><div class="h"><span>{escape(title)}</span></div><pre class="detail">(no output)</pre></div>'
    fin = escape(rec["finish_reason"])
    return (f'<div class="out"><div class="h"><span>{escape(title)}</span><span class="fin{" changed" if fin_changed else ""}">'
            f'finish: {fin} · {len(rec["output"])} chars</span></div><pre>{body if body is not None else escape(rec["output"])}</pre></div>')


def _case_section(comp: Comparison, c: CaseResult, document: Records | None, labels: dict[str, str]) -> str:
    statuses = {r.status for r in c.checks}
    kind = REGRESSION if REGRESSION in statuses else IMPROVEMENT if IMPROVEMENT in statuses else ""
    badges = "".join(_change_badge(s) for s in (REGRESSION, IMPROVEMENT) if s in statuses)
    if comp.has_baseline and c.presence != "both":
        badges += _change_badge(c.presence)
    if c.text_changed:
        badges += '<span class="b changed">output changed</span>'
    head = (f'<div class="case-head"><h3>{escape(c.case)}</h3><span class="meta">{escape(c.category)} · {escape(c.language)}</span>{badges}</div>')
    rows = "".join(f"<tr><td><code>{escape(r.check)}</code> <span class='detail'>{escape(r.kind)}</span></td>{_verdict_cells(comp, r)}</tr>"
                   for r in c.checks)
    table = ('<table class="checks"><tr><th>Check</th>' + ("<th>Baseline</th>" if comp.has_baseline else "") + "<th>Candidate</th></tr>" + rows + "</table>")
    if comp.has_baseline:
        if c.presence == "both" and c.text_changed:
            left, right = diff_html(c.baseline["output"], c.candidate["output"])
        else:
            left = right = None
        outs = ('<div class="sbs">' + _output_box(f"Baseline · {labels['baseline']}", c.baseline, left, c.finish_changed)
                + _output_box(f"Candidate · {labels['candidate']}", c.candidate, right, c.finish_changed) + "</div>")
        if c.presence == "both" and not c.text_changed:
            outs = f'<details><summary>Outputs are identical{"" if not c.finish_changed else " (finish reason changed)"} — show</summary>{outs}</details>'
    else:
        outs = _output_box(f"Candidate · {labels['candidate']}", c.candidate)
    outs += _all_samples(c, labels)
    doc = ((document or {}).get(c.case) or [None])[0]
    doc_html = ""
    if doc is not None:
        same = [s for s, rec in (("baseline", c.baseline), ("candidate", c.candidate)) if rec is not None and rec["output"] == doc["output"]]
        note = f" (same text as the {' and '.join(same)})" if same else ""
        doc_html = f"<details><summary>The write-up's output{escape(note)}</summary>{_output_box('Document (source write-up)', doc)}</details>"
    return (f'<section class="case-box {kind}" id="{_anchor(c.case)}">{head}<div class="label">Prompt</div>'
            f'<pre class="prompt">{escape(c.prompt)}</pre><div class="label">Checks</div>{table}'
            f'<div class="label">Outputs</div>{outs}{doc_html}</section>')


def _all_samples(c: CaseResult, labels: dict[str, str]) -> str:
    """Every sample's text of each side, behind one click, with each check's verdict on it."""
    out = []
    for side, samples in (("baseline", c.baseline_samples), ("candidate", c.candidate_samples)):
        if len(samples) < 2:
            continue
        boxes = []
        for i, rec in enumerate(samples):
            marks = " ".join(f"{r.check} {'✓' if v.samples[i].passed else '✗'}" for r in c.checks
                             for v in [r.baseline if side == "baseline" else r.candidate] if v is not None)
            boxes.append(f'<details class="sample"><summary>sample {i} · {escape(marks)}</summary>'
                         f'{_output_box(f"{side.title()} sample {i}", rec)}</details>')
        out.append(f'<details><summary>All {len(samples)} {side} samples · {escape(labels[side])}</summary>{"".join(boxes)}</details>')
    return "".join(out)


def _kv(d: dict[str, Any]) -> str:
    def val(v: Any) -> str:
        return escape(v if isinstance(v, str) else json.dumps(v, ensure_ascii=False))
    return '<table class="kv">' + "".join(f"<tr><td>{escape(str(k))}</td><td class='mono'>{val(v)}</td></tr>" for k, v in d.items()) + "</table>"


def judge_text(j: dict[str, Any]) -> str:
    where = f" at {j['base_url']}" if j.get("base_url") else " (in process)"
    return f"{j['model']}{where}, judge prompt v{j['prompt_version']}, {j['replies']} replies"


def _provenance(comp: Comparison, labels: dict[str, str]) -> str:
    sides = ["baseline", "candidate"] if comp.has_baseline else ["candidate"]
    cols = []
    for side in sides:
        groups = comp.provenances(side)
        body = "".join(
            (f'<p class="detail">{len(cases)} case(s): {escape(", ".join(cases))}</p>' if len(groups) > 1 else "") + _kv(prov)
            for prov, cases in groups) or '<p class="detail">(no records)</p>'
        for j in comp.judges(side):
            body += f'<p class="detail">Judge (model-graded checks): {escape(judge_text(j))}</p>'
        cols.append(f'<div><div class="label">{escape(side.title())} · {escape(labels[side])}</div>{body}</div>')
    return '<h2>Provenance</h2><div class="prov">' + "".join(cols) + "</div>"


def html_report(comp: Comparison, document: Records | None = None, labels: dict[str, str] | None = None) -> str:
    """The whole page as one string (inline CSS, no scripts, no external resources)."""
    labels = {"baseline": "baseline", "candidate": "candidate", **(labels or {})}
    when = _dt.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z")
    sub = f"Candidate: <code>{escape(labels['candidate'])}</code>" + (
        f" · Baseline: <code>{escape(labels['baseline'])}</code>" if comp.has_baseline else "") + f" · {escape(when)}"
    cases = "".join(_case_section(comp, c, document, labels) for c in comp.cases)
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>shisa-spec report: {escape(comp.suite)}</title><style>{CSS}</style></head><body><main>"
        f"<h1>shisa-spec report · {escape(comp.suite)}</h1><p class='sub'>{sub}</p>"
        f"{_banner(comp)}{_cards(comp)}{_changes(comp)}{_matrix(comp)}{_known(comp)}<h2>Cases</h2>{cases}"
        f"{_provenance(comp, labels)}<footer>Generated by shisa-spec. Outputs are judged by the current case file; "
        "highlighted runs are character-level differences (removed on the left, added on the right).</footer></main></body></html>"
    )


# ---------------------------------------------------------------- Markdown


def _md(text: str) -> str:
    return text.replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ").replace("<", "&lt;").replace(">", "&gt;")


def _fence(text: str) -> str:
    """A fenced block whose fence is longer than any backtick run in the text."""
    n = 3
    while "`" * n in text:
        n += 1
    ticks = "`" * n
    return f"{ticks}text\n{text}\n{ticks}"


def markdown_summary(comp: Comparison, labels: dict[str, str] | None = None, html_path: str | None = None) -> str:
    """A short Markdown summary for a CI job summary: verdict, counts, changes, XPASSes."""
    labels = {"baseline": "baseline", "candidate": "candidate", **(labels or {})}
    cand = comp.tally("candidate")
    lines = [f"## shisa-spec · {comp.suite}", ""]
    if comp.has_baseline:
        n = len(comp.regressions)
        lines.append(f"**{'❌ ' + str(n) + ' regression' + 's' * (n != 1) if n else '✅ No regressions'}** against `{_md(labels['baseline'])}`")
        base = comp.tally("baseline")
        lines += ["", "| | baseline | candidate |", "|---|---:|---:|"]
        for key, label in (("pass", "pass"), ("fail", "fail"), ("xfail", "known failure"), ("xpass", "XPASS")):
            lines.append(f"| {label} | {base[key]} | {cand[key]} |")
        lines += ["", f"Regressions: {len(comp.regressions)} · improvements: {len(comp.improvements)} · changed outputs: "
                  f"{len(comp.changed_outputs)} · new cases: {len(comp.new_cases)} · missing cases: {len(comp.missing_cases)}"]
        changes = comp.regressions + comp.improvements
        if changes:
            lines += ["", "| case | check | change | baseline | candidate | test |", "|---|---|---|---|---|---|"]
            for r in changes:
                lines.append(f"| `{r.case}` | `{r.check}` | {CHANGE_LABEL[r.status]} | {OUTCOME_LABEL[r.outcome('baseline')]} {_md(r.rates('baseline'))} | "
                             f"{OUTCOME_LABEL[r.outcome('candidate')]} {_md(r.rates('candidate'))}: {_md(short(r.candidate.detail, 160))} | {_md(r.test_text())} |")
        stat = statistics_lines(comp)
        if stat:
            lines += [""] + [f"- {_md(x)}" for x in stat]
        for r in comp.regressions:
            c = comp.case(r.case)
            lines += ["", f"<details><summary>{_md(r.id)}: outputs</summary>", "", "Baseline:", "",
                      _fence(short(c.baseline["output"], 1500)), "", "Candidate:", "", _fence(short(c.candidate["output"], 1500)), "", "</details>"]
        for label, cs in (("Changed outputs", comp.changed_outputs), ("New cases", comp.new_cases), ("Missing cases", comp.missing_cases)):
            if cs:
                lines += ["", f"{label}: " + ", ".join(f"`{c.case}`" for c in cs)]
    else:
        lines += [f"Candidate `{_md(labels['candidate'])}`: {cand['pass']} pass, {cand['fail']} fail, "
                  f"{cand['xfail']} known failures, {cand['xpass']} XPASS (no baseline given)."]
        fails = [r for r in comp.checks() if r.outcome("candidate") == "fail"]
        if fails:
            lines += ["", "| case | check | pass rate | detail |", "|---|---|---|---|"] + [
                f"| `{r.case}` | `{r.check}` | {_md(r.rates('candidate'))} | {_md(short(r.candidate.detail, 160))} |" for r in fails]
    xp = [r for r in comp.checks() if r.outcome("candidate") == "xpass"]
    if xp:
        lines += ["", "XPASS (marked known failures that now pass; remove the marks): " + ", ".join(f"`{r.id}`" for r in xp)]
    for side in ("baseline", "candidate") if comp.has_baseline else ("candidate",):
        for j in comp.judges(side):
            lines += ["", f"Judge for the {side}'s model-graded checks: {_md(judge_text(j))}"]
    if html_path:
        lines += ["", f"Full report: `{_md(str(html_path))}`"]
    return "\n".join(lines) + "\n"


def markdown_path(html_path: str | Path) -> Path:
    p = Path(html_path)
    return p.with_suffix(".md") if p.suffix.lower() != ".md" else p.with_name(p.name + ".md")


def write(comp: Comparison, html_path: str | Path, document: Records | None = None, labels: dict[str, str] | None = None) -> tuple[Path, Path]:
    """Write the HTML page and, beside it, the Markdown summary (same name, suffix .md)."""
    p = Path(html_path)
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(html_report(comp, document, labels), encoding="utf-8")
    md = markdown_path(p)
    md.write_text(markdown_summary(comp, labels, str(p)), encoding="utf-8")
    return p, md
