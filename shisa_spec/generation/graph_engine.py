"""A decode engine for Mistral/Llama-architecture models whose whole decode step is one CUDA graph.

Our own forward in plain torch over the loaded transformers module's weights (RMSNorm, RoPE from
the module's own rotary embedding, grouped-query attention that reads the KV heads as they are,
SwiGLU), a static KV cache, and the shared sampler (``sampling.choose``: repetition penalty,
temperature, top-p among the most likely tokens, counter-based noise) run as one step: sample
the next token from the scores, record it, run the forward on it. On CUDA that step is captured
once per shape with ``torch.cuda.graph`` (no compilation) and replayed; the host only looks at the
GPU every ``CHECK_EVERY`` steps to stop once every row has ended. On CPU the same step runs eagerly.

Batch invariance: a row's computation never depends on its companions. Every batch has the
same width (idle rows fill it), each row's prompt sits at the start of its own cache row (no left
padding), and the cache length comes from the row's own prompt length and token budget
(``cache_len``), so rows of another cache length run in another batch. Each distinct prompt is
prefilled on its own (samples of one case share it), so a prompt's cache does not depend on the batch.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Callable, Sequence

from shisa_spec.generation.engine import GenerationOOM, Request, Result, SampleKey, cut_at_eos
from shisa_spec.generation.loader import SUPPORTED_TYPES, oom_message, weight_bytes

CACHE_STEP = 512  # cache lengths are multiples of this: one batch for the spec's prompts
CHECK_EVERY = 16  # steps between looks at whether every row has ended


def unsupported(loaded: Any) -> str | None:
    """Why the graph engine cannot run this model (None: it can)."""
    model = loaded.model
    cfg = model.config
    if getattr(cfg, "model_type", None) not in SUPPORTED_TYPES:
        return f"model type {getattr(cfg, 'model_type', None)!r} (supported: {', '.join(SUPPORTED_TYPES)})"
    if loaded.options.quantize != "none" or getattr(model, "hf_device_map", None) and loaded.options.device_map:
        return "quantised or spread over devices"
    if getattr(cfg, "hidden_act", "silu") != "silu":
        return f"activation {cfg.hidden_act}"
    layer = model.model.layers[0]
    for lin in (layer.self_attn.q_proj, layer.self_attn.o_proj, layer.mlp.gate_proj, layer.mlp.down_proj):
        if getattr(lin, "bias", None) is not None:
            return "linear layers with bias"
    return None


def cache_len(prompt_len: int, max_new_tokens: int) -> int:
    return -(-(prompt_len + max_new_tokens) // CACHE_STEP) * CACHE_STEP


class _Weights:
    """The module's weights, with q/k/v and gate/up fused; the module's own parameters become views of them."""

    def __init__(self, model: Any):
        import torch

        self.model = model
        inner = model.model
        self.embed = inner.embed_tokens.weight
        self.norm = inner.norm
        self.rotary = inner.rotary_emb
        self.lm_head = model.lm_head.weight
        attn0 = inner.layers[0].self_attn
        cfg = model.config
        self.heads = cfg.num_attention_heads
        self.kv_heads = cfg.num_key_value_heads
        self.head_dim = getattr(attn0, "head_dim", None) or cfg.hidden_size // cfg.num_attention_heads
        self.scaling = getattr(attn0, "scaling", self.head_dim**-0.5)
        self.layers = []
        with torch.no_grad():
            for layer in inner.layers:
                at, mlp = layer.self_attn, layer.mlp
                qkv = _fuse([at.q_proj, at.k_proj, at.v_proj])
                gate_up = _fuse([mlp.gate_proj, mlp.up_proj])
                self.layers.append((layer.input_layernorm, qkv, at.o_proj.weight, layer.post_attention_layernorm, gate_up,
                                    mlp.down_proj.weight, mlp.act_fn))


def _fuse(linears: list[Any]) -> Any:
    import torch

    ws = [lin.weight for lin in linears]
    fused = torch.cat([w.data for w in ws])
    row = 0
    for lin in linears:
        n = lin.weight.shape[0]
        lin.weight.data = fused[row : row + n]
        row += n
    return fused


def _rotate_half(x: Any) -> Any:
    import torch

    half = x.shape[-1] // 2
    return torch.cat((-x[..., half:], x[..., :half]), dim=-1)


class _Forward:
    """The model's forward in plain torch: a prompt's prefill, and a decode step over the static cache."""

    def __init__(self, weights: _Weights, fused: bool = False):
        self.w = weights
        self.fused = fused  # the Triton kernels (CUDA only)

    def prefill(self, ids: Any) -> tuple[Any, list[tuple[Any, Any]]]:
        """Last position's logits (float32 [vocab]) and each layer's keys and values ([kv_heads, len, head_dim])."""
        import torch
        import torch.nn.functional as F

        w = self.w
        n = ids.shape[0]
        h = w.embed[ids].unsqueeze(0)
        pos = torch.arange(n, device=ids.device).unsqueeze(0)
        cos, sin = w.rotary(h, pos)
        cos, sin = cos.unsqueeze(1), sin.unsqueeze(1)
        hq, hk, d = w.heads, w.kv_heads, w.head_dim
        kvs = []
        for ln1, qkv, wo, ln2, gate_up, wd, act in w.layers:
            x = ln1(h)
            y = F.linear(x, qkv).view(1, n, hq + 2 * hk, d).transpose(1, 2)
            qk = y[:, : hq + hk]
            qk = qk * cos + _rotate_half(qk) * sin
            q, k, v = qk[:, :hq], qk[:, hq:], y[:, hq + hk :]
            kvs.append((k[0], v[0]))
            with _prefill_attention(ids.device):
                o = F.scaled_dot_product_attention(q, k, v, is_causal=True, scale=w.scaling, enable_gqa=True)
            h = h + F.linear(o.transpose(1, 2).reshape(1, n, hq * d), wo)
            g, u = F.linear(ln2(h), gate_up).chunk(2, dim=-1)
            h = h + F.linear(act(g) * u, wd)
        logits = F.linear(w.norm(h[:, -1]), w.lm_head)
        return logits[0].float(), kvs

    def decode(self, tok: Any, pos: Any, kcache: list[Any], vcache: list[Any], bias: Any) -> Any:
        """Logits (float32 [rows, vocab]) for one token per row at cache slot ``pos``; writes that slot's keys and values."""
        if self.fused:
            return self._decode_fused(tok, pos, kcache, vcache)
        import torch
        import torch.nn.functional as F

        w = self.w
        rows = tok.shape[0]
        hq, hk, d = w.heads, w.kv_heads, w.head_dim
        group = hq // hk
        h = w.embed[tok]
        cos, sin = w.rotary(h, pos.unsqueeze(1))  # [rows, 1, head_dim]
        slot = pos.view(rows, 1, 1, 1).expand(rows, hk, 1, d)
        for (ln1, qkv, wo, ln2, gate_up, wd, act), kc, vc in zip(w.layers, kcache, vcache):
            y = F.linear(ln1(h), qkv).view(rows, hq + 2 * hk, d)
            qk = y[:, : hq + hk]
            qk = qk * cos + _rotate_half(qk) * sin
            kc.scatter_(2, slot, qk[:, hq:].unsqueeze(2))
            vc.scatter_(2, slot, y[:, hq + hk :].unsqueeze(2))
            q = qk[:, :hq].reshape(rows, hk, group, d)
            s = torch.matmul(q, kc.transpose(2, 3)).float() * w.scaling + bias  # [rows, kv_heads, group, cache]
            p = torch.softmax(s, dim=-1).to(vc.dtype)
            o = torch.matmul(p, vc).reshape(rows, hq * d)
            h = h + F.linear(o, wo)
            g, u = F.linear(ln2(h), gate_up).chunk(2, dim=-1)
            h = h + F.linear(act(g) * u, wd)
        return F.linear(w.norm(h), w.lm_head).float()

    def _decode_fused(self, tok: Any, pos: Any, kcache: list[Any], vcache: list[Any]) -> Any:
        """The same step with the Triton kernels of kernels.py and the residual adds inside the GEMMs (CUDA)."""
        import torch
        import torch.nn.functional as F

        from shisa_spec.generation import kernels

        w = self.w
        hq, hk, d = w.heads, w.kv_heads, w.head_dim
        h = w.embed[tok]
        cos, sin = w.rotary(h, pos.unsqueeze(1))
        cos, sin = cos[:, 0].contiguous(), sin[:, 0].contiguous()
        for (ln1, qkv, wo, ln2, gate_up, wd, act), kc, vc in zip(w.layers, kcache, vcache):
            y = F.linear(kernels.rms_norm(h, ln1.weight, _eps(ln1)), qkv)
            q = kernels.rope_and_cache(y, cos, sin, pos, kc, vc, hq, hk, d)
            o = kernels.decode_attention(q, kc, vc, pos, w.scaling)
            h = torch.addmm(h, o, wo.t())
            a = kernels.silu_mul(F.linear(kernels.rms_norm(h, ln2.weight, _eps(ln2)), gate_up))
            h = torch.addmm(h, a, wd.t())
        return F.linear(kernels.rms_norm(h, w.norm.weight, _eps(w.norm)), w.lm_head).float()


def _prefill_attention(device: Any) -> Any:
    """On CUDA, flash attention (inside libtorch): cuDNN's would load its library, seconds in a cold process."""
    import contextlib

    if device.type != "cuda":
        return contextlib.nullcontext()
    from torch.nn.attention import SDPBackend, sdpa_kernel

    return sdpa_kernel([SDPBackend.FLASH_ATTENTION, SDPBackend.EFFICIENT_ATTENTION, SDPBackend.MATH])


def _eps(norm: Any) -> float:
    return float(getattr(norm, "variance_epsilon", getattr(norm, "eps", 1e-6)))


@dataclass
class _Shape:
    width: int
    cache: int
    settings: Any
    min_new: int


class _Runner:
    """Static buffers and (on CUDA) the captured step for one shape: batch width, cache length, settings."""

    def __init__(self, fwd: _Forward, shape: _Shape, device: Any, dtype: Any, eos: int, pad: int):
        import torch

        self.fwd, self.shape, self.device, self.eos, self.pad = fwd, shape, device, eos, pad
        w, L, n = shape.width, shape.cache, shape.settings.max_new_tokens
        wt = fwd.w
        vocab = wt.lm_head.shape[0]
        self.kcache = [torch.zeros(w, wt.kv_heads, L, wt.head_dim, dtype=dtype, device=device) for _ in wt.layers]
        self.vcache = [torch.zeros_like(k) for k in self.kcache]
        self.logits = torch.zeros(w, vocab, dtype=torch.float32, device=device)
        self.seen = torch.zeros(w, vocab, dtype=torch.bool, device=device)
        self.pos = torch.zeros(w, dtype=torch.int64, device=device)
        self.seed_lo = torch.zeros(w, 1, dtype=torch.int64, device=device)
        self.seed_hi = torch.zeros(w, 1, dtype=torch.int64, device=device)
        self.step_t = torch.zeros(1, dtype=torch.int64, device=device)
        self.finished = torch.zeros(w, dtype=torch.bool, device=device)
        self.out = torch.full((w, n), pad, dtype=torch.int64, device=device)
        self.slots = torch.arange(L, device=device)
        self.graph: Any = None

    def step(self) -> None:
        """Sample each row's next token from ``logits``, record it, and run the forward on it (all in place)."""
        import torch

        from shisa_spec.generation import sampling

        s = self.shape
        scores = self.logits
        if s.min_new:
            ban = self.step_t < s.min_new
            scores[:, self.eos] = torch.where(ban, torch.full_like(scores[:, self.eos], float("-inf")), scores[:, self.eos])
        nxt = sampling.choose(scores, self.seen, s.settings, self.seed_lo, self.seed_hi, self.step_t.view(1, 1))
        nxt = torch.where(self.finished, torch.full_like(nxt, self.pad), nxt)
        self.out.scatter_(1, self.step_t.expand(s.width).unsqueeze(1), nxt.unsqueeze(1))
        self.finished |= nxt == self.eos
        self.seen.scatter_(1, nxt.unsqueeze(1), True)
        bias = None
        if not self.fwd.fused:  # the fused attention kernel reads each row's filled slots only
            bias = torch.where(self.slots.unsqueeze(0) <= self.pos.unsqueeze(1), 0.0, float("-inf")).view(s.width, 1, 1, -1)
        self.logits.copy_(self.fwd.decode(nxt, self.pos, self.kcache, self.vcache, bias))
        self.pos += 1
        self.step_t += 1

    def capture(self) -> float:
        """Capture ``step`` as a CUDA graph (after warm-up on a side stream); the seconds it took."""
        import torch

        t0 = time.perf_counter()
        side = torch.cuda.Stream(self.device)
        side.wait_stream(torch.cuda.current_stream(self.device))
        with torch.cuda.stream(side):
            for _ in range(2):
                self.step()
        torch.cuda.current_stream(self.device).wait_stream(side)
        self.graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(self.graph):
            self.step()
        torch.cuda.synchronize(self.device)
        return time.perf_counter() - t0

    def run(self, n_steps: int) -> int:
        """Replay the step until every row has ended or the budget is spent; the steps taken."""
        done = 0
        while done < n_steps:
            if self.graph is not None:
                self.graph.replay()
            else:
                self.step()
            done += 1
            if done % CHECK_EVERY == 0 and done < n_steps and bool(self.finished.all()):
                break
        return done


class GraphEngine:
    """The fast engine: results keyed by (case id, sample), ``on_batch`` after each batch (the engine contract)."""

    def __init__(self, loaded: Any, width: int = 16, min_new_tokens: int | None = None, graphs: bool | None = None,
                 fused: bool | None = None):
        self.loaded = loaded
        self.width = max(1, width)
        self.min_new_tokens = min_new_tokens
        self.batches_run = 0
        self.device = loaded.model.device
        self.graphs = self.device.type == "cuda" if graphs is None else graphs
        self.fused = fused  # None: the Triton kernels where they run (CUDA, Triton importable, power-of-two head size)
        self.timings: dict[str, float] = {"prefill_s": 0.0, "capture_s": 0.0, "decode_s": 0.0}
        self.steps_run = 0
        self._fwd: _Forward | None = None
        self._runners: dict[tuple, _Runner] = {}

    def _forward(self) -> _Forward:
        if self._fwd is None:
            model = self.loaded.model
            weights = model.__dict__.get("_shisa_graph_weights")  # fused once per model, shared by its engines
            if weights is None:
                weights = _Weights(model)
                model.__dict__["_shisa_graph_weights"] = weights
            fused = self.fused
            if fused is None:
                from shisa_spec.generation.kernels_check import can_fuse

                fused = can_fuse(weights.head_dim, self.device)
            self._fwd = _Forward(weights, fused)
        return self._fwd

    def plan(self, requests: Sequence[Request], lengths: dict[str, int]) -> list[list[Request]]:
        """Batches of at most ``width`` rows sharing settings and cache length, in a stable order."""
        groups: dict[tuple, list[Request]] = {}
        for r in sorted(requests, key=lambda r: (r.case_id, r.sample)):
            groups.setdefault((r.settings, cache_len(lengths[r.rendered], r.settings.max_new_tokens)), []).append(r)
        return [reqs[i : i + self.width] for reqs in groups.values() for i in range(0, len(reqs), self.width)]

    def generate(self, requests: Sequence[Request], on_batch: Callable[[list[Result]], None] | None = None) -> dict[SampleKey, Result]:
        import torch

        tok = self.loaded.tokenizer
        ids = {r.rendered: tok(r.rendered, add_special_tokens=False)["input_ids"] for r in requests}
        out: dict[SampleKey, Result] = {}
        limit = self._max_cache()
        long = [r for r in requests if cache_len(len(ids[r.rendered]), r.settings.max_new_tokens) > limit]
        if long:  # past the sliding window (or the positions) the reference engine's attention is the right one
            from shisa_spec.generation.engine import Engine

            out.update(Engine(self.loaded, batch_size=self.width, min_new_tokens=self.min_new_tokens).generate(long, on_batch))
            requests = [r for r in requests if r.key not in out]
        import contextlib

        on_device = torch.cuda.device(self.device) if self.device.type == "cuda" else contextlib.nullcontext()
        try:
            with torch.inference_mode(), on_device:  # graphs and streams on the model's GPU (xdist: cuda:N)
                for batch in self.plan(requests, {k: len(v) for k, v in ids.items()}):
                    done = self._run_batch(batch, ids)
                    if on_batch is not None:
                        on_batch(done)
                    for r in done:
                        out[r.key] = r
        except torch.cuda.OutOfMemoryError:
            model = self.loaded.model
            raise GenerationOOM(oom_message(f"generating a batch of {self.width} rows", weight_bytes(model), str(model.device),
                                            self.loaded.options.quantize)) from None
        return out

    def _max_cache(self) -> int:
        cfg = self.loaded.model.config
        window = getattr(cfg, "sliding_window", None) or getattr(cfg, "max_position_embeddings", None) or 1 << 30
        return min(window, getattr(cfg, "max_position_embeddings", None) or window)

    def _runner(self, shape: _Shape) -> _Runner:
        key = (shape.width, shape.cache, shape.settings, shape.min_new)
        runner = self._runners.get(key)
        if runner is None:
            model, tok = self.loaded.model, self.loaded.tokenizer
            runner = _Runner(self._forward(), shape, self.device, model.dtype, tok.eos_token_id, tok.pad_token_id)
            if self.graphs:
                self.timings["capture_s"] += runner.capture()
            self._runners[key] = runner
        return runner

    def _run_batch(self, batch: list[Request], ids: dict[str, list[int]]) -> list[Result]:
        import torch

        from shisa_spec.generation import sampling

        settings = batch[0].settings
        L = cache_len(len(ids[batch[0].rendered]), settings.max_new_tokens)
        run = self._runner(_Shape(self.width, L, settings, self.min_new_tokens or 0))
        dev, fwd = self.device, self._forward()
        start = time.perf_counter()
        for kc, vc in zip(run.kcache, run.vcache):
            kc.zero_()
            vc.zero_()
        run.logits.zero_()
        run.seen.zero_()
        run.finished.zero_()
        run.out.fill_(run.pad)
        run.step_t.zero_()
        run.pos.fill_(1)  # idle rows: one empty slot, never read by a real row
        seeds = torch.zeros(self.width, 1, dtype=torch.int64)
        seeds[: len(batch), 0] = torch.tensor([r.seed for r in batch], dtype=torch.int64)
        lo, hi = sampling.split_seeds(seeds)
        run.seed_lo.copy_(lo)
        run.seed_hi.copy_(hi)
        rows_of: dict[str, list[int]] = {}
        for i, r in enumerate(batch):
            rows_of.setdefault(r.rendered, []).append(i)
        for text, rows in rows_of.items():
            prompt = torch.tensor(ids[text], dtype=torch.int64, device=dev)
            n = prompt.shape[0]
            logits, kvs = fwd.prefill(prompt)
            idx = torch.tensor(rows, device=dev)
            for (k, v), kc, vc in zip(kvs, run.kcache, run.vcache):
                kc[idx, :, :n] = k.unsqueeze(0)
                vc[idx, :, :n] = v.unsqueeze(0)
            run.logits[idx] = logits.unsqueeze(0)
            run.seen[idx.unsqueeze(1), prompt.unsqueeze(0)] = True
            run.pos[idx] = n
        if dev.type == "cuda":
            torch.cuda.synchronize(dev)
        t_prefill = time.perf_counter()
        steps = run.run(settings.max_new_tokens)
        new = run.out.tolist()
        end = time.perf_counter()
        self.timings["prefill_s"] += t_prefill - start
        self.timings["decode_s"] += end - t_prefill
        self.steps_run += steps
        self.batches_run += 1
        tok = self.loaded.tokenizer
        results = []
        for i, r in enumerate(batch):
            tokens, reason = cut_at_eos(new[i], tok.eos_token_id)
            results.append(Result(
                case_id=r.case_id, output=tok.decode(tokens, skip_special_tokens=True).strip(), finish_reason=reason,
                new_tokens=len(tokens) + (1 if reason == "eos" else 0), prompt_tokens=len(ids[r.rendered]),
                seconds=end - start, batch_size=len(batch), sample=r.sample,
                extra={"tokens": tokens},
            ))
        return results
