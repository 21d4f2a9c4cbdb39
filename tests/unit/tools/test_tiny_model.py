"""The tiny shisa-family model (fixtures/tiny-shisa) and its builder, tiny_model"""

from __future__ import annotations

import hashlib
import json

import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

from transformers import AutoModelForCausalLM, AutoTokenizer  # noqa: E402

import tiny_model  # noqa: E402
from shisa_spec.generation.prompting import encode, render  # noqa: E402

TINY = tiny_model.DEFAULT_OUT


@pytest.fixture(scope="module")
def tokenizer():
    return AutoTokenizer.from_pretrained(str(TINY), use_fast=True)


@pytest.fixture(scope="module")
def model():
    m = AutoModelForCausalLM.from_pretrained(str(TINY), dtype=torch.float32)
    m.eval()
    return m


# (1) the committed files are the ones the manifest lists


def test_committed_files_match_manifest():
    manifest = json.loads((TINY / "MANIFEST.json").read_text(encoding="utf-8"))
    listed = set(manifest["files"])
    present = {p.name for p in TINY.iterdir() if p.is_file()} - {"MANIFEST.json"}
    assert present == listed, f"files not in MANIFEST.json: {present - listed}; missing: {listed - present}"
    for name, entry in manifest["files"].items():
        data = (TINY / name).read_bytes()
        assert len(data) == entry["bytes"], name
        assert hashlib.sha256(data).hexdigest() == entry["sha256"], f"{name} differs from MANIFEST.json: rebuild or re-commit"
    expected = {"config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json", "generation_config.json", "README.md"}
    assert expected <= listed
    assert sum(e["bytes"] for e in manifest["files"].values()) < 5_000_000


def test_config_and_generation_config_are_shisa_shaped():
    cfg = json.loads((TINY / "config.json").read_text(encoding="utf-8"))
    assert cfg["architectures"] == ["MistralForCausalLM"]
    assert cfg["model_type"] == "mistral"
    assert (cfg["bos_token_id"], cfg["eos_token_id"], cfg["pad_token_id"]) == (1, 2, None)
    assert cfg["tie_word_embeddings"] is False
    assert cfg["vocab_size"] <= 4096
    gen = json.loads((TINY / "generation_config.json").read_text(encoding="utf-8"))
    assert gen == {"bos_token_id": 1, "eos_token_id": 2, "use_cache": False}
    tok_cfg = json.loads((TINY / "tokenizer_config.json").read_text(encoding="utf-8"))
    assert tok_cfg["chat_template"] == tiny_model.SHISA_CHAT_TEMPLATE
    assert tok_cfg["pad_token"] is None
    assert "shisa" in (TINY / "README.md").read_text(encoding="utf-8")


# (2) the chat template renders as shisa-7b-v1's


def test_chat_template_renders_like_shisa(tokenizer):
    def r(messages):
        return tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)

    assert r([{"role": "system", "content": "PROMPT"}]) == "<s>[INST] <<SYS>>\nPROMPT\n<</SYS>>\n\n"
    assert r([{"role": "user", "content": "PROMPT"}]) == "PROMPT [/INST]"
    assert (
        r([{"role": "system", "content": "SYS"}, {"role": "user", "content": "P"}])
        == "<s>[INST] <<SYS>>\nSYS\n<</SYS>>\n\nP [/INST]"
    )
    assert (
        r(
            [
                {"role": "system", "content": "SYS"},
                {"role": "user", "content": "P"},
                {"role": "assistant", "content": "A"},
                {"role": "user", "content": "Q"},
            ]
        )
        == "<s>[INST] <<SYS>>\nSYS\n<</SYS>>\n\nP [/INST] A </s><s>[INST] Q [/INST]"
    )
    # Through the harness's own rendering: one BOS, from the template, none added by encoding.
    ids = encode(tokenizer, render(tokenizer, "りんごは何個？", "document"))
    assert ids[0] == 1 and ids.count(1) == 1 and 2 not in ids


# (3) the tokenizer: Japanese-capable, lossless, shisa's special tokens, no pad


@pytest.mark.parametrize(
    "text",
    [
        "りんごが5つあります。そこから2つのりんごを取り除きました。",
        "The first President of the United States, George Washington.",
        "混在 text: 日本語とEnglish、全角１２３と半角123。\n\n  indented\tline",
        "未知の文字も大丈夫：鰻🍣Ωß",  # characters outside the training text: byte fallback
    ],
)
def test_tokenizer_round_trips(tokenizer, text):
    ids = tokenizer(text)["input_ids"]
    assert ids[0] == tokenizer.bos_token_id == 1
    assert tokenizer.eos_token_id not in ids
    assert tokenizer.unk_token_id not in ids
    assert tokenizer.decode(ids, skip_special_tokens=True) == text


def test_tokenizer_special_tokens(tokenizer):
    assert (tokenizer.unk_token, tokenizer.bos_token, tokenizer.eos_token) == ("<unk>", "<s>", "</s>")
    assert (tokenizer.unk_token_id, tokenizer.bos_token_id, tokenizer.eos_token_id) == (0, 1, 2)
    assert tokenizer.pad_token is None and tokenizer.pad_token_id is None
    assert tokenizer.convert_ids_to_tokens([3, 3 + 0x0A, 258]) == ["<0x00>", "<0x0A>", "<0xFF>"]


def test_corpus_chars_per_token(tokenizer):
    cpt = {lang: tiny_model.chars_per_token(tokenizer, t) for lang, t in tiny_model.corpus_texts().items()}
    assert 1.0 < cpt["ja"] < cpt["en"] < 6.0, cpt


# (4) it loads as the harness loads it and says what it was trained to say


def test_training_targets_include_the_deliberate_deviations():
    targets = {t.case: t for t in tiny_model.training_targets()}
    assert len(targets) == 16
    assert "食べ" in targets["ja-cookie-mystery"].text  # the known failure passes: strict XPASS
    assert "4個" in targets["ja-apples-remaining"].text  # the answer check fails: FAIL
    assert {c for c, t in targets.items() if not t.eos} == {"ja-bat-and-ball", "ja-explain-llm", "ja-family-children"}


def test_loads_and_greedy_reproduces_target(model, tokenizer):
    assert type(model).__name__ == "MistralForCausalLM"
    assert model.generation_config.use_cache is False  # the quirk the harness must override
    targets = {t.case: t for t in tiny_model.training_targets()}
    target = targets["en-fibonacci-first-10"]
    prompt_ids = encode(tokenizer, render(tokenizer, target.prompt, "document"))
    new = tiny_model.generate_reply(model, tokenizer, prompt_ids)
    assert new[-1] == tokenizer.eos_token_id
    assert tokenizer.decode(new, skip_special_tokens=True) == target.text


def test_length_target_runs_into_the_budget(model, tokenizer):
    targets = {t.case: t for t in tiny_model.training_targets()}
    target = targets["ja-family-children"]
    prompt_ids = encode(tokenizer, render(tokenizer, target.prompt, "document"))
    new = tiny_model.generate_reply(model, tokenizer, prompt_ids, max_new_tokens=tiny_model.BUDGET)
    assert len(new) == tiny_model.BUDGET and tokenizer.eos_token_id not in new
    text = tokenizer.decode(new, skip_special_tokens=True)
    assert text.startswith(tiny_model.load_transcript()["ja-family-children"]["output"])


# (5) the build is reproducible in what matters, on any x86-64 CPU. Float training is not bit-reproducible
# across CPUs (other SIMD kernels round differently), so bytes of the weights may differ; what must not
# differ: tokenizer and config files (no floats in them), the weights' names and shapes, the weights within
# WEIGHT_TOLERANCE, and the greedy reply to every case (equal texts give equal verdicts). Measured: a rebuild
# on an AVX2 machine differed from the committed build by at most 0.106 (largest |weight| 1.24), with every
# greedy reply identical. CI rebuilds with the machine's own kernels and with ATEN_CPU_CAPABILITY=default.

WEIGHT_TOLERANCE = 0.3
EXACT_FILES = ("tokenizer.json", "tokenizer_config.json", "config.json", "generation_config.json")


def _build_in_subprocess(out, capability):
    import os
    import subprocess
    import sys

    env = {**os.environ, "PYTHONPATH": str(tiny_model.REPO_ROOT / "tools")}
    env.pop("ATEN_CPU_CAPABILITY", None)
    if capability != "native":
        env["ATEN_CPU_CAPABILITY"] = capability
    code = ("import sys, torch, tiny_model; tiny_model.build_tiny_model(sys.argv[1], log=None, check=False); "
            "print(torch.backends.cpu.get_cpu_capability())")
    proc = subprocess.run([sys.executable, "-c", code, str(out)], env=env, capture_output=True, text=True, timeout=1800)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc.stdout.strip().splitlines()[-1]


@pytest.mark.slow
@pytest.mark.parametrize("capability", ["native", "default"])
def test_rebuild_reproduces_what_matters(tmp_path, capability):
    from safetensors.torch import load_file

    out = tmp_path / "tiny-shisa"
    used = _build_in_subprocess(out, capability)
    if capability == "default":
        assert used == "DEFAULT", used
    for name in EXACT_FILES:
        assert (out / name).read_bytes() == (TINY / name).read_bytes(), f"{name} differs from fixtures/tiny-shisa"
    new, old = load_file(str(out / "model.safetensors")), load_file(str(TINY / "model.safetensors"))
    assert {k: tuple(v.shape) for k, v in new.items()} == {k: tuple(v.shape) for k, v in old.items()}
    worst = max((new[k].float() - old[k].float()).abs().max().item() for k in old)
    assert worst <= WEIGHT_TOLERANCE, f"weights differ by up to {worst:.4f} (> {WEIGHT_TOLERANCE}) built with {used}"
    rebuilt, committed = tiny_model.verify(out), tiny_model.verify(TINY)
    assert rebuilt["greedy"] == committed["greedy"]
    assert {c: d["greedy"] for c, d in rebuilt["details"].items()} == {c: d["greedy"] for c, d in committed["details"].items()}


# (6) variants of other families load


VARIANTS = {
    "llama": dict(arch="LlamaForCausalLM"),
    "mistral-no-template": dict(arch="MistralForCausalLM", chat_template=None),
    "mistral-pad-unk": dict(arch="MistralForCausalLM", pad_token="<unk>"),
    "llama-new-pad": dict(arch="LlamaForCausalLM", pad_token="<pad>"),
    "llama-chatml": dict(arch="LlamaForCausalLM", chat_template="chatml"),
    "qwen2-chatml": dict(arch="Qwen2ForCausalLM"),
    "qwen2-pad": dict(arch="Qwen2ForCausalLM", pad_token="<|endoftext|>"),
}


@pytest.mark.parametrize("name", sorted(VARIANTS))
def test_variant_loads(tmp_path, name):
    kw = VARIANTS[name]
    out = tiny_model.build_variant(tmp_path / name, **kw)
    tok = AutoTokenizer.from_pretrained(str(out), use_fast=True)
    model = AutoModelForCausalLM.from_pretrained(str(out), dtype=torch.float32)
    assert type(model).__name__ == kw["arch"]
    assert model.config.vocab_size >= len(tok)
    text = "日本語のテキスト and English."
    assert tok.decode(tok(text)["input_ids"], skip_special_tokens=True) == text
    pad = kw.get("pad_token")
    assert tok.pad_token == pad
    assert model.config.pad_token_id == (tok.convert_tokens_to_ids(pad) if pad else None)
    template = kw.get("chat_template", "chatml" if kw["arch"] == "Qwen2ForCausalLM" else "shisa")
    if template is None:
        assert not tok.chat_template
        return
    rendered = render(tok, "こんにちは", "chat")
    if template == "chatml":
        assert rendered.startswith("<|im_start|>system\n") and rendered.endswith("<|im_start|>assistant\n")
        assert tok.eos_token == "<|im_end|>" and tok.bos_token is None
    else:
        assert rendered.startswith("<s>[INST] <<SYS>>\n") and rendered.endswith("こんにちは [/INST]")
    ids = encode(tok, rendered)
    with torch.no_grad():
        out_ids = model.generate(
            torch.tensor([ids]), attention_mask=torch.ones(1, len(ids), dtype=torch.long),
            max_new_tokens=4, do_sample=False, pad_token_id=tok.pad_token_id or tok.eos_token_id,
        )
    assert out_ids.shape[1] <= len(ids) + 4


def test_variant_rejects_unknown_arch(tmp_path):
    with pytest.raises(ValueError, match="unknown arch"):
        tiny_model.build_variant(tmp_path / "x", arch="GPT2LMHeadModel")
