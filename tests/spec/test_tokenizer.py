"""The tokenizer and chat-template spec: one set of tests per tokenizer profile (fixtures/tokenizers/).

Needs tokenizer files only (CPU, no model); runs in the default ``pytest``. Without
``--tokenizer-profile``, every profile whose tokenizer is available locally runs (tiny-shisa
always; shisa-7b-v1 when it is in the local Hugging Face cache) and the others skip with a reason.

- round trip: decode(encode(text)) == text for the corpus, the spec prompts and generated text;
  the profile's known lossy inputs are strict xfails;
- efficiency: chars/token on the corpus against the profile's floor (and ``--baseline-tokenizer``);
- drift: token ids and rendered templates against fixtures/snapshots/<profile>.json
  (``--update-snapshots`` accepts a change);
- the chat template's behaviour, quirks included, and the special tokens.
"""

from __future__ import annotations

import copy
import re

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from shisa_spec.generation import loader
from shisa_spec.spec import snapshots
from shisa_spec.frontends import tokenizer_spec as ts
from shisa_spec.spec.cases import DEFAULT_CASES, load_suite

pytestmark = pytest.mark.tokenizer

SUITE = load_suite(DEFAULT_CASES)
CASE_IDS = [c.id for c in SUITE.cases]


def _param(target: ts.Target, *rest, id_: str = "", marks=()):
    marks = list(marks)
    if target.unavailable:
        marks.append(pytest.mark.skip(reason=target.unavailable))
    pid = target.name + (f"-{id_}" if id_ else "")
    return pytest.param(target, *rest, id=pid, marks=marks)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "target" not in metafunc.fixturenames:
        return
    targets = ts.targets(metafunc.config)
    names = [n for n in metafunc.fixturenames if n in ("lang", "case_id", "kind", "lossy", "quirk")]
    rows = []
    for t in targets:
        if names == ["lang"]:
            rows += [_param(t, lang, id_=lang) for lang in t.profile.efficiency]
        elif names == ["case_id"]:
            rows += [_param(t, c, id_=c) for c in CASE_IDS]
        elif names == ["case_id", "kind"]:
            rows += [_param(t, c, k, id_=f"{c}/{k}") for c in CASE_IDS for k in ts.SNAPSHOT_KINDS]
        elif names == ["lossy"]:
            rows += [_param(t, e, id_=e["id"], marks=[pytest.mark.xfail(strict=True, reason=e["reason"])])
                     for e in t.profile.known_lossy]
        elif names == ["quirk"]:
            rows += [_param(t, q, id_=q["id"]) for q in t.profile.template_quirks]
        else:
            rows.append(_param(t))
    metafunc.parametrize(["target", *names], rows)


def _round_trip_failures(tok, texts):
    bad = [(t, ts.round_trip(tok, t)) for t in texts]
    return [f"{t!r} -> {back!r}" for t, back in bad if back != t]


# --- round trip -------------------------------------------------------------------------------


def test_round_trip_corpus(target, lang):
    tok = target.tokenizer()
    text = target.profile.efficiency[lang][0].read_text(encoding="utf-8")
    failures = _round_trip_failures(tok, [line for line in text.split("\n") if line] + [text])
    assert not failures, f"{len(failures)} corpus text(s) do not round-trip:\n" + "\n".join(f[:300] for f in failures[:5])


def test_round_trip_prompt(target, case_id):
    tok = target.tokenizer()
    prompt = SUITE.case(case_id).prompt
    assert ts.round_trip(tok, prompt) == prompt


def test_round_trip_known_lossy(target, lossy):
    """Strict xfail: the profile says this input does not survive; an XPASS means it now does."""
    tok = target.tokenizer()
    assert ts.round_trip(tok, lossy["text"]) == lossy["text"]


_ALPHABET = st.one_of(
    st.characters(min_codepoint=0x3041, max_codepoint=0x30FF),  # hiragana, katakana
    st.characters(min_codepoint=0x4E00, max_codepoint=0x9FFF),  # CJK ideographs
    st.characters(min_codepoint=0xFF01, max_codepoint=0xFF9F),  # full-width forms, half-width kana
    st.characters(min_codepoint=0x1F300, max_codepoint=0x1FAFF),  # emoji
    st.characters(min_codepoint=0x0300, max_codepoint=0x036F),  # combining marks
    st.characters(min_codepoint=0x20, max_codepoint=0x7E),  # ASCII
    st.sampled_from("\n\t\u3000、。「」ー\u200d\ufe0f"),
)


@settings(max_examples=200, deadline=None, derandomize=True, database=None)
@given(text=st.text(alphabet=_ALPHABET, max_size=40))
def test_round_trip_generated(target, text):
    for lossy in target.profile.known_lossy:
        assume(not re.search(lossy["pattern"], text))
    tok = target.tokenizer()
    assert ts.round_trip(tok, text) == text


# --- efficiency -------------------------------------------------------------------------------


def test_chars_per_token(target, lang, request, record_property):
    corpus, minimum = target.profile.efficiency[lang]
    text = corpus.read_text(encoding="utf-8")
    measured = ts.chars_per_token(target.tokenizer(), text)
    baseline = None
    base_name = request.config.option.shisa_baseline_tokenizer
    if base_name:
        why = ts.availability(base_name, None)
        if why:
            pytest.fail(f"--baseline-tokenizer: {why}", pytrace=False)
        baseline = ts.chars_per_token(ts.load_tokenizer(base_name, None, target.trust_remote_code), text)
    record_property("chars_per_token", {"profile": target.name, "lang": lang, "measured": measured, "baseline": baseline})
    problem = ts.efficiency_failure(lang, measured, minimum, baseline, target.profile.max_drop, base_name or "baseline")
    if problem:
        pytest.fail(f"{target.name} ({corpus.name}): {problem}", pytrace=False)


# --- drift snapshots --------------------------------------------------------------------------


@pytest.fixture
def snapshot_report(request):
    return ts.report(request.config)


def test_snapshot(target, case_id, kind, request, snapshot_report):
    value = ts.snapshot_value(target.tokenizer(), SUITE.case(case_id).prompt, kind)
    key = f"{case_id}/{kind}"
    try:
        outcome = snapshots.check_snapshot(
            target.snapshot_path, key, value, update=request.config.option.shisa_update_snapshots,
            header=target.snapshot_header(), label=target.name,
        )
    except (snapshots.SnapshotError, snapshots.SnapshotMismatch, snapshots.SnapshotMissing) as e:
        pytest.fail(str(e), pytrace=False)
    snapshot_report.outcomes.append((target.name, key, outcome))


def test_snapshot_unused_entries(target, request, snapshot_report):
    """Entries for cases no longer in the case file: a warning line (removed by --update-snapshots)."""
    path = target.snapshot_path
    try:
        unused = snapshots.unused(path, ts.snapshot_keys(CASE_IDS))
        if unused and request.config.option.shisa_update_snapshots:
            for key in snapshots.remove(path, unused):
                snapshot_report.outcomes.append((target.name, key, "removed (unused)"))
            return
    except snapshots.SnapshotError as e:
        pytest.fail(str(e), pytrace=False)
    if unused:
        snapshot_report.unused.append((target.name, str(path), unused))


# --- chat template and special tokens ---------------------------------------------------------


def test_chat_template(target, quirk):
    tok = target.tokenizer()
    got = tok.apply_chat_template(quirk["messages"], add_generation_prompt=quirk.get("add_generation_prompt", True), tokenize=False)
    assert got == quirk["expected"], (
        f"{target.name}: chat template renders {quirk['id']} differently from the profile "
        f"(a changed or fixed template; update template_quirks in {target.profile.path.name} if intended)\n"
        f"expected {quirk['expected']!r}\ngot      {got!r}" + (f"\nnote: {quirk['note']}" if quirk.get("note") else "")
    )


def test_special_tokens(target):
    tok = target.tokenizer()
    spec = target.profile.special_tokens
    for role in ("bos", "eos", "unk"):
        if role in spec:
            assert (getattr(tok, f"{role}_token"), getattr(tok, f"{role}_token_id")) == (spec[role]["token"], spec[role]["id"]), role
    if spec["pad"] is None:
        assert tok.pad_token is None and tok.pad_token_id is None, f"expected no pad token, got {tok.pad_token!r}"
    else:
        assert (tok.pad_token, tok.pad_token_id) == (spec["pad"]["token"], spec["pad"]["id"])
    ids = tok("りんご")["input_ids"]
    assert (ids[:1] == [tok.bos_token_id]) is spec["bos_added_by_encode"], f"plain encode gave {ids}"
    assert tok.eos_token_id not in ids


def test_harness_padding(target):
    """The harness pads left with unk where the tokenizer has no pad token (loader._prepare_tokenizer)."""
    tok = copy.deepcopy(target.tokenizer())
    loader._prepare_tokenizer(tok)
    expected = target.profile.special_tokens["pad"] or target.profile.special_tokens.get("unk") or target.profile.special_tokens["eos"]
    assert tok.padding_side == "left"
    assert (tok.pad_token, tok.pad_token_id) == (expected["token"], expected["id"])
