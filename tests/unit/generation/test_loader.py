"""Loading: other checkpoints, and one clear line for every mistake a user can make."""

import pytest
import torch

from shisa_spec.generation import loader
from shisa_spec.spec.cases import FIXTURES
from shisa_spec.generation.engine import Engine, GenerationOOM, Request
from shisa_spec.spec.cases import GenerationSettings
from shisa_spec.generation.prompting import TemplateError, render
from tiny_model import build_variant

TINY = FIXTURES / "tiny-shisa"


def load(path, **kw):
    return loader.load(loader.LoadOptions(model=str(path), device="cpu", **kw))


def test_tiny_shisa_loads_with_unk_as_pad_and_left_padding():
    m = load(TINY)
    assert m.tokenizer.pad_token == "<unk>" and m.tokenizer.padding_side == "left"
    assert m.provenance["dtype"] == "float32" and m.provenance["chat_template"]
    assert m.model.generation_config.use_cache is False  # shisa's quirk; Engine passes use_cache=True


@pytest.mark.parametrize("arch, template", [("LlamaForCausalLM", "shisa"), ("Qwen2ForCausalLM", "chatml")])
def test_other_architectures_and_templates_render_and_generate(tmp_path, arch, template):
    m = load(build_variant(tmp_path / "m", arch=arch, chat_template=template))
    text = render(m.tokenizer, "こんにちは", "chat")
    assert ("<|im_start|>user" in text) if template == "chatml" else text.endswith("こんにちは [/INST]")
    res = Engine(m).generate([Request("c", text, GenerationSettings(max_new_tokens=4), 1)])
    assert res[("c", 0)].finish_reason in ("eos", "length")


def test_existing_pad_token_is_kept(tmp_path):
    m = load(build_variant(tmp_path / "m", arch="LlamaForCausalLM", pad_token="<pad>"))
    assert m.tokenizer.pad_token == "<pad>"


def test_model_without_chat_template_is_one_clear_error(tmp_path):
    m = load(build_variant(tmp_path / "m", arch="LlamaForCausalLM", chat_template=None))
    with pytest.raises(TemplateError, match="has no chat template: add one to tokenizer_config.json"):
        render(m.tokenizer, "hi", "document")


@pytest.mark.parametrize("make, message", [
    (lambda p: p.mkdir() or p, "not a model directory (no config.json)"),
    (lambda p: (p.write_text("x"), p)[1], "is a file, not a model directory"),
    (lambda p: (p.mkdir(), (p / "config.json").write_text("{}"), (p / "pytorch_model.bin").write_text(""))[0] or p,
     "no .safetensors weights (only .bin weights"),
])
def test_not_a_model_is_one_line(tmp_path, make, message):
    path = make(tmp_path / "thing")
    with pytest.raises(loader.ModelLoadError, match=message.replace("(", r"\(").replace(")", r"\)")) as e:
        load(path)
    assert "\n" not in str(e.value)


def test_missing_model_offline_names_it_and_how_to_point_at_a_copy(monkeypatch, tmp_path):
    import huggingface_hub.constants as hf_constants

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(hf_constants, "HF_HUB_OFFLINE", True)  # read at import time; patch the live value too
    monkeypatch.setenv("HF_HOME", str(tmp_path))
    with pytest.raises(loader.ModelLoadError) as e:
        load("augmxnt/shisa-7b-v1")
    msg = str(e.value)
    assert "\n" not in msg and "'augmxnt/shisa-7b-v1'" in msg and "--model DIR" in msg and "HF_HUB_OFFLINE=1" in msg


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the no-CUDA message")
@pytest.mark.parametrize("kw, why", [({"device": "cuda"}, "--device cuda"), ({"quantize": "4bit"}, "--quantize 4bit")])
def test_cuda_required_is_one_line(kw, why):
    opts = {"model": str(TINY), "device": "cpu", **kw}
    with pytest.raises(loader.NoCudaError, match=f"{why} needs CUDA"):
        loader.load(loader.LoadOptions(**opts))


def test_quantize_without_bitsandbytes_is_one_line(monkeypatch):
    import builtins

    real = builtins.__import__

    def fake(name, *a, **k):
        if name == "bitsandbytes":
            raise ImportError("No module named 'bitsandbytes'")
        return real(name, *a, **k)

    monkeypatch.setattr(builtins, "__import__", fake)
    with pytest.raises(loader.ModelLoadError, match=r"--quantize 8bit needs bitsandbytes.*pip install 'shisa-spec\[quant\]'"):
        loader._quantization_config("8bit", torch.bfloat16)


def test_out_of_memory_while_loading_names_size_free_memory_and_what_to_try(monkeypatch):
    from transformers import AutoModelForCausalLM

    def oom(*a, **k):
        raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")

    monkeypatch.setattr(AutoModelForCausalLM, "from_pretrained", oom)
    with pytest.raises(loader.ModelLoadError) as e:
        load(TINY)
    msg = str(e.value)
    size = sum(f.stat().st_size for f in TINY.glob("*.safetensors"))
    assert f"({size} bytes)" in msg and "GPU free memory" in msg and "--quantize 8bit" in msg and "\n" not in msg


def test_out_of_memory_while_generating_suggests_a_smaller_batch(monkeypatch):
    m = load(TINY)

    def oom(*a, **k):
        raise torch.cuda.OutOfMemoryError("CUDA out of memory")

    monkeypatch.setattr(m.model, "generate", oom)
    with pytest.raises(GenerationOOM, match=r"while generating a batch of 1: model weights .* bytes\).*--batch-size 4"):
        Engine(m).generate([Request("c", "x", GenerationSettings(max_new_tokens=2), 1)])


def test_layer_placement_counts_modules_per_device():
    assert loader.layer_placement({"model.embed_tokens": 0, "model.layers.0": 0, "model.layers.1": 1, "lm_head": "cpu"}) == {"0": 2, "1": 1, "cpu": 1}


def test_prepare_describes_the_run_without_reading_weights(monkeypatch):
    from transformers import AutoModelForCausalLM

    def no_weights(*a, **k):
        raise AssertionError("prepare() must not load the model")

    monkeypatch.setattr(AutoModelForCausalLM, "from_pretrained", no_weights)
    p = loader.prepare(loader.LoadOptions(model=str(TINY), device="cpu"))
    assert p.tokenizer.pad_token == "<unk>"
    assert p.provenance["weights"] and p.provenance["device"] == "cpu" and p.provenance["commit"] is None
    monkeypatch.undo()
    assert load(TINY).provenance == p.provenance  # the cache key is the same before and after loading
