"""Benchmark the spec's generation plan on CUDA with a random-weight model of shisa-7b-v1's exact shape.

Speed and memory depend on the weights' shapes, not their values, so random bf16 weights stand in
for the real 15 GB checkpoint; lengths are forced with ``min_new_tokens`` since random weights hit
EOS at random. In one process it measures the device's copy bandwidth (the per-step limit is
weight bytes / bandwidth), the plain one-``generate()``-per-case baseline, and the spec's batched
plan through the harness's own Engine; also load time from a local safetensors copy against
reading the same files once, quantised variants, and how often batched and batch-1 outputs differ.

    python bench/bench_generate.py --out bench.json [--parts all|core|quant] [--tokenizer fixtures/tiny-shisa]

Prints a summary and writes JSON. Not a test: timings never gate anything.
"""

from __future__ import annotations

import argparse
import gc
import json
import subprocess
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from shisa_spec.generation import loader  # noqa: E402
from shisa_spec.spec.cases import load_suite  # noqa: E402
from shisa_spec.generation.engine import Engine, Request, case_seed, plan_batches  # noqa: E402
from shisa_spec.generation.prompting import render  # noqa: E402

# shisa-7b-v1's config.json (vocab 120128: the tokenizer's 120073 entries padded with <|extra_N|>).
SHISA_CONFIG = dict(
    hidden_size=4096, intermediate_size=14336, num_hidden_layers=32, num_attention_heads=32,
    num_key_value_heads=8, max_position_embeddings=32768, sliding_window=4096, rope_theta=10000.0,
    rms_norm_eps=1e-5, tie_word_embeddings=False, vocab_size=120128, bos_token_id=1, eos_token_id=2,
)


def log(*a: object) -> None:
    print(*a, flush=True)


def sync_time() -> float:
    torch.cuda.synchronize()
    return time.perf_counter()


def copy_bandwidth(nbytes: int = 2 << 30, reps: int = 10) -> float:
    """Device-to-device copy, counting bytes read and written (as the reference figures do)."""
    src = torch.empty(nbytes, dtype=torch.uint8, device="cuda")
    dst = torch.empty_like(src)
    for _ in range(3):
        dst.copy_(src)
    t0 = sync_time()
    for _ in range(reps):
        dst.copy_(src)
    dt = sync_time() - t0
    del src, dst
    torch.cuda.empty_cache()
    return 2 * nbytes * reps / dt


def build_random_model(save_dir: Path, tokenizer_dir: Path) -> int:
    from transformers import MistralConfig, MistralForCausalLM

    cfg = MistralConfig(**SHISA_CONFIG)
    torch.manual_seed(0)
    with torch.device("cuda"):
        torch.set_default_dtype(torch.bfloat16)
        model = MistralForCausalLM(cfg)
        torch.set_default_dtype(torch.float32)
    model.generation_config.use_cache = False  # shisa-7b-v1's generation_config.json quirk
    nbytes = loader.weight_bytes(model)
    model.save_pretrained(save_dir, safe_serialization=True, max_shard_size="5GB")
    del model
    gc.collect()
    torch.cuda.empty_cache()
    return nbytes


def drop_page_cache() -> bool:
    try:
        subprocess.run(["sync"], check=True)
        Path("/proc/sys/vm/drop_caches").write_text("3\n")
        return True
    except OSError:
        return False


def read_files_once(d: Path) -> float:
    t0 = time.perf_counter()
    for f in sorted(d.glob("*.safetensors")):
        with open(f, "rb", buffering=0) as fh:
            while fh.read(64 << 20):
                pass
    return time.perf_counter() - t0


def spec_requests(tok, n_cases: int | None = None) -> list[Request]:
    suite = load_suite()
    cases = suite.cases[:n_cases] if n_cases else suite.cases
    return [Request(c.id, render(tok, c.prompt, c.prompt_style), c.generation, case_seed(0, c.id)) for c in cases]


def timed_engine_run(engine: Engine, reqs: list[Request]) -> dict:
    torch.cuda.reset_peak_memory_stats()
    n_batches = len(plan_batches(reqs, engine.batch_size))
    t0 = sync_time()
    results = engine.generate(reqs)
    total = sync_time() - t0
    steps = max(r.new_tokens for r in results.values())
    return {"seconds": total, "batches": n_batches, "steps": steps, "new_tokens": sum(r.new_tokens for r in results.values()),
            "peak_gib": torch.cuda.max_memory_allocated() / 2**30}


def measure_plan(loaded, reqs: list[Request], new_tokens: int, static: bool, batch_size: int) -> dict:
    """Whole-spec generation: warm-up, time to first token (1 new token), then the full plan."""
    eng = Engine(loaded, batch_size=batch_size, static_cache=static, min_new_tokens=new_tokens)
    for _ in range(2):
        eng.generate(reqs)  # warm-up (compilation for the static cache)
    short = [Request(r.case_id, r.rendered, r.settings.__class__(**{**r.settings.as_dict(), "max_new_tokens": 1}), r.seed) for r in reqs]
    eng1 = Engine(loaded, batch_size=batch_size, static_cache=static, min_new_tokens=1)
    eng1.generate(short)
    ttft = timed_engine_run(eng1, short)["seconds"]
    run = timed_engine_run(eng, reqs)
    per_step = (run["seconds"] - ttft) / max(1, run["steps"] - 1) / run["batches"]
    return {**run, "ttft_s": ttft, "ms_per_step": per_step * 1e3, "tokens_per_s": run["new_tokens"] / run["seconds"], "static_cache": static, "batch_size": batch_size}


def measure_baseline(loaded, reqs: list[Request], new_tokens: int) -> dict:
    """The plain way: one model.generate() per case, batch 1, dynamic cache, transformers' own sampling."""
    model, tok = loaded.model, loaded.tokenizer
    def one(r: Request, n: int) -> None:
        ids = tok(r.rendered, add_special_tokens=False, return_tensors="pt")["input_ids"].to(model.device)
        s = r.settings
        model.generate(ids, do_sample=True, temperature=s.temperature, top_p=s.top_p, repetition_penalty=s.repetition_penalty,
                       max_new_tokens=n, min_new_tokens=n, pad_token_id=tok.pad_token_id, use_cache=True)
    one(reqs[0], new_tokens)  # warm-up of the same shape
    one(reqs[0], new_tokens)
    torch.cuda.reset_peak_memory_stats()
    t0 = sync_time()
    for r in reqs:
        one(r, new_tokens)
    total = sync_time() - t0
    return {"seconds": total, "cases": len(reqs), "ms_per_step": total / (len(reqs) * new_tokens) * 1e3,
            "tokens_per_s": len(reqs) * new_tokens / total, "peak_gib": torch.cuda.max_memory_allocated() / 2**30}


def measure_floor(loaded, reqs: list[Request], new_tokens: int) -> dict:
    """transformers' greedy generate() with the static cache and no logits processor: the loop's own floor."""
    model, tok = loaded.model, loaded.tokenizer
    enc = tok([r.rendered for r in reqs], add_special_tokens=False, padding=True, return_tensors="pt").to(model.device)
    kw = dict(do_sample=False, max_new_tokens=new_tokens, min_new_tokens=new_tokens, pad_token_id=tok.pad_token_id,
              use_cache=True, cache_implementation="static")
    for _ in range(2):
        model.generate(**enc, **kw)
    t0 = sync_time()
    model.generate(**enc, **kw)
    total = sync_time() - t0
    return {"seconds": total, "ms_per_step": total / new_tokens * 1e3}


def batch_divergence(loaded, reqs: list[Request], static: bool, new_tokens: int) -> dict:
    """How many cases' texts differ between the batched plan and batch-1 runs (random weights: a worst case)."""
    batched = Engine(loaded, batch_size=len(reqs), static_cache=static).generate(reqs)
    single = Engine(loaded, batch_size=1, static_cache=static).generate(reqs)
    differ = [c for c in batched if batched[c].output != single[c].output]
    return {"cases": len(reqs), "differing": len(differ), "differing_cases": differ, "static_cache": static,
            "mean_new_tokens": sum(r.new_tokens for r in batched.values()) / len(batched)}


def free(loaded) -> None:
    del loaded.model
    gc.collect()
    torch.cuda.empty_cache()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="bench.json")
    ap.add_argument("--parts", default="core", help="comma list of: core, floor, baseline, divergence, quant")
    ap.add_argument("--tokenizer", default=str(ROOT / "fixtures" / "tiny-shisa"))
    ap.add_argument("--save-dir", default="/tmp/shisa-random-7b")
    ap.add_argument("--new-tokens", type=int, default=256)
    ap.add_argument("--baseline-cases", type=int, default=16)
    args = ap.parse_args()
    parts = set(args.parts.split(","))
    out: dict = {"device": torch.cuda.get_device_name(0), "torch": torch.__version__}
    import transformers

    out["transformers"] = transformers.__version__
    save = Path(args.save_dir)
    bw = copy_bandwidth()
    out["copy_bandwidth_tb_s"] = bw / 1e12
    if not (save / "config.json").exists():
        t0 = time.perf_counter()
        build_random_model(save, Path(args.tokenizer))
        out["build_and_save_s"] = time.perf_counter() - t0
    from transformers import AutoTokenizer

    AutoTokenizer.from_pretrained(args.tokenizer).save_pretrained(save)  # shisa's chat template, BOS/EOS, no pad
    out["weight_file_bytes"] = sum(f.stat().st_size for f in save.glob("*.safetensors"))
    cold = drop_page_cache()
    out["read_files_s"] = read_files_once(save)
    cold = drop_page_cache() and cold
    t0 = time.perf_counter()
    loaded = loader.load(loader.LoadOptions(model=str(save), device="cuda"))
    torch.cuda.synchronize()
    out["load_s"] = time.perf_counter() - t0
    out["page_cache_dropped"] = cold
    out["load_over_read"] = out["load_s"] / out["read_files_s"]
    wbytes = loader.weight_bytes(loaded.model)
    out["weight_bytes"] = wbytes
    out["limit_ms_per_step"] = wbytes / bw * 1e3
    log(json.dumps(out))
    reqs = spec_requests(loaded.tokenizer)
    if "core" in parts:
        for static in (True, False):
            r = measure_plan(loaded, reqs, args.new_tokens, static, 16)
            r["ratio_to_limit"] = r["ms_per_step"] / out["limit_ms_per_step"]
            out[f"plan_{'static' if static else 'dynamic'}"] = r
            log(f"plan static={static}: {json.dumps(r)}")
    if "baseline" in parts:
        b = measure_baseline(loaded, reqs[: args.baseline_cases], args.new_tokens)
        out["baseline"] = b
        log(f"baseline: {json.dumps(b)}")
        best = min((out[k]["seconds"] for k in ("plan_static", "plan_dynamic") if k in out), default=None)
        if best:
            out["speedup_over_baseline"] = b["seconds"] * len(reqs) / b["cases"] / best
    if "floor" in parts:
        out["floor_static_greedy"] = measure_floor(loaded, reqs, args.new_tokens)
        out["floor_static_greedy"]["ratio_to_limit"] = out["floor_static_greedy"]["ms_per_step"] / out["limit_ms_per_step"]
        log(f"floor: {json.dumps(out['floor_static_greedy'])}")
    if "divergence" in parts:
        out["divergence"] = batch_divergence(loaded, reqs, False, args.new_tokens)  # the default path
        log(f"divergence: {json.dumps(out['divergence'])}")
    if "quant" in parts:
        free(loaded)
        for q in ("8bit", "4bit"):
            torch.cuda.reset_peak_memory_stats()
            t0 = time.perf_counter()
            ql = loader.load(loader.LoadOptions(model=str(save), device="cuda", quantize=q))
            res = {"load_s": time.perf_counter() - t0, "weight_bytes": loader.weight_bytes(ql.model),
                   "peak_after_load_gib": torch.cuda.max_memory_allocated() / 2**30}
            for static in (False,):
                res["plan"] = measure_plan(ql, reqs, args.new_tokens, static, 16)
            out[f"quant_{q}"] = res
            log(f"quant {q}: {json.dumps(res)}")
            free(ql)
    Path(args.out).write_text(json.dumps(out, indent=1))
    log(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
