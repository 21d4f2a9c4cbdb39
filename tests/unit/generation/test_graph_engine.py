"""The CUDA-graph engine's maths on CPU (no graphs there): same texts as transformers' generate()
with the shared sampler, batch invariance, the contract, the shared sampler's noise."""

import pytest
import torch

from shisa_spec.generation import loader, sampling
from shisa_spec.generation.engine import Engine, Request, case_seed, sample_seed
from shisa_spec.generation.graph_engine import GraphEngine, cache_len, unsupported
from shisa_spec.generation.prompting import render
from shisa_spec.generation.store import RunOptions
from shisa_spec.spec.cases import FIXTURES, GenerationSettings, load_suite
from tiny_model import build_variant

SUITE = load_suite()
HOT = GenerationSettings(max_new_tokens=24, temperature=1.0, top_p=0.95, repetition_penalty=1.15)


@pytest.fixture(scope="module")
def random_model(tmp_path_factory):
    path = build_variant(tmp_path_factory.mktemp("rnd") / "m", arch="MistralForCausalLM")
    return loader.load(loader.LoadOptions(model=str(path), device="cpu"))


@pytest.fixture(scope="module")
def tiny():
    return loader.load(loader.LoadOptions(model=str(FIXTURES / "tiny-shisa"), device="cpu"))


def requests(loaded, settings, samples=1):
    return [Request(c.id, render(loaded.tokenizer, c.prompt, "document"), settings, sample_seed(0, c.id, s), s)
            for c in SUITE.cases for s in range(samples)]


@pytest.mark.parametrize("which", ["tiny", "random", "random-greedy", "random-no-top-p"])
def test_same_texts_as_generate(which, tiny, random_model):
    loaded, settings = {
        "tiny": (tiny, GenerationSettings()),
        "random": (random_model, HOT),
        "random-greedy": (random_model, GenerationSettings(max_new_tokens=12, do_sample=False)),
        "random-no-top-p": (random_model, GenerationSettings(max_new_tokens=12, temperature=0.7, top_p=1.0)),
    }[which]
    reqs = requests(loaded, settings)
    ref = Engine(loaded, batch_size=16).generate(reqs)
    fast = GraphEngine(loaded, width=16).generate(reqs)
    assert fast.keys() == ref.keys()
    for r in reqs:
        a, b = ref[r.key], fast[r.key]
        assert (a.output, a.finish_reason, a.new_tokens, a.prompt_tokens) == (b.output, b.finish_reason, b.new_tokens, b.prompt_tokens), r.case_id
    if settings.do_sample:
        assert len({b.output for b in fast.values()}) > 8  # really sampled


def test_a_sample_is_the_same_alone_in_any_batch_and_order(random_model):
    reqs = requests(random_model, HOT, samples=2)
    full = GraphEngine(random_model, width=32).generate(list(reversed(reqs)))
    split = GraphEngine(random_model, width=32).generate(reqs[::3])
    for r in reqs[::3]:
        assert split[r.key].extra["tokens"] == full[r.key].extra["tokens"], r.key
    one = reqs[5]
    alone = GraphEngine(random_model, width=32).generate([one])
    assert alone[one.key].extra["tokens"] == full[one.key].extra["tokens"]
    assert full[reqs[0].key].output != full[reqs[1].key].output  # two samples of a case differ


def test_contract_batches_on_batch_and_forced_length(random_model):
    reqs = requests(random_model, HOT)[:5]
    seen = []
    eng = GraphEngine(random_model, width=2, min_new_tokens=HOT.max_new_tokens)
    res = eng.generate(reqs, on_batch=lambda done: seen.append([r.key for r in done]))
    assert eng.batches_run == 3 and [len(b) for b in seen] == [2, 2, 1]
    assert all(r.finish_reason == "length" and r.new_tokens == HOT.max_new_tokens for r in res.values())


def test_cache_length_comes_from_the_row_alone():
    assert cache_len(10, 256) == cache_len(256, 256) == 512 and cache_len(257, 256) == 1024


def test_unsupported_models_and_the_auto_choice(tmp_path):
    qwen = loader.load(loader.LoadOptions(model=str(build_variant(tmp_path / "q", arch="Qwen2ForCausalLM", chat_template="chatml")), device="cpu"))
    assert "qwen2" in unsupported(qwen) and qwen.provenance["graph_engine"] is False
    prov = {"device": "cuda:0", "graph_engine": True, "quantize": "none"}
    assert RunOptions().engine_kind(prov) == "graph"
    assert RunOptions().engine_kind({**prov, "device": "cpu"}) == "generate"  # CPU runs keep the reference by default
    assert RunOptions().engine_kind({**prov, "quantize": "4bit"}) == "generate"
    assert RunOptions(static_cache=True).engine_kind(prov) == RunOptions(engine="generate").engine_kind(prov) == "generate"
    assert RunOptions(engine="graph").engine_kind({**prov, "device": "cpu"}) == "graph"


def test_counter_noise_is_uniform_and_depends_on_seed_step_and_token():
    seeds = torch.tensor([[case_seed(0, "a")], [case_seed(0, "b")]])
    lo, hi = sampling.split_seeds(seeds)
    tokens = torch.arange(20000)
    u0 = sampling.uniform(lo, hi, torch.tensor(0), tokens)
    u1 = sampling.uniform(lo, hi, torch.tensor(1), tokens)
    assert u0.shape == (2, 20000) and 0 < float(u0.min()) and float(u0.max()) < 1
    assert abs(float(u0.mean()) - 0.5) < 0.01 and abs(float((u0 < 0.1).float().mean()) - 0.1) < 0.01
    assert not torch.equal(u0[0], u0[1]) and not torch.equal(u0, u1)
    assert torch.equal(u0, sampling.uniform(lo, hi, torch.tensor(0), tokens))
    # pinned: a change to the hash changes every sampled text (bump ENGINE_VERSION with it)
    assert float(sampling.uniform(torch.tensor(7), torch.tensor(0), torch.tensor(3), torch.tensor(11))) == PINNED


PINNED = 0.36191579699516296
