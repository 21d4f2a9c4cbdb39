"""A tiny model of shisa-7b-v1's family, built offline and deterministically, to test the harness.

The real model is a 7B MistralForCausalLM with a Japanese-extended Llama-style tokenizer and a
Llama-2 chat template. ``build_tiny_model`` writes a checkpoint with the same shape of
everything (architecture, special tokens, no pad token, chat template, the ``use_cache: false``
quirk of generation_config.json) but tiny config values (~2.3 MB), and trains it on CPU until it answers
each of the 16 document prompts with a fixed target (mostly the document's own outputs). An
end-to-end run of the spec against it then exercises every path of the harness in seconds.

It tests the harness, not the model: nothing it says means anything about shisa-7b-v1.

``build_variant`` quickly writes *untrained* tiny checkpoints of other families (Llama, Qwen2,
ChatML template, no template, a pad token) so loader tests can prove they work on other
checkpoints.

Determinism: the tokenizer, the weights and every file written depend only on the corpus, the
case file, the transcript and the code here. Training runs on one CPU thread with deterministic
algorithms, so two builds on the same machine and library versions give byte-identical files.
(Different CPUs or torch versions may round differently; the MANIFEST records what was built.)
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

import yaml

REPO_ROOT = Path(__file__).resolve().parent.parent
FIXTURES = REPO_ROOT / "fixtures"
CORPUS_DIR = FIXTURES / "corpus"
CASES_FILE = FIXTURES / "cases" / "shisa-7b-v1-document.yaml"
TRANSCRIPT_FILE = FIXTURES / "transcripts" / "document.jsonl"
DEFAULT_OUT = FIXTURES / "tiny-shisa"

# Same special tokens and ids as shisa-7b-v1 (and Mistral/Llama-2): no pad token at all.
UNK, BOS, EOS = "<unk>", "<s>", "</s>"
UNK_ID, BOS_ID, EOS_ID = 0, 1, 2
N_BYTE_TOKENS = 256  # <0x00>..<0xFF> at ids 3..258, as in Llama-family vocabularies (byte fallback)

# shisa-7b-v1's chat template, exactly as on its model card (Llama-2 style).
SHISA_CHAT_TEMPLATE = """{%- for idx in range(0, messages|length) -%}
{%- if messages[idx]['role'] == 'user' -%}
{%- if idx > 1 -%}
{{- bos_token + '[INST] ' + messages[idx]['content'] + ' [/INST]' -}}
{%- else -%}
{{- messages[idx]['content'] + ' [/INST]' -}}
{%- endif -%}
{% elif messages[idx]['role'] == 'system' %}
{{- bos_token + '[INST] <<SYS>>\\n' + messages[idx]['content'] + '\\n<</SYS>>\\n\\n' -}}
{%- elif messages[idx]['role'] == 'assistant' -%}
{{- ' '  + messages[idx]['content'] + ' ' + eos_token -}}
{% endif %}
{% endfor %}"""

# A ChatML template (Qwen2-style) for variants of another family.
CHATML_TEMPLATE = (
    "{%- for message in messages -%}"
    "{{- '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>\\n' -}}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}{{- '<|im_start|>assistant\\n' -}}{%- endif -%}"
)
CHATML_TOKENS = ("<|im_start|>", "<|im_end|>")

# shisa-7b-v1's generation_config.json, exactly: use_cache false is a quirk the harness must override.
GENERATION_CONFIG = {"bos_token_id": BOS_ID, "eos_token_id": EOS_ID, "use_cache": False}

VOCAB_SIZE = 4096  # upper bound; BPE stops earlier when no pair occurs twice
SEED = 1234
BUDGET = 256  # the document's max_new_tokens

# Mistral-7B's config with small values: 4096 -> 96 hidden, 32 -> 2 layers, 32/8 -> 4/2 heads.
TINY_CONFIG = {
    "hidden_size": 96,
    "intermediate_size": 256,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "head_dim": 24,
    "hidden_act": "silu",
    "max_position_embeddings": 32768,
    "rms_norm_eps": 1e-5,
    "rope_theta": 10000.0,
    "sliding_window": 4096,
    "initializer_range": 0.02,
    "tie_word_embeddings": False,
    "bos_token_id": BOS_ID,
    "eos_token_id": EOS_ID,
    "pad_token_id": None,
    "use_cache": True,
}

# ---------------------------------------------------------------------------------------------
# Training targets
#
# The tiny model is trained to give, for each of the 16 prompts (document style), the document's
# own output (fixtures/transcripts/document.jsonl), so an end-to-end run reproduces the
# document's verdicts, known failures included (they XFAIL). Two deliberate deviations make that
# run show *every* outcome the harness can report, not just pass and xfail:
#
# - ja-cookie-mystery answers correctly, so its known failure `taro-ate-it` passes: a strict
#   XPASS, which must fail the run and tell the reader to drop the known failure.
# - ja-apples-remaining answers 4 instead of 3, so its `answer` check fails with no known failure
#   to excuse it: a plain FAIL.
TARGET_OVERRIDES: dict[str, str] = {
    "ja-cookie-mystery": "太郎がクッキーを食べた可能性が高いです。",
    "ja-apples-remaining": "残りのりんごは4個です。",
}

# The three outputs the document cut at 256 tokens (finish_reason "length") are trained WITHOUT
# an eos, so the model keeps going and hits the token budget. Our tokenizer is not shisa's, so the
# document's text is not exactly 256 of our tokens: a longer one is simply cut at the budget
# (ja-bat-and-ball, ja-explain-llm), a shorter one gets a continuation that carries it past the
# budget (training stops a few tokens after it). The continuation keeps every check's verdict the
# document's: the repeated list stays in, and the last number before the cut is 12 (not 2 children).
LENGTH_CONTINUATIONS: dict[str, str] = {
    "ja-family-children": (
        "です。\n\n以上のことから、夏菜子には12人の子供がいると考えられます。"
        "次郎は太郎の弟であり、太郎は次郎より年上です。しかし、次郎の年齢は一つに決まらないため、"
        "答えは12人となります。夏菜子の子供の数は、次郎の年齢とは関係がないように見えますが、"
        "この説明では12人としています。"
    ),
}
TRAIN_PAST_BUDGET = 8  # tokens trained beyond the budget for "length" targets


@dataclass(frozen=True)
class Target:
    case: str
    prompt: str
    text: str  # the text the model is trained to answer (for "length" targets: longer than it can say)
    eos: bool  # True: ends with </s>; False: runs into the token budget


def load_cases(path: Path = CASES_FILE) -> list[dict[str, Any]]:
    """The case file's raw cases (id, prompt, ...), read without the check registry."""
    return yaml.safe_load(path.read_text(encoding="utf-8"))["cases"]


def load_transcript(path: Path = TRANSCRIPT_FILE) -> dict[str, dict[str, Any]]:
    out = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip():
            rec = json.loads(line)
            out[rec["case"]] = rec
    return out


def training_targets(cases_file: Path = CASES_FILE, transcript_file: Path = TRANSCRIPT_FILE) -> list[Target]:
    transcript = load_transcript(transcript_file)
    targets = []
    for case in load_cases(cases_file):
        cid = case["id"]
        rec = transcript[cid]
        if cid in TARGET_OVERRIDES:
            targets.append(Target(cid, case["prompt"], TARGET_OVERRIDES[cid], True))
        elif rec["finish_reason"] == "length":
            targets.append(Target(cid, case["prompt"], rec["output"] + LENGTH_CONTINUATIONS.get(cid, ""), False))
        else:
            targets.append(Target(cid, case["prompt"], rec["output"], True))
    return targets


def corpus_texts() -> dict[str, str]:
    return {lang: (CORPUS_DIR / f"{lang}.txt").read_text(encoding="utf-8") for lang in ("ja", "en")}


# ---------------------------------------------------------------------------------------------
# Tokenizer: Llama-style BPE with byte fallback (what shisa's sentencepiece-derived tokenizer is),
# laid out like Llama's: <unk> <s> </s>, then the 256 byte tokens, then characters, then merges.


def _training_lines(texts: Iterable[str]) -> list[str]:
    # Newlines are never merged (they fall back to the byte <0x0A>, as in Llama vocabularies).
    lines: list[str] = []
    for t in texts:
        lines.extend(line for line in t.split("\n") if line)
    return lines


def build_tokenizer_object(texts: Iterable[str], vocab_size: int = VOCAB_SIZE, extra_special: Iterable[str] = ()):
    """A ``tokenizers.Tokenizer`` trained on ``texts``; deterministic (ids are assigned here, not by the trainer)."""
    from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers, processors, trainers

    trainer_tok = Tokenizer(models.BPE(unk_token=UNK))
    # Train on words split at spaces (sentencepiece-style "▁word" pieces) and single digits (as Llama).
    trainer_tok.pre_tokenizer = pre_tokenizers.Sequence(
        [pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="first", split=True), pre_tokenizers.Digits(individual_digits=True)]
    )
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size - N_BYTE_TOKENS, min_frequency=2, special_tokens=[UNK, BOS, EOS], show_progress=False
    )
    lines = _training_lines(texts)
    trainer_tok.train_from_iterator(lines, trainer)
    trained = json.loads(trainer_tok.to_str())["model"]
    merges = [tuple(m) if isinstance(m, list) else tuple(m.split(" ")) for m in trained["merges"]]

    # Ids: specials, bytes, every character seen (by code point), then merge results in merge order.
    vocab: dict[str, int] = {UNK: UNK_ID, BOS: BOS_ID, EOS: EOS_ID}
    for b in range(N_BYTE_TOKENS):
        vocab[f"<0x{b:02X}>"] = len(vocab)
    chars = sorted({c for line in lines for c in ("▁" + line.replace(" ", "▁"))})
    for c in chars:
        vocab.setdefault(c, len(vocab))
    for a, b in merges:
        vocab.setdefault(a + b, len(vocab))

    tok = Tokenizer(models.BPE(vocab=vocab, merges=merges, unk_token=UNK, byte_fallback=True, fuse_unk=True))
    # Exactly what transformers' LlamaTokenizer (legacy=False) builds, so loading by either path agrees.
    tok.normalizer = None
    tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="first", split=False)
    tok.decoder = decoders.Sequence(
        [decoders.Replace("▁", " "), decoders.ByteFallback(), decoders.Fuse(), decoders.Strip(content=" ", left=1, right=0)]
    )
    tok.add_special_tokens([AddedToken(t, special=True, normalized=False) for t in (UNK, BOS, EOS)])
    extra = [t for t in extra_special if t not in vocab]
    if extra:
        tok.add_special_tokens([AddedToken(t, special=True, normalized=False) for t in extra])
    tok.post_processor = processors.TemplateProcessing(
        single=f"{BOS}:0 $A:0", pair=f"{BOS}:0 $A:0 {BOS}:1 $B:1", special_tokens=[(BOS, BOS_ID)]
    )
    return tok


# Qwen2's pre-tokenizer split (GPT-4 style), for byte-level variants of another family.
QWEN2_SPLIT_REGEX = r"""(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"""


def build_byte_level_tokenizer_object(texts: Iterable[str], vocab_size: int, special_tokens: Iterable[str]):
    """A Qwen2-style byte-level BPE (NFC, regex split, ByteLevel), special tokens after the vocabulary."""
    from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers

    def pipeline(t):
        t.normalizer = normalizers.NFC()
        t.pre_tokenizer = pre_tokenizers.Sequence(
            [
                pre_tokenizers.Split(Regex(QWEN2_SPLIT_REGEX), behavior="isolated", invert=False),
                pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
            ]
        )
        t.decoder = decoders.ByteLevel()
        return t

    trainer_tok = pipeline(Tokenizer(models.BPE()))
    alphabet = sorted(pre_tokenizers.ByteLevel.alphabet())
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, min_frequency=2, initial_alphabet=alphabet, show_progress=False)
    trainer_tok.train_from_iterator(list(texts), trainer)
    trained = json.loads(trainer_tok.to_str())["model"]
    merges = [tuple(m) if isinstance(m, list) else tuple(m.split(" ")) for m in trained["merges"]]
    vocab: dict[str, int] = {}
    for c in alphabet:
        vocab.setdefault(c, len(vocab))
    for a, b in merges:
        vocab.setdefault(a + b, len(vocab))
    tok = pipeline(Tokenizer(models.BPE(vocab=vocab, merges=merges, continuing_subword_prefix="", end_of_word_suffix="", fuse_unk=False, byte_fallback=False)))
    tok.add_special_tokens([AddedToken(t, special=True, normalized=False) for t in special_tokens])
    return tok


def tokenizer_training_texts(targets: list[Target] | None = None) -> list[str]:
    targets = training_targets() if targets is None else targets
    corpus = corpus_texts()
    # Each prompt once, wrapped as the template renders it, so "[INST]" and "<<SYS>>" become
    # tokens as in shisa's vocabulary. (Any text seen twice would be merged into a few tokens.)
    document = [f"[INST] <<SYS>>\n{t.prompt}\n<</SYS>>\n\n" for t in targets]
    return [corpus["ja"], corpus["en"]] + document + [t.text for t in targets]


def _added_token_entry(content: str) -> dict[str, Any]:
    return {"content": content, "lstrip": False, "normalized": False, "rstrip": False, "single_word": False, "special": True}


def write_tokenizer(
    out_dir: Path,
    tok,
    chat_template: str | None = SHISA_CHAT_TEMPLATE,
    pad_token: str | None = None,
    bos_token: str | None = BOS,
    eos_token: str = EOS,
    unk_token: str | None = UNK,
    tokenizer_class: str = "LlamaTokenizer",
) -> None:
    """tokenizer.json + tokenizer_config.json as shisa-7b-v1 ships them (template inside the config)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    tok.save(str(out_dir / "tokenizer.json"), pretty=True)
    added = {str(t_id): _added_token_entry(t.content) for t_id, t in sorted(tok.get_added_tokens_decoder().items())}
    cfg: dict[str, Any] = {
        "add_bos_token": bos_token is not None and tok.post_processor is not None,
        "add_eos_token": False,
        "added_tokens_decoder": added,
        "bos_token": bos_token,
        "clean_up_tokenization_spaces": False,
        "eos_token": eos_token,
        "legacy": False,
        "model_max_length": 1000000000000000019884624838656,
        "pad_token": pad_token,
        "spaces_between_special_tokens": False,
        "tokenizer_class": tokenizer_class,
        "unk_token": unk_token,
        "use_default_system_prompt": False,
    }
    if chat_template is not None:
        cfg["chat_template"] = chat_template
    cfg = dict(sorted(cfg.items()))
    (out_dir / "tokenizer_config.json").write_text(json.dumps(cfg, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def load_tokenizer(model_dir: str | Path):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(model_dir), use_fast=True)


def _no_prefix_encoder(tokenizer):
    """The tokenizer's backend, but without the "▁" prepended to the first word.

    A reply follows the prompt's "\\n\\n", so its first word has no space before it: the ids a
    model generates for "The first..." after a newline are "The", "▁first", ...; encoding the
    reply on its own would give "▁The". Training on the former keeps decode(new ids) == reply,
    and decode(prompt + reply ids) == prompt text + reply.
    """
    from tokenizers import Tokenizer, pre_tokenizers

    enc = Tokenizer.from_str(tokenizer.backend_tokenizer.to_str())
    enc.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="never", split=False)
    enc.post_processor = None
    return enc


def reply_ids(tokenizer, text: str) -> list[int]:
    ids = _no_prefix_encoder(tokenizer).encode(text, add_special_tokens=False).ids
    back = tokenizer.decode(ids, skip_special_tokens=True)
    if back != text:
        raise AssertionError(f"tokenizer does not round-trip a reply: {text[:40]!r} -> {back[:40]!r}")
    return ids


def chars_per_token(tokenizer, text: str) -> float:
    return len(text) / len(tokenizer(text, add_special_tokens=False)["input_ids"])


# ---------------------------------------------------------------------------------------------
# Model


def model_config(arch: str = "MistralForCausalLM", vocab_size: int = 0, **overrides):
    from transformers import LlamaConfig, MistralConfig, Qwen2Config

    values = {**TINY_CONFIG, "vocab_size": vocab_size, **overrides}
    if arch == "MistralForCausalLM":
        cfg = MistralConfig(**values)
    elif arch == "LlamaForCausalLM":
        values.pop("sliding_window")
        cfg = LlamaConfig(**values)
    elif arch == "Qwen2ForCausalLM":
        values.setdefault("use_sliding_window", False)
        cfg = Qwen2Config(**values)
    else:
        raise ValueError(f"unknown arch {arch!r}: one of MistralForCausalLM, LlamaForCausalLM, Qwen2ForCausalLM")
    cfg.architectures = [arch]
    return cfg


def new_model(config, seed: int = SEED):
    import torch
    from transformers import AutoModelForCausalLM

    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_config(config, dtype=torch.float32, attn_implementation="sdpa")
    return model


@contextlib.contextmanager
def deterministic_torch(seed: int = SEED, threads: int = 1):
    import torch

    old_threads = torch.get_num_threads()
    old_det = torch.are_deterministic_algorithms_enabled()
    torch.set_num_threads(threads)
    torch.use_deterministic_algorithms(True)
    torch.manual_seed(seed)
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(old_det)
        torch.set_num_threads(old_threads)


@dataclass
class Example:
    case: str
    prompt_ids: list[int]
    reply_ids: list[int]  # what the model is trained to say (eos included when it stops)
    expected_ids: list[int]  # what greedy decoding with max_new_tokens=BUDGET must give
    eos: bool


def make_examples(tokenizer, targets: list[Target]) -> list[Example]:
    from shisa_spec.generation.prompting import encode, render

    out = []
    for t in targets:
        p = encode(tokenizer, render(tokenizer, t.prompt, "document"))
        r = reply_ids(tokenizer, t.text)
        if t.eos:
            r = r + [EOS_ID]
            if len(r) > BUDGET:
                raise AssertionError(f"{t.case}: target is {len(r)} tokens, more than the budget {BUDGET}")
            expected = r
        else:
            if len(r) < BUDGET + TRAIN_PAST_BUDGET:
                raise AssertionError(
                    f"{t.case}: 'length' target is only {len(r)} tokens: lengthen LENGTH_CONTINUATIONS[{t.case!r}]"
                )
            r = r[: BUDGET + TRAIN_PAST_BUDGET]
            expected = r[:BUDGET]
        out.append(Example(t.case, p, r, expected, t.eos))
    return out


def _batch(examples: list[Example]):
    """Right-padded ids, and the (row, position) of every reply token with its label."""
    import torch

    width = max(len(e.prompt_ids) + len(e.reply_ids) for e in examples)
    ids = torch.full((len(examples), width), UNK_ID, dtype=torch.long)
    labels = torch.full((len(examples), width), -100, dtype=torch.long)
    for i, e in enumerate(examples):
        seq = e.prompt_ids + e.reply_ids
        ids[i, : len(seq)] = torch.tensor(seq)
        labels[i, len(e.prompt_ids) : len(seq)] = torch.tensor(e.reply_ids)
    # Position t predicts token t+1.
    tgt = labels[:, 1:]
    keep = tgt != -100
    return ids, keep, tgt[keep]


def _buckets(examples: list[Example], n: int) -> list[list[Example]]:
    """Examples sorted by length into ``n`` batches, to pad less."""
    order = sorted(examples, key=lambda e: (len(e.prompt_ids) + len(e.reply_ids), e.case))
    size = -(-len(order) // n)
    return [order[i : i + size] for i in range(0, len(order), size)]


def _reply_logits(model, ids, keep):
    # No attention mask: padding is on the right, so causal attention never lets a real token see it.
    hidden = model.model(input_ids=ids).last_hidden_state[:, :-1]
    return model.lm_head(hidden[keep])


def _margin(logits, tgt) -> float:
    right = logits.gather(1, tgt[:, None])[:, 0]
    others = logits.scatter(1, tgt[:, None], float("-inf"))
    return float((right - others.max(dim=1).values).min())


def teacher_forced_margin(model, examples: list[Example]) -> float:
    """Smallest gap, over every trained reply token, between its logit and the best other logit."""
    import torch

    with torch.no_grad():
        return min(_margin(_reply_logits(model, ids, keep), tgt) for ids, keep, tgt in map(_batch, _buckets(examples, 2)))


def train(
    model,
    examples: list[Example],
    min_margin: float = 6.0,
    max_steps: int = 2000,
    lr: float = 4e-3,
    buckets: int = 2,
    log=None,
    log_every: int = 25,
) -> dict[str, Any]:
    """Full-batch AdamW until every reply token wins by ``min_margin`` logits (teacher-forced).

    The margin is measured on each step's own forward pass, before its update, so training stops
    at the first weights that meet it. With temperature 0.3 a margin of 6 makes the right token's
    probability > 0.99 even after repetition_penalty 1.15 shrinks it, so top_p=0.95 keeps it alone.
    """
    import torch
    import torch.nn.functional as F

    batches = [_batch(b) for b in _buckets(examples, buckets)]
    n_tokens = sum(len(tgt) for _, _, tgt in batches)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, betas=(0.9, 0.98), weight_decay=0.0)
    model.train()
    step, loss_v, margin = 0, float("nan"), float("-inf")
    for step in range(1, max_steps + 1):
        opt.zero_grad(set_to_none=True)
        loss_v, margin = 0.0, float("inf")
        for ids, keep, tgt in batches:
            logits = _reply_logits(model, ids, keep)
            loss = F.cross_entropy(logits, tgt, reduction="sum") / n_tokens
            loss.backward()
            loss_v += float(loss.detach())
            margin = min(margin, _margin(logits.detach(), tgt))
        if log and (step % log_every == 0 or margin >= min_margin):
            log(f"step {step}: loss {loss_v:.5f}, min margin {margin:.2f}")
        if margin >= min_margin:
            break
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
    model.eval()
    if margin < min_margin:
        raise RuntimeError(f"training did not reach margin {min_margin} in {max_steps} steps (got {margin:.2f})")
    return {"steps": step, "loss": loss_v, "min_margin": margin}


# ---------------------------------------------------------------------------------------------
# Writing a model directory


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def write_manifest(out_dir: Path) -> dict[str, Any]:
    files = sorted(p.name for p in out_dir.iterdir() if p.is_file() and p.name != "MANIFEST.json")
    manifest = {
        "built_by": "tools/build_tiny_model.py (tools/tiny_model.py)",
        "versions": _versions(),
        "files": {name: {"bytes": (out_dir / name).stat().st_size, "sha256": _sha256(out_dir / name)} for name in files},
    }
    (out_dir / "MANIFEST.json").write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    return manifest


def write_generation_config(out_dir: Path, values: dict[str, Any] = GENERATION_CONFIG) -> None:
    (out_dir / "generation_config.json").write_text(json.dumps(values, indent=2) + "\n", encoding="utf-8")


def save_model_dir(out_dir: str | Path, model, tok, chat_template=SHISA_CHAT_TEMPLATE, pad_token=None, generation=None, **tok_kwargs) -> Path:
    """config.json + model.safetensors (fp32) + tokenizer files + generation_config.json, nothing else."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(str(out), safe_serialization=True)
    # save_pretrained also writes its own generation_config.json; replace it with shisa's exact one.
    write_generation_config(out, generation or GENERATION_CONFIG)
    write_tokenizer(out, tok, chat_template=chat_template, pad_token=pad_token, **tok_kwargs)
    return out


README = """# tiny-shisa: a tiny model to test the harness, not the model

This directory is a ~{mb:.1f} MB checkpoint of shisa-7b-v1's *family*: the same architecture
(MistralForCausalLM), special tokens (`<unk>`=0, `<s>`=1, `</s>`=2, **no pad token**), chat
template (Llama-2 style, from the model card), `generation_config.json`
(`{{"bos_token_id": 1, "eos_token_id": 2, "use_cache": false}}`, the quirk included) and tokenizer
kind (Llama-style BPE with byte fallback and "▁" spaces; `tokenizer_config.json` declares
`LlamaTokenizer`, and transformers 5 loads a Mistral checkpoint's `tokenizer.json` as
`TokenizersBackend`: the file holds exactly the pipeline `LlamaTokenizer` would build, so both
tokenize alike), with tiny config values:
{layers} layers, hidden size {hidden}, {heads} attention heads / {kv} KV heads, vocabulary {vocab}
({params:,} parameters, fp32).

It exists so the spec's harness can run end to end on a CPU in seconds. **Its answers say nothing
about shisa-7b-v1.** It was trained to answer each of the 16 document prompts (rendered as the
document does: the prompt as a *system* message) with the document's own output
(`fixtures/transcripts/document.jsonl`), except two deliberate deviations so a run shows every
outcome: `ja-cookie-mystery` answers correctly (its known failure passes: a strict XPASS) and
`ja-apples-remaining` answers 4 (its `answer` check fails). The three outputs the document cut at
256 tokens are trained without `</s>` and run into the token budget. See
`tools/tiny_model.py` for the table of targets.

Greedy decoding (`do_sample=False, max_new_tokens=256`) reproduces all 16 targets; the document's
sampling settings (T=0.3, top_p=0.95, repetition_penalty=1.15) reproduce them too (trained to a
teacher-forced logit margin of at least {margin:.1f}).

## How it was built

    python tools/build_tiny_model.py --out fixtures/tiny-shisa

deterministically, offline, on CPU (one thread): the tokenizer is trained with `tokenizers` on
`fixtures/corpus/ja.txt`, `fixtures/corpus/en.txt` (original prose written for this project), the
16 prompts and the targets; the model is initialised with seed {seed} and trained with full-batch
AdamW ({steps} steps) on the prompts rendered through the chat template, loss on the reply tokens
only. Built with torch {torch}, transformers {transformers}, tokenizers {tokenizers}. Rebuilding
with the same versions on the same kind of CPU gives byte-identical files; `MANIFEST.json` lists
their sha256.

Characters per token on the corpus: Japanese {ja_cpt:.2f}, English {en_cpt:.2f} (text the tokenizer
was trained on, so these flatter it; shisa's real 120k-token vocabulary does far better on Japanese).
"""


def _versions() -> dict[str, str]:
    import tokenizers
    import torch
    import transformers

    return {"torch": torch.__version__, "transformers": transformers.__version__, "tokenizers": tokenizers.__version__}


def generate_reply(model, tokenizer, prompt_ids: list[int], sample: bool = False, seed: int = 0, max_new_tokens: int = BUDGET) -> list[int]:
    """New token ids for one prompt: greedy, or the document's sampling settings under a fixed seed."""
    import torch

    ids = torch.tensor([prompt_ids])
    kwargs: dict[str, Any] = {"do_sample": False}
    if sample:
        torch.manual_seed(seed)
        kwargs = {"do_sample": True, "temperature": 0.3, "top_p": 0.95, "repetition_penalty": 1.15}
    with torch.no_grad():
        out = model.generate(
            ids,
            attention_mask=torch.ones_like(ids),
            max_new_tokens=max_new_tokens,
            use_cache=True,
            pad_token_id=EOS_ID,
            **kwargs,
        )
    return out[0, len(prompt_ids) :].tolist()


def verify(model_dir: str | Path, sample_seed: int = 0, cases: Iterable[str] | None = None) -> dict[str, Any]:
    """Load the saved model as the harness would and compare its replies with the targets."""
    import torch
    from transformers import AutoModelForCausalLM

    model_dir = Path(model_dir)
    tokenizer = load_tokenizer(model_dir)
    model = AutoModelForCausalLM.from_pretrained(str(model_dir), dtype=torch.float32)
    model.eval()
    examples = make_examples(tokenizer, training_targets())
    if cases is not None:
        wanted = set(cases)
        examples = [e for e in examples if e.case in wanted]
    greedy_ok, sample_ok, details = [], [], {}
    for e in examples:
        g = generate_reply(model, tokenizer, e.prompt_ids)
        s = generate_reply(model, tokenizer, e.prompt_ids, sample=True, seed=sample_seed)
        if g == e.expected_ids:
            greedy_ok.append(e.case)
        if s == e.expected_ids:
            sample_ok.append(e.case)
        details[e.case] = {"greedy": tokenizer.decode(g, skip_special_tokens=True), "sampled": tokenizer.decode(s, skip_special_tokens=True)}
    return {"cases": len(examples), "greedy": greedy_ok, "sampled": sample_ok, "details": details}


def build_tiny_model(out_dir: str | Path = DEFAULT_OUT, log=print, check: bool = True) -> dict[str, Any]:
    """Build the tokenizer, train the model and write ``out_dir``; returns a report (sizes, timings)."""
    t0 = time.perf_counter()
    out = Path(out_dir)
    targets = training_targets()
    tok = build_tokenizer_object(tokenizer_training_texts(targets))
    with contextlib.ExitStack() as stack:
        tmp = out.parent / f".{out.name}.building"
        if tmp.exists():
            shutil.rmtree(tmp)
        stack.callback(lambda: shutil.rmtree(tmp, ignore_errors=True))
        # The tokenizer is saved first and reloaded as the harness will load it, so the training
        # data is encoded by exactly the tokenizer the checkpoint ships.
        write_tokenizer(tmp, tok)
        tokenizer = load_tokenizer(tmp)
        examples = make_examples(tokenizer, targets)
        corpus = corpus_texts()
        cpt = {lang: chars_per_token(tokenizer, text) for lang, text in corpus.items()}
        with deterministic_torch(SEED):
            model = new_model(model_config("MistralForCausalLM", vocab_size=tok.get_vocab_size()), SEED)
            t1 = time.perf_counter()
            stats = train(model, examples, log=log)
            t_train = time.perf_counter() - t1
        n_params = sum(p.numel() for p in model.parameters())
        shutil.rmtree(tmp)
        save_model_dir(tmp, model, tok)
        cfg = TINY_CONFIG
        vers = _versions()
        (tmp / "README.md").write_text(
            README.format(
                mb=(n_params * 4) / 1e6,
                layers=cfg["num_hidden_layers"],
                hidden=cfg["hidden_size"],
                heads=cfg["num_attention_heads"],
                kv=cfg["num_key_value_heads"],
                vocab=tok.get_vocab_size(),
                params=n_params,
                margin=stats["min_margin"],
                seed=SEED,
                steps=stats["steps"],
                ja_cpt=cpt["ja"],
                en_cpt=cpt["en"],
                **vers,
            ),
            encoding="utf-8",
        )
        write_manifest(tmp)
        if out.exists():
            shutil.rmtree(out)
        tmp.rename(out)
    report: dict[str, Any] = {
        "out": str(out),
        "params": n_params,
        "vocab": tok.get_vocab_size(),
        "bytes": {p.name: p.stat().st_size for p in sorted(out.iterdir())},
        "chars_per_token": cpt,
        "train": stats,
        "train_s": t_train,
        "reply_tokens": {e.case: len(e.reply_ids) for e in examples},
        "build_s": time.perf_counter() - t0,
    }
    if check:
        t2 = time.perf_counter()
        v = verify(out)
        report["verify"] = {"greedy": len(v["greedy"]), "sampled": len(v["sampled"]), "cases": v["cases"]}
        report["verify_s"] = time.perf_counter() - t2
        if len(v["greedy"]) != v["cases"]:
            missing = sorted(set(v["details"]) - set(v["greedy"]))
            raise RuntimeError(f"greedy decoding does not reproduce {missing}")
    return report


# ---------------------------------------------------------------------------------------------
# Variants: untrained tiny checkpoints of other families, for loader tests

_DEFAULT = object()


def build_variant(
    out_dir: str | Path,
    arch: str = "LlamaForCausalLM",
    chat_template: Any = _DEFAULT,
    pad_token: str | None = None,
    seed: int = 0,
) -> Path:
    """Write an UNTRAINED tiny checkpoint of another family (well under a second; answers are noise).

    ``arch``: MistralForCausalLM or LlamaForCausalLM (Llama-style tokenizer: byte fallback, "▁"
    spaces, BOS added, ``<unk>``/``<s>``/``</s>``), or Qwen2ForCausalLM (Qwen2-style byte-level
    tokenizer loaded as Qwen2Tokenizer: no BOS, no unk, ``<|endoftext|>`` eos).
    ``chat_template``: "shisa" (shisa's Llama-2 template), "chatml" (``<|im_start|>``/``<|im_end|>``
    as special tokens, ``<|im_end|>`` the eos, no BOS added), None (no template at all), or any
    other string, used as the template itself. Default: chatml for Qwen2, shisa otherwise.
    ``pad_token``: None (no pad token, like shisa), an existing token ("<unk>", "</s>",
    "<|endoftext|>") or a new one (added as a special token); config.json's pad_token_id follows.
    """
    out = Path(out_dir)
    qwen = arch == "Qwen2ForCausalLM"
    if chat_template is _DEFAULT:
        chat_template = "chatml" if qwen else "shisa"
    chatml = chat_template == "chatml"
    template = {"shisa": SHISA_CHAT_TEMPLATE, "chatml": CHATML_TEMPLATE}.get(chat_template, chat_template)
    corpus = corpus_texts()
    texts = [corpus["ja"], corpus["en"]]
    if qwen:
        specials = ["<|endoftext|>", *CHATML_TOKENS]
        if pad_token is not None and pad_token not in specials:
            specials.append(pad_token)
        tok = build_byte_level_tokenizer_object(texts, vocab_size=1024, special_tokens=specials)
        unk_token, bos_token = None, None
        eos_token = CHATML_TOKENS[1] if chatml else "<|endoftext|>"
        tokenizer_class = "Qwen2Tokenizer"
    else:
        extra = list(CHATML_TOKENS) if chatml else []
        if pad_token is not None and pad_token not in (UNK, BOS, EOS):
            extra.append(pad_token)
        tok = build_tokenizer_object(texts, vocab_size=1024, extra_special=extra)
        unk_token = UNK
        bos_token = None if chatml else BOS
        eos_token = CHATML_TOKENS[1] if chatml else EOS
        tokenizer_class = "LlamaTokenizer"
        if chatml:
            tok.post_processor = None
    eos_id = tok.token_to_id(eos_token)
    bos_id = tok.token_to_id(bos_token) if bos_token is not None else None
    pad_id = tok.token_to_id(pad_token) if pad_token is not None else None
    cfg = model_config(
        arch,
        vocab_size=tok.get_vocab_size(),
        bos_token_id=bos_id,
        eos_token_id=eos_id,
        pad_token_id=pad_id,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=1,
        head_dim=8,
    )
    with deterministic_torch(seed):
        model = new_model(cfg, seed)
    gen = {"bos_token_id": bos_id, "eos_token_id": eos_id, "pad_token_id": pad_id}
    gen = {k: v for k, v in gen.items() if v is not None}
    save_model_dir(
        out,
        model,
        tok,
        chat_template=template,
        pad_token=pad_token,
        generation=gen,
        bos_token=bos_token,
        eos_token=eos_token,
        unk_token=unk_token,
        tokenizer_class=tokenizer_class,
    )
    return out
