"""The generation cache: keyed by everything that changes an output; corrupt entries are regenerated, never fatal."""

import json

import pytest

from shisa_spec.generation.cache import KEY_FIELDS, CacheWarning, GenerationCache, cache_key, default_dir

PROV = {k: f"v-{k}" for k in KEY_FIELDS} | {"device": "cuda:0", "seconds": 1.0}
SETTINGS = {"max_new_tokens": 256, "temperature": 0.3}


def key(**changes):
    prov = {**PROV, **changes.pop("prov", {})}
    args = {"rendered": "<s>[INST] <<SYS>>\nP\n<</SYS>>\n\n", "settings": SETTINGS, "seed": 1, "extra": {"engine": "1"}, **changes}
    return cache_key(prov, args["rendered"], args["settings"], args["seed"], args["extra"])


def test_key_changes_with_everything_that_can_change_an_output():
    base = key()
    assert key() == base
    changed = [key(prov={f: "other"}) for f in KEY_FIELDS]
    changed += [key(rendered="x"), key(settings={**SETTINGS, "temperature": 0.5}), key(seed=2), key(extra={"engine": "2"})]
    changed += [key(prov={"device": "cpu"})]
    assert base not in changed and len(set(changed)) == len(changed)


def test_key_ignores_what_cannot_change_an_output():
    assert key(prov={"seconds": 99.0, "device": "cuda:1"}) == key()  # timings and which GPU index


def test_put_then_get(tmp_path):
    c = GenerationCache(tmp_path)
    k = key()
    assert c.get(k) is None and c.misses == 1
    c.put(k, {"case": "a", "output": "答え", "finish_reason": "eos"})
    assert c.get(k)["output"] == "答え" and c.hits == 1
    assert not list(tmp_path.rglob("*.tmp"))  # atomic writes leave no temporary files


@pytest.mark.parametrize("content", ["{not json", '{"key": "wrong", "output": "x", "finish_reason": "eos"}', "", '{"key": "K"}', "[]"])
def test_corrupt_entry_warns_and_misses(tmp_path, content):
    c = GenerationCache(tmp_path)
    k = key()
    c.put(k, {"case": "a", "output": "x", "finish_reason": "eos"})
    path = next(tmp_path.rglob(f"{k}.json"))
    path.write_text(content.replace("K", k), encoding="utf-8")
    with pytest.warns(CacheWarning, match="ignoring corrupt cache entry"):
        assert c.get(k) is None
    c.put(k, {"case": "a", "output": "y", "finish_reason": "length"})  # regenerated entry replaces it
    assert c.get(k)["output"] == "y"


def test_refresh_misses_but_still_writes(tmp_path):
    GenerationCache(tmp_path).put(key(), {"case": "a", "output": "x", "finish_reason": "eos"})
    c = GenerationCache(tmp_path, refresh=True)
    assert c.get(key()) is None
    c.put(key(), {"case": "a", "output": "z", "finish_reason": "eos"})
    assert json.loads(next(tmp_path.rglob("*.json")).read_text(encoding="utf-8"))["output"] == "z"


def test_default_dir_follows_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("SHISA_SPEC_CACHE", str(tmp_path / "a"))
    assert default_dir() == tmp_path / "a"
    monkeypatch.delenv("SHISA_SPEC_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "x"))
    assert default_dir() == tmp_path / "x" / "shisa-spec"
