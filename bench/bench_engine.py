"""Benchmark the CUDA-graph engine against transformers' generate(), in one process, on a random-weight
model of shisa-7b-v1's exact shape (speed depends on shapes only; see bench_generate.py).

    python bench/bench_engine.py --model /tmp/shisa-random-7b [--build] [--out bench.json] [--parts ...]

Prints: the phases of a cold run (start-up, load, capture, generation, judging), per-step time and its
ratio to the memory-bandwidth limit at batch 16 and at 256 rows (16 cases x 16 samples), the batch-
invariance count (each case alone vs in the full batch), the same for transformers' generate(), and
the whole spec's generation time at N=1 and N=16. Not a test: timings never gate anything.
"""

from __future__ import annotations

import time

T_START = time.perf_counter()

import argparse  # noqa: E402
import json  # noqa: E402
import sys  # noqa: E402
from pathlib import Path  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def log(*a: object) -> None:
    print(*a, flush=True)


def process_age() -> float:
    """Seconds since this process started (interpreter start-up included)."""
    import os

    with open(f"/proc/{os.getpid()}/stat") as f:
        start_ticks = int(f.read().rsplit(")", 1)[1].split()[19])
    with open("/proc/uptime") as f:
        uptime = float(f.read().split()[0])
    return uptime - start_ticks / os.sysconf("SC_CLK_TCK")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="/tmp/shisa-random-7b")
    ap.add_argument("--build", action="store_true", help="build and save the random-weight model first, then exit")
    ap.add_argument("--tokenizer", default=str(ROOT / "fixtures" / "tiny-shisa"))
    ap.add_argument("--out", default="bench-engine.json")
    ap.add_argument("--parts", default="cold,kernels,steps,invariance,spec,baseline")
    ap.add_argument("--new-tokens", type=int, default=256)
    ap.add_argument("--baseline-tokens", type=int, default=64)
    args = ap.parse_args()
    parts = set(args.parts.split(","))
    out: dict = {}
    if args.build:
        build(Path(args.model), Path(args.tokenizer))
        return
    ph: dict = {"process_age_at_main_s": process_age()}
    t0 = time.perf_counter()
    import torch

    from shisa_spec.generation import loader
    from shisa_spec.generation.engine import Engine, Request, sample_seed
    from shisa_spec.generation.graph_engine import GraphEngine
    from shisa_spec.generation.prompting import render
    from shisa_spec.spec import checks
    from shisa_spec.spec.cases import GenerationSettings, load_suite

    ph["imports_s"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    opts = loader.LoadOptions(model=args.model, device="cuda")
    prepared = loader.prepare(opts)
    ph["prepare_s"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    loaded = loader.load(opts, prepared)
    torch.cuda.synchronize()
    ph["load_s"] = time.perf_counter() - t0
    suite = load_suite()
    tok = loaded.tokenizer

    def reqs(n_samples: int, settings: GenerationSettings | None = None, cases=None) -> list[Request]:
        cs = cases or suite.cases
        return [Request(c.id, render(tok, c.prompt, c.prompt_style), settings or c.generation, sample_seed(0, c.id, s), s)
                for c in cs for s in range(n_samples)]

    # the cold run's phases: the spec at N=1 as pytest runs it (the first batch pays the capture)
    eng = GraphEngine(loaded, width=16)
    t0 = time.perf_counter()
    res = eng.generate(reqs(1))
    torch.cuda.synchronize()
    gen_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    verdicts = 0
    for c in suite.cases:
        r = res[(c.id, 0)]
        for spec in c.checks:
            checks.run(spec.check, checks.Output(r.output, r.finish_reason), spec.params)
            verdicts += 1
    ph.update(capture_s=eng.timings["capture_s"], prefill_s=eng.timings["prefill_s"], decode_s=eng.timings["decode_s"],
              generation_s=gen_s, steps=eng.steps_run, judging_s=time.perf_counter() - t0, verdicts=verdicts,
              mean_new_tokens=sum(r.new_tokens for r in res.values()) / len(res))
    ph["total_process_s"] = process_age()
    out["cold_phases"] = ph
    log("cold phases:", json.dumps(ph))

    wbytes = loader.weight_bytes(loaded.model)
    bw = copy_bandwidth(torch)
    limit_ms = wbytes / bw * 1e3
    out.update(device=torch.cuda.get_device_name(0), torch=torch.__version__, weight_bytes=wbytes,
               copy_bandwidth_tb_s=bw / 1e12, limit_ms_per_step=limit_ms)
    import transformers

    out["transformers"] = transformers.__version__
    log(f"limit: {wbytes / 1e9:.2f} GB / {bw / 1e12:.2f} TB/s = {limit_ms:.2f} ms/step")
    n = args.new_tokens

    def forced(width: int, rq: list[Request]) -> dict:
        e = GraphEngine(loaded, width=width, min_new_tokens=n)
        e.generate(rq)  # capture and warm-up
        e.timings.update(prefill_s=0.0, decode_s=0.0)
        e.steps_run = 0
        torch.cuda.synchronize()
        t = time.perf_counter()
        r = e.generate(rq)
        total = time.perf_counter() - t
        ms = e.timings["decode_s"] / e.steps_run * 1e3
        return {"width": width, "rows": len(rq), "ms_per_step": ms, "ratio_to_limit": ms / limit_ms, "steps": e.steps_run,
                "prefill_s": e.timings["prefill_s"], "total_s": total, "capture_s": e.timings["capture_s"],
                "peak_gib": torch.cuda.max_memory_allocated() / 2**30, "results": r}

    if "kernels" in parts:
        out["kernels"] = check_kernels(torch)
        log("kernels against torch (relative error):", json.dumps(out["kernels"]))

    if "steps" in parts:
        for width, ns in ((16, 1), (256, 16)):
            torch.cuda.reset_peak_memory_stats()
            f = forced(width, reqs(ns))
            f.pop("results")
            out[f"graph_w{width}"] = f
            log(f"graph engine, width {width}: {json.dumps(f)}")
        try:
            profile_step(torch, loaded, reqs(1), out)
        except Exception as e:  # the profile is a diagnosis: never lose the rest of the run to it
            log(f"profile failed: {type(e).__name__}: {e}")

    if "invariance" in parts:
        out["invariance_w16"] = invariance(GraphEngine, loaded, reqs(1), 16, n)
        log("invariance w16:", json.dumps(out["invariance_w16"]))
        two = reqs(16)
        some = [c.id for c in suite.cases[:2]]
        out["invariance_w256"] = invariance(GraphEngine, loaded, two, 256, n, alone_cases=some)
        log("invariance w256:", json.dumps(out["invariance_w256"]))

    if "spec" in parts:
        for ns, width in ((1, 16), (16, 256)):
            e = GraphEngine(loaded, width=width)
            rq = reqs(ns)
            e.generate(rq)
            torch.cuda.synchronize()
            t = time.perf_counter()
            r = e.generate(rq)
            torch.cuda.synchronize()
            out[f"spec_n{ns}"] = {"samples": ns, "rows": len(rq), "width": width, "seconds": time.perf_counter() - t,
                                  "batches": e.batches_run // 2, "mean_new_tokens": sum(x.new_tokens for x in r.values()) / len(r)}
            log(f"whole spec N={ns}:", json.dumps(out[f"spec_n{ns}"]))

    if "baseline" in parts:
        bn = args.baseline_tokens
        for width, ns in ((16, 1), (256, 16)):
            rq = reqs(ns)
            e = Engine(loaded, batch_size=width, min_new_tokens=bn)
            short = [Request(r.case_id, r.rendered, GenerationSettings(**{**r.settings.as_dict(), "max_new_tokens": bn}), r.seed, r.sample) for r in rq]
            e.generate(short[:width])
            torch.cuda.synchronize()
            t = time.perf_counter()
            e.generate(short)
            torch.cuda.synchronize()
            total = time.perf_counter() - t
            ms = total / bn * 1e3
            out[f"generate_w{width}"] = {"width": width, "rows": len(rq), "new_tokens": bn, "seconds": total, "ms_per_step": ms,
                                         "ratio_to_limit": ms / limit_ms, "note": "includes prefill; dynamic cache"}
            log(f"generate(), batch {width}:", json.dumps(out[f"generate_w{width}"]))
        out["invariance_generate_w16"] = invariance(Engine, loaded, reqs(1, GenerationSettings(max_new_tokens=32)), 16, 32)
        log("invariance generate() batch 16 vs 1:", json.dumps(out["invariance_generate_w16"]))

    Path(args.out).write_text(json.dumps(out, indent=1))
    log(summary(out))


def check_kernels(torch) -> dict:
    """Each Triton kernel against the plain-torch maths on fresh random bf16 inputs: relative errors (fp64 references)."""
    import torch.nn.functional as F

    from shisa_spec.generation import kernels

    def rel(a, b):
        a, b = a.double(), b.double()
        return float((a - b).norm() / b.norm())

    res = {}
    g = torch.Generator(device="cuda").manual_seed(1)
    rows, hq, hk, d, L = 16, 32, 8, 128, 512
    x = torch.randn(rows, 4096, device="cuda", generator=g).bfloat16()
    w = torch.randn(4096, device="cuda", generator=g).bfloat16()
    ref = x.double() * torch.rsqrt(x.double().pow(2).mean(-1, keepdim=True) + 1e-5) * w.double()
    res["rms_norm"] = rel(kernels.rms_norm(x, w, 1e-5), ref)
    gu = torch.randn(rows, 2 * 14336, device="cuda", generator=g).bfloat16()
    gg, uu = gu.double().chunk(2, -1)
    res["silu_mul"] = rel(kernels.silu_mul(gu), F.silu(gg) * uu)
    y = torch.randn(rows, (hq + 2 * hk) * d, device="cuda", generator=g).bfloat16()
    pos = torch.randint(0, L - 1, (rows,), device="cuda", generator=g)
    ang = pos.double()[:, None] * torch.rand(d // 2, device="cuda", generator=g).double()[None]
    cos, sin = torch.cat([ang.cos(), ang.cos()], -1), torch.cat([ang.sin(), ang.sin()], -1)
    kc = torch.randn(rows, hk, L, d, device="cuda", generator=g).bfloat16()
    vc = torch.randn(rows, hk, L, d, device="cuda", generator=g).bfloat16()
    q = kernels.rope_and_cache(y, cos.bfloat16(), sin.bfloat16(), pos, kc, vc, hq, hk, d)
    yy = y.double().view(rows, hq + 2 * hk, d)
    rot = yy * cos[:, None] + torch.cat([-yy[..., d // 2 :], yy[..., : d // 2]], -1) * sin[:, None]
    res["rope_q"] = rel(q, rot[:, :hq])
    r = torch.arange(rows, device="cuda")
    res["rope_k_in_cache"] = rel(kc[r, :, pos], rot[:, hq : hq + hk])
    res["v_in_cache"] = rel(vc[r, :, pos], yy[:, hq + hk :])
    o = kernels.decode_attention(q, kc, vc, pos, d**-0.5)
    qd = q.double().view(rows, hk, hq // hk, d)
    sc = torch.matmul(qd, kc.double().transpose(2, 3)) * d**-0.5
    mask = torch.arange(L, device="cuda")[None] <= pos[:, None]
    sc = sc.masked_fill(~mask[:, None, None], float("-inf"))
    ref = torch.matmul(sc.softmax(-1), vc.double()).reshape(rows, hq * d)
    res["decode_attention"] = rel(o, ref)
    vc[:, :, L - 1] = float("nan")  # a slot past every row's end must not be read
    pos.clamp_(max=L - 2)
    res["attention_ignores_empty_slots"] = bool(torch.isfinite(kernels.decode_attention(q, kc, vc, pos, d**-0.5)).all())
    return res


def invariance(cls, loaded, rq, width: int, n: int, alone_cases=None) -> dict:
    """Token ids of each case's samples alone (idle rows fill the batch) against the full batch."""
    kw = {"width": width} if cls.__name__ == "GraphEngine" else {"batch_size": width}
    full = cls(loaded, **kw).generate(rq)
    cases = alone_cases or sorted({r.case_id for r in rq})
    same = 0
    for c in cases:
        mine = [r for r in rq if r.case_id == c]
        if cls.__name__ == "GraphEngine":
            alone = cls(loaded, **kw).generate(mine)
        else:
            alone = cls(loaded, batch_size=1).generate(mine)
        key = "tokens" if cls.__name__ == "GraphEngine" else None
        same += all((alone[r.key].extra.get(key) if key else alone[r.key].output) == (full[r.key].extra.get(key) if key else full[r.key].output)
                    for r in mine)
    return {"cases": len(cases), "identical": same, "width": width, "rows_in_full_batch": len(rq)}


def profile_step(torch, loaded, rq, out: dict) -> None:
    """Where a step's time goes: the kernels of 8 graph replays at width 16, by name (torch.profiler)."""
    from torch.profiler import ProfilerActivity, profile

    from shisa_spec.generation.graph_engine import GraphEngine

    e = GraphEngine(loaded, width=16, min_new_tokens=8)
    short = [r.__class__(r.case_id, r.rendered, r.settings.__class__(**{**r.settings.as_dict(), "max_new_tokens": 8}), r.seed, r.sample) for r in rq]
    e.generate(short)
    with profile(activities=[ProfilerActivity.CUDA]) as prof:
        e.generate(short)
    rows = []
    for ev in prof.key_averages():
        if ev.device_type.name == "CUDA" or getattr(ev, "self_device_time_total", 0):
            rows.append((ev.key[:90], ev.count, getattr(ev, "self_device_time_total", 0) / 1e3))
    rows.sort(key=lambda x: -x[2])
    total = sum(r[2] for r in rows)
    out["profile_w16_8_steps"] = {"total_kernel_ms": total, "top": rows[:25]}
    log(f"profile, width 16, 8 steps: kernel time {total:.1f} ms")
    for name, count, ms in rows[:25]:
        log(f"  {ms:8.2f} ms  {count:6d}x  {name}")


def copy_bandwidth(torch, nbytes: int = 2 << 30, reps: int = 10) -> float:
    src = torch.empty(nbytes, dtype=torch.uint8, device="cuda")
    dst = torch.empty_like(src)
    for _ in range(3):
        dst.copy_(src)
    torch.cuda.synchronize()
    t = time.perf_counter()
    for _ in range(reps):
        dst.copy_(src)
    torch.cuda.synchronize()
    dt = time.perf_counter() - t
    del src, dst
    torch.cuda.empty_cache()
    return 2 * nbytes * reps / dt


def build(save: Path, tokenizer: Path) -> None:
    import gc

    import torch
    from transformers import AutoTokenizer, MistralConfig, MistralForCausalLM

    sys.path.insert(0, str(ROOT / "bench"))
    from bench_generate import SHISA_CONFIG

    t = time.perf_counter()
    torch.manual_seed(0)
    with torch.device("cuda"):
        torch.set_default_dtype(torch.bfloat16)
        model = MistralForCausalLM(MistralConfig(**SHISA_CONFIG))
        torch.set_default_dtype(torch.float32)
    model.generation_config.use_cache = False
    model.save_pretrained(save, safe_serialization=True, max_shard_size="5GB")
    AutoTokenizer.from_pretrained(tokenizer).save_pretrained(save)
    del model
    gc.collect()
    log(f"built {save} in {time.perf_counter() - t:.1f} s")


def summary(out: dict) -> str:
    lines = [f"device {out.get('device')}, torch {out.get('torch')}, transformers {out.get('transformers')}; "
             f"limit {out.get('limit_ms_per_step', 0):.2f} ms/step"]
    ph = out.get("cold_phases", {})
    if ph:
        lines.append("cold phases (s): " + ", ".join(f"{k} {v:.2f}" for k, v in ph.items() if isinstance(v, float)))
    for k in ("graph_w16", "graph_w256", "generate_w16", "generate_w256"):
        if k in out:
            r = out[k]
            lines.append(f"{k}: {r['ms_per_step']:.2f} ms/step ({r['ratio_to_limit']:.2f}x the limit)")
    for k in ("invariance_w16", "invariance_w256", "invariance_generate_w16"):
        if k in out:
            lines.append(f"{k}: {out[k]['identical']}/{out[k]['cases']} cases identical alone and in the full batch")
    for k in ("spec_n1", "spec_n16"):
        if k in out:
            lines.append(f"{k}: {out[k]['seconds']:.2f} s for {out[k]['rows']} rows")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
