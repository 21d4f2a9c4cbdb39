"""The generation engine: per-row seeded sampling, batch invariance on CPU, and the sampler's maths."""

import pytest
import torch

from shisa_spec.generation import loader
from shisa_spec.spec.cases import GenerationSettings, load_suite
from shisa_spec.generation.engine import Engine, Request, RowSampler, case_seed, plan_batches
from shisa_spec.generation.prompting import render
from tiny_model import build_variant

SUITE = load_suite()
HOT = GenerationSettings(max_new_tokens=24, temperature=1.0, top_p=0.95, repetition_penalty=1.15)


@pytest.fixture(scope="module")
def random_model(tmp_path_factory):
    """An untrained Mistral of the tiny family: near-uniform next-token distributions, so any
    dependence on the batch or the seed shows up in the sampled text."""
    path = build_variant(tmp_path_factory.mktemp("rnd") / "m", arch="MistralForCausalLM")
    return loader.load(loader.LoadOptions(model=str(path), device="cpu"))


def requests(loaded, seed=0, settings=HOT):
    return [Request(c.id, render(loaded.tokenizer, c.prompt, "document"), settings, case_seed(seed, c.id)) for c in SUITE.cases]


def test_case_seed_is_stable_and_distinct():
    assert case_seed(0, "ja-bat-and-ball") == case_seed(0, "ja-bat-and-ball")
    assert case_seed(0, "ja-bat-and-ball") != case_seed(1, "ja-bat-and-ball")
    assert case_seed(0, "ja-bat-and-ball") != case_seed(0, "en-bat-and-ball")
    assert case_seed(0, "x") == 7975875460398960091  # pinned: a change alters every cached output


def test_batched_output_equals_batch_one_exactly(random_model):
    reqs = requests(random_model)
    batched = Engine(random_model, batch_size=16).generate(reqs)
    single = Engine(random_model, batch_size=1).generate(reqs)
    shuffled = Engine(random_model, batch_size=5).generate(list(reversed(reqs)))
    for r in reqs:
        assert batched[r.key].output == single[r.key].output == shuffled[r.key].output, r.case_id
    assert len({b.output for b in batched.values()}) > 8  # the texts are really sampled, not constant


def test_same_seed_repeats_and_another_seed_changes_the_samples(random_model):
    a = Engine(random_model).generate(requests(random_model, seed=0))
    b = Engine(random_model).generate(requests(random_model, seed=0))
    c = Engine(random_model).generate(requests(random_model, seed=1))
    assert {k: v.output for k, v in a.items()} == {k: v.output for k, v in b.items()}
    assert sum(a[k].output != c[k].output for k in a) >= 12


def test_finish_reason_and_token_counts(random_model):
    res = Engine(random_model).generate(requests(random_model, settings=GenerationSettings(max_new_tokens=3)))
    for r in res.values():
        assert r.finish_reason in ("eos", "length") and 1 <= r.new_tokens <= 3
    assert any(r.finish_reason == "length" for r in res.values())


def test_plan_batches_groups_equal_settings_in_stable_order():
    a, b = GenerationSettings(), GenerationSettings(max_new_tokens=8)
    reqs = [Request(f"c{i}", "", a if i % 2 else b, i) for i in range(7)]
    batches = plan_batches(reversed(reqs), 2)
    assert [[r.case_id for r in bt] for bt in batches] == [["c0", "c2"], ["c4", "c6"], ["c1", "c3"], ["c5"]]


def test_sampler_without_sampling_only_penalises_seen_tokens_of_the_row_itself():
    s = GenerationSettings(do_sample=False, repetition_penalty=2.0)
    scores = torch.tensor([[1.0, -1.0, 3.0, 0.5], [1.0, -1.0, 3.0, 0.5]])
    ids = torch.tensor([[0, 0, 1], [3, 3, 1]])  # row 1: two left pads (id 3)
    out = RowSampler([1, 2], [0, 2], s, "cpu")(ids, scores)
    assert out[0].tolist() == [0.5, -2.0, 3.0, 0.5]  # token 0 and 1 were seen
    assert out[1].tolist() == [1.0, -2.0, 3.0, 0.5]  # pad id 3 is not penalised, token 1 is


def test_sampler_top_p_never_picks_a_filtered_token_and_follows_the_distribution():
    s = GenerationSettings(temperature=1.0, top_p=0.9, repetition_penalty=1.0)
    logits = torch.log(torch.tensor([[0.6, 0.3, 0.07, 0.03]]))
    picks = []
    for seed in range(2000):
        out = RowSampler([seed], [0], s, "cpu")(torch.zeros(1, 1, dtype=torch.long), logits.clone())
        picks.append(int(out.argmax()))
    counts = [picks.count(i) for i in range(4)]
    assert counts[2] == counts[3] == 0  # outside the 0.9 nucleus
    assert abs(counts[0] / 2000 - 2 / 3) < 0.04 and abs(counts[1] / 2000 - 1 / 3) < 0.04


@pytest.mark.parametrize("which", ["random", "tiny"])
def test_static_cache_decode_loop_gives_generates_texts(random_model, which):
    """--static-cache on runs our own decode loop; on CPU it must reproduce generate()'s texts exactly."""
    if which == "tiny":
        loaded = loader.load(loader.LoadOptions(model=str(SUITE.path.parent.parent / "tiny-shisa"), device="cpu"))
        settings = GenerationSettings()
    else:
        loaded, settings = random_model, HOT
    reqs = requests(loaded, settings=settings)
    plain = Engine(loaded, batch_size=16).generate(reqs)
    looped = Engine(loaded, batch_size=16, static_cache=True).generate(reqs)
    for r in reqs:
        assert (plain[r.key].output, plain[r.key].finish_reason) == (looped[r.key].output, looped[r.key].finish_reason), r.case_id
    forced = Engine(loaded, batch_size=16, static_cache=True, min_new_tokens=settings.max_new_tokens).generate(reqs[:2])
    assert all(r.new_tokens == settings.max_new_tokens and r.finish_reason == "length" for r in forced.values())


def test_an_interrupted_run_keeps_the_batches_already_done(random_model, tmp_path, monkeypatch):
    from shisa_spec.generation.cache import GenerationCache
    from shisa_spec.generation.store import OutputStore, RunOptions

    suite = SUITE
    calls = []
    real = Engine._run_batch

    def interrupt_second_batch(self, batch):
        calls.append(len(batch))
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(self, batch)

    monkeypatch.setattr(Engine, "_run_batch", interrupt_second_batch)
    prepared = loader.Prepared(random_model.tokenizer, random_model.options, random_model.provenance)
    store = OutputStore(suite, [c.id for c in suite.cases], prepare=lambda: prepared, load=lambda p: random_model,
                        options=RunOptions(batch_size=8), cache=GenerationCache(tmp_path))
    with pytest.raises(KeyboardInterrupt):
        store.get(suite.cases[0].id)
    assert len(store.records) == 8  # the first batch is recorded for the transcript...
    assert len(list(tmp_path.rglob("*.json"))) == 8  # ...and cached, so the next run starts from it
