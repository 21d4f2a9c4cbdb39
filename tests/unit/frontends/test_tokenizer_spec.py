"""The tokenizer spec's machinery: snapshots, chars/token, profile validation, and the --update-snapshots flow."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from shisa_spec.spec import snapshots
from shisa_spec.frontends import tokenizer_spec as ts

ROOT = Path(__file__).resolve().parents[3]
TOKENIZER_SPEC = ROOT / "tests" / "spec" / "test_tokenizer.py"
TINY_SNAPSHOT = ROOT / "fixtures" / "snapshots" / "tiny-shisa.json"

OLD = {"ids": [1, 10, 11, 12], "pieces": ["<s>", "▁a", "b", "c"]}


# --- check_snapshot -----------------------------------------------------------------------------


def test_missing_entry_is_written_and_fails_then_passes(tmp_path):
    path = tmp_path / "p.json"
    with pytest.raises(snapshots.SnapshotMissing, match=r"'case-a/prompt' was missing .* written now; review it"):
        snapshots.check_snapshot(path, "case-a/prompt", OLD, header={"profile": "p"})
    data = json.loads(path.read_text(encoding="utf-8"))
    assert data["profile"] == "p" and data["entries"]["case-a/prompt"] == OLD
    assert snapshots.check_snapshot(path, "case-a/prompt", OLD) == "unchanged"


def test_missing_entry_with_update_is_added_and_passes(tmp_path):
    path = tmp_path / "p.json"
    assert snapshots.check_snapshot(path, "k", OLD, update=True) == "added"
    assert snapshots.check_snapshot(path, "k", OLD) == "unchanged"


def test_changed_id_names_case_and_first_differing_token(tmp_path):
    path = tmp_path / "p.json"
    snapshots.check_snapshot(path, "ja-apples/prompt", OLD, update=True)
    new = {"ids": [1, 10, 99, 12], "pieces": ["<s>", "▁a", "bc", "c"]}
    with pytest.raises(snapshots.SnapshotMismatch) as e:
        snapshots.check_snapshot(path, "ja-apples/prompt", new, label="tiny-shisa")
    msg = str(e.value)
    assert msg.startswith("tiny-shisa: snapshot 'ja-apples/prompt' changed: ")
    assert "first differing token at index 2: old id 11 'b' -> new id 99 'bc' (4 -> 4 tokens)" in msg
    assert "--update-snapshots" in msg
    assert json.loads(path.read_text(encoding="utf-8"))["entries"]["ja-apples/prompt"] == OLD  # not overwritten


def test_shorter_ids_report_where_one_ends(tmp_path):
    path = tmp_path / "p.json"
    snapshots.check_snapshot(path, "k", OLD, update=True)
    with pytest.raises(snapshots.SnapshotMismatch, match=r"index 3: old id 12 'c' -> new: \(ends\) \(4 -> 3 tokens\)"):
        snapshots.check_snapshot(path, "k", {"ids": OLD["ids"][:3], "pieces": OLD["pieces"][:3]})


def test_changed_template_text_is_reported(tmp_path):
    path = tmp_path / "p.json"
    old = {"text": "<s>[INST] <<SYS>>\nP\n<</SYS>>\n\n", "ids": [1, 5], "pieces": ["<s>", "x"]}
    new = {"text": "<s>[INST] P [/INST]", "ids": [1, 6], "pieces": ["<s>", "y"]}
    snapshots.check_snapshot(path, "c/document", old, update=True)
    with pytest.raises(snapshots.SnapshotMismatch) as e:
        snapshots.check_snapshot(path, "c/document", new)
    assert "rendered text differs at character 10: old '<s>[INST] <<SYS>>\\nP\\n<</SY' -> new '<s>[INST] P [/INST]'" in str(e.value)
    assert "first differing token at index 1: old id 5 'x' -> new id 6 'y'" in str(e.value)


def test_update_rewrites_and_reports_the_change(tmp_path):
    path = tmp_path / "p.json"
    snapshots.check_snapshot(path, "k", OLD, update=True)
    new = {"ids": [1, 10, 11, 13], "pieces": ["<s>", "▁a", "b", "d"]}
    outcome = snapshots.check_snapshot(path, "k", new, update=True)
    assert outcome == "updated: first differing token at index 3: old id 12 'c' -> new id 13 'd' (4 -> 4 tokens)"
    assert snapshots.check_snapshot(path, "k", new) == "unchanged"


@pytest.mark.parametrize("text, what", [
    ('{"entries": {"k": {"ids": [1, 2]}', "corrupt snapshot file: Expecting ',' delimiter at line 1"),
    ("[1, 2]", "not a snapshot file"),
    ('{"entries": {"k": {"ids": "1 2"}}}', "entry 'k' is malformed"),
])
def test_unusable_file_is_one_clear_error_and_not_overwritten(tmp_path, text, what):
    path = tmp_path / "p.json"
    path.write_text(text, encoding="utf-8")
    for update in (False, True):
        with pytest.raises(snapshots.SnapshotError) as e:
            snapshots.check_snapshot(path, "k", OLD, update=update)
        msg = str(e.value)
        assert msg.startswith(f"{path}: ") and what in msg and "\n" not in msg
        assert "--update-snapshots" in msg
    assert path.read_text(encoding="utf-8") == text


def test_unused_and_remove(tmp_path):
    path = tmp_path / "p.json"
    for key in ("a/prompt", "gone/prompt", "gone/chat"):
        snapshots.check_snapshot(path, key, OLD, update=True)
    assert snapshots.unused(path, ["a/prompt"]) == ["gone/chat", "gone/prompt"]
    assert snapshots.remove(path, ["gone/chat", "gone/prompt"]) == ["gone/chat", "gone/prompt"]
    assert snapshots.unused(path, ["a/prompt"]) == []
    assert snapshots.unused(tmp_path / "none.json", ["a"]) == []


def test_dumps_is_stable_json():
    data = {"format": 1, "entries": {"b": {"ids": [1], "pieces": ["<s>"]}, "a": {"text": "日本", "ids": [], "pieces": []}}}
    text = snapshots.dumps(data)
    assert json.loads(text) == data
    assert text.index('"a"') < text.index('"b"') and "日本" in text
    assert snapshots.dumps(json.loads(text)) == text


def test_shipped_snapshot_covers_every_case_and_kind():
    from shisa_spec.spec.cases import load_suite

    keys = set(json.loads(TINY_SNAPSHOT.read_text(encoding="utf-8"))["entries"])
    assert keys == set(ts.snapshot_keys([c.id for c in load_suite().cases]))


# --- chars per token ---------------------------------------------------------------------------


class FakeTokenizer:
    def __call__(self, text, add_special_tokens=True):
        ids = [1] if add_special_tokens else []
        return {"input_ids": ids + [len(w) for w in text.split()]}


def test_chars_per_token_excludes_special_tokens():
    assert ts.chars_per_token(FakeTokenizer(), "ab cd ef") == pytest.approx(8 / 3)
    assert ts.chars_per_token(FakeTokenizer(), "") == 0.0


def test_tiny_tokenizer_figures():
    tok = ts.load_tokenizer("fixtures/tiny-shisa")
    ja = ts.chars_per_token(tok, (ROOT / "fixtures/corpus/ja.txt").read_text(encoding="utf-8"))
    en = ts.chars_per_token(tok, (ROOT / "fixtures/corpus/en.txt").read_text(encoding="utf-8"))
    assert (round(ja, 2), round(en, 2)) == (1.46, 2.98)


def test_efficiency_failure_messages():
    assert ts.efficiency_failure("ja", 2.31, 2.0) is None
    assert ts.efficiency_failure("ja", 1.9, 2.0) == "ja: 1.900 chars/token, below the profile's minimum 2.0"
    assert ts.efficiency_failure("ja", 2.27, 2.0, baseline=2.31, max_drop=0.02) is None  # 1.7% drop
    msg = ts.efficiency_failure("ja", 2.20, 2.0, baseline=2.31, max_drop=0.02, baseline_name="old/tok")
    assert msg == "ja: 2.200 chars/token against 2.310 for old/tok: a drop of 4.8%, more than the allowed 2.0%"


# --- profiles ----------------------------------------------------------------------------------


def test_shipped_profiles_load():
    profiles = {p.name: p for p in map(ts.load_profile, ts.profile_paths())}
    assert set(profiles) >= {"shisa-7b-v1", "tiny-shisa"}
    assert profiles["shisa-7b-v1"].tokenizer == "augmxnt/shisa-7b-v1"
    assert profiles["shisa-7b-v1"].efficiency["ja"][1] == 2.0 and profiles["shisa-7b-v1"].max_drop == 0.02
    assert profiles["tiny-shisa"].efficiency["ja"][1] < 1.46 and profiles["tiny-shisa"].efficiency["en"][1] < 2.98


def _profile(tmp_path, edit) -> Path:
    data = ts.load_profile(ts.PROFILES_DIR / "tiny-shisa.yaml").raw
    data = json.loads(json.dumps(data))
    edit(data)
    p = tmp_path / "bad.yaml"
    import yaml

    p.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    return p


@pytest.mark.parametrize("edit, field, what", [
    (lambda d: d.pop("tokenizer"), "(top level)", "'tokenizer' is a required property"),
    (lambda d: d["efficiency"]["ja"].update(min_chars_per_token="2"), "efficiency.ja.min_chars_per_token", "is not of type 'number'"),
    (lambda d: d.update(max_drop=5), "max_drop", "greater than the maximum of 1"),
    (lambda d: d["special_tokens"]["bos"].pop("id"), "special_tokens.bos", "'id' is a required property"),
    (lambda d: d["template_quirks"][1]["messages"][0].update(role="tool"), "template_quirks[1].messages[0].role", "is not one of"),
    (lambda d: d["known_lossy"][0].update(pattern="(unclosed"), "known_lossy[0].pattern", "is not a 'regex'"),
    (lambda d: d["known_lossy"][1].update(id="leading-space"), "known_lossy[1].id", "duplicate id 'leading-space'"),
    (lambda d: d["efficiency"]["ja"].update(corpus="fixtures/corpus/nope.txt"), "efficiency.ja.corpus", "no such file"),
    (lambda d: d.update(thresholds={}), "(top level)", "Additional properties are not allowed ('thresholds'"),
])
def test_profile_errors_name_file_and_field(tmp_path, edit, field, what):
    path = _profile(tmp_path, edit)
    with pytest.raises(ts.ProfileError) as e:
        ts.load_profile(path)
    msg = str(e.value)
    assert msg.startswith(f"{path}: field {field}: ") and what in msg, msg


def test_profile_yaml_error(tmp_path):
    p = tmp_path / "x.yaml"
    p.write_text("name: [unclosed\n", encoding="utf-8")
    with pytest.raises(ts.ProfileError, match=r"x.yaml: YAML syntax error at line 2"):
        ts.load_profile(p)


def test_unknown_profile_name():
    with pytest.raises(ts.ProfileError, match=r"--tokenizer-profile nope: no such profile \(known: .*tiny-shisa"):
        ts.find_profile("nope")


def test_availability():
    assert ts.availability("fixtures/tiny-shisa", None) is None
    assert ts.availability("fixtures/no-such-dir/", None) == "tokenizer directory fixtures/no-such-dir/ does not exist"
    why = ts.availability("nobody-here/no-such-model-xyz", None)
    assert why.startswith("nobody-here/no-such-model-xyz tokenizer not in the local Hugging Face cache; pass --tokenizer-profile")


# --- the spec module run by pytest: drift, --update-snapshots, unused entries ------------------


@pytest.fixture
def tok_pytester(pytester: pytest.Pytester) -> pytest.Pytester:
    pytester.makefile(".ini", pytest="[pytest]\nmarkers =\n    tokenizer: t\nxfail_strict = true\n")
    pytester.makepyfile(test_tokenizer=TOKENIZER_SPEC.read_text(encoding="utf-8"))
    return pytester


def test_update_snapshots_flow(tok_pytester, tmp_path):
    # Inline runs (fast): transformers and the tokenizer are loaded here first, so the runs import
    # nothing new (an inline run drops what it imports, and torch cannot be imported twice).
    ts.load_tokenizer("fixtures/tiny-shisa")
    import shisa_spec.frontends.pytest_plugin  # noqa: F401
    snaps = tmp_path / "snaps"
    snaps.mkdir()
    path = snaps / "tiny-shisa.json"
    shutil.copy(TINY_SNAPSHOT, path)
    data = json.loads(path.read_text(encoding="utf-8"))
    entry = data["entries"]["ja-apples-remaining/prompt"]
    old_id, old_piece = entry["ids"][2], entry["pieces"][2]
    entry["ids"][2] = 7
    data["entries"]["removed-case/chat"] = {"ids": [1], "pieces": ["<s>"]}
    path.write_text(snapshots.dumps(data), encoding="utf-8")
    args = ["-p", "shisa_spec.frontends.pytest_plugin", "-p", "no:cacheprovider", "-rA", "--tokenizer-profile", "tiny-shisa",
            "--snapshot-dir", str(snaps), "-k", "test_snapshot and (ja-apples-remaining or unused)"]

    # one run: one entry changed (fails, naming the token), one unused entry (a warning line)
    run = tok_pytester.runpytest(*args)
    run.assert_outcomes(passed=3, failed=1)
    out = run.stdout.str()
    assert (f"tiny-shisa: snapshot 'ja-apples-remaining/prompt' changed: first differing token at index 2: "
            f"old id 7 {old_piece!r} -> new id {old_id} {old_piece!r}") in out
    assert "WARNING shisa-spec snapshots: 1 unused entry in" in out and "removed-case/chat" in out

    run = tok_pytester.runpytest(*args, "--update-snapshots")
    run.assert_outcomes(passed=4)
    out = run.stdout.str()
    assert "shisa-spec snapshots: 2 entries written" in out
    assert "tiny-shisa ja-apples-remaining/prompt: updated: first differing token at index 2" in out
    assert "tiny-shisa removed-case/chat: removed (unused)" in out
    assert json.loads(path.read_text(encoding="utf-8")) == json.loads(TINY_SNAPSHOT.read_text(encoding="utf-8"))
