"""The prepared memo: a run served from the cache needs neither the tokenizer nor torch."""

import os
import shutil

from shisa_spec.generation import loader
from shisa_spec.generation.cache import GenerationCache
from shisa_spec.generation.prepared import Memo, memo_key
from shisa_spec.generation.store import OutputStore, RunOptions
from shisa_spec.spec.cases import FIXTURES, load_suite

SUITE = load_suite()


def test_memo_key_follows_the_model_files_and_options(tmp_path):
    model = tmp_path / "m"
    shutil.copytree(FIXTURES / "tiny-shisa", model)
    opts = loader.LoadOptions(model=str(model), device="cpu")
    key = memo_key(opts)
    assert key and key == memo_key(opts)
    assert memo_key(loader.LoadOptions(model=str(model), device="cpu", dtype="bf16")) != key
    assert memo_key(loader.LoadOptions(model="augmxnt/shisa-7b-v1", device="cpu")) is None  # hub ids: no memo
    cfg = model / "tokenizer_config.json"
    st = cfg.stat()
    os.utime(cfg, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    assert memo_key(opts) != key


def test_a_cached_run_uses_the_memo_instead_of_the_tokenizer(tmp_path):
    opts = loader.LoadOptions(model=str(FIXTURES / "tiny-shisa"), device="cpu")
    loaded = loader.load(opts)
    calls = []

    def prepare():
        calls.append("prepare")
        return loader.Prepared(loaded.tokenizer, opts, loaded.provenance)

    def store():
        cache = GenerationCache(tmp_path / "cache")
        return OutputStore(SUITE, [c.id for c in SUITE.cases[:3]], prepare=prepare, load=lambda p: loaded,
                           options=RunOptions(), cache=cache, memo=Memo(cache.root, memo_key(opts)))

    first = store()
    a = {c.id: first.get(c.id)[0] for c in SUITE.cases[:3]}
    assert calls == ["prepare"] and first.loaded is not None
    second = store()
    b = {c.id: second.get(c.id)[0] for c in SUITE.cases[:3]}
    assert calls == ["prepare"] and second.loaded is None and second.prepared is None  # neither tokenizer nor weights
    for cid in a:
        assert b[cid]["from_cache"] and b[cid]["output"] == a[cid]["output"]
        assert b[cid]["rendered_prompt"] == a[cid]["rendered_prompt"] and b[cid]["provenance"] == a[cid]["provenance"]
