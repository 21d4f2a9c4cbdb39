"""Seeded, batched generation through transformers' ``generate()``: the reference engine.

Sampling is done by ``RowSampler``, a logits processor around ``sampling.choose`` (repetition
penalty, temperature, top-p, counter-based Gumbel noise per row), so ``generate()`` runs greedy
over its choice. The penalty only looks at a row's own tokens (never at left padding) and the
noise hashes the row's seed, the step and the token id, so a case's text is the same alone, in
any batch, in any order and under xdist (exactly so on CPU in fp32; on a GPU batched matmuls can
round differently). ``graph_engine.GraphEngine`` is the fast engine with the same sampler.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Sequence

from shisa_spec.spec.cases import GenerationSettings

ENGINE_VERSION = "2"  # bump when a change alters generated text (part of the cache key); 2: sampling.py


def case_seed(seed: int, case_id: str) -> int:
    """The per-case seed: stable across runs, processes and Python hash randomisation."""
    return int.from_bytes(hashlib.sha256(f"{seed}:{case_id}".encode()).digest()[:8], "little") & (2**63 - 1)


def sample_seed(seed: int, case_id: str, sample: int) -> int:
    """The seed of one sample of a case: sample 0 is the case seed, so a one-sample run reproduces earlier runs."""
    if sample == 0:
        return case_seed(seed, case_id)
    return int.from_bytes(hashlib.sha256(f"{seed}:{case_id}:{sample}".encode()).digest()[:8], "little") & (2**63 - 1)


SampleKey = tuple[str, int]  # (case id, 0-based sample index)


@dataclass(frozen=True)
class Request:
    case_id: str
    rendered: str
    settings: GenerationSettings
    seed: int
    sample: int = 0
    messages: tuple[tuple[str, str], ...] = ()  # (role, content) the rendering came from: a chat endpoint sends these

    @property
    def key(self) -> SampleKey:
        return (self.case_id, self.sample)


@dataclass
class Result:
    case_id: str
    output: str
    finish_reason: str  # "eos" or "length"
    new_tokens: int
    prompt_tokens: int
    seconds: float = 0.0
    batch_size: int = 1
    from_cache: bool = False
    extra: dict[str, Any] = field(default_factory=dict)
    sample: int = 0

    @property
    def key(self) -> SampleKey:
        return (self.case_id, self.sample)


def cut_at_eos(tokens: list[int], eos_token_id: int) -> tuple[list[int], str]:
    """A row's new tokens up to (not including) the first EOS, and the finish reason: "eos" or "length"."""
    if eos_token_id in tokens:
        return tokens[: tokens.index(eos_token_id)], "eos"
    return tokens, "length"


class GenerationOOM(RuntimeError):
    pass


class RowSampler:
    """The shared sampler (``sampling.choose``) as a LogitsProcessor for transformers' ``generate()``.

    Each row's repetition penalty looks only at its own tokens (never at left padding); the noise
    is counter-based (a hash of the row's seed, the step and the token id), so a row's text does
    not depend on its companions. With sampling it returns scores that are 0 at the chosen token
    and -inf elsewhere, so ``generate()``'s greedy pick is the sampler's choice.
    """

    def __init__(self, seeds: Sequence[int], pad_lens: Sequence[int], settings: GenerationSettings, device: Any):
        import torch

        from shisa_spec.generation import sampling

        self.settings = settings
        self.pad_lens = torch.tensor(list(pad_lens), device=device).unsqueeze(1)  # once: a per-step copy would sync
        self.seed_lo, self.seed_hi = sampling.split_seeds(torch.tensor(list(seeds), dtype=torch.int64, device=device).unsqueeze(1))
        self.prompt_width: int | None = None  # the padded prompt's width, seen on the first call

    def seen(self, input_ids: Any, vocab: int) -> Any:
        import torch

        batch = input_ids.shape[0]
        ids = input_ids.clone()
        positions = torch.arange(ids.shape[1], device=ids.device).unsqueeze(0)
        ids[positions < self.pad_lens] = vocab  # a dummy column, dropped below
        seen = torch.zeros(batch, vocab + 1, dtype=torch.bool, device=ids.device)
        seen.scatter_(1, ids, True)
        return seen[:, :vocab]

    def __call__(self, input_ids: Any, scores: Any) -> Any:
        import torch

        from shisa_spec.generation import sampling

        if self.prompt_width is None:
            self.prompt_width = input_ids.shape[1]
        s = self.settings
        scores = scores.float()
        seen = self.seen(input_ids.to(scores.device), scores.shape[1])
        if not s.do_sample:
            return sampling.penalise(scores, seen, s.repetition_penalty)
        step = torch.tensor(input_ids.shape[1] - self.prompt_width, dtype=torch.int64, device=scores.device)
        token = sampling.choose(scores, seen, s, self.seed_lo, self.seed_hi, step)
        return torch.full_like(scores, float("-inf")).scatter_(1, token.unsqueeze(1), 0.0)


def plan_batches(requests: Iterable[Request], batch_size: int) -> list[list[Request]]:
    """Group requests with equal settings, in a stable order, into batches of at most batch_size."""
    groups: dict[GenerationSettings, list[Request]] = {}
    for r in sorted(requests, key=lambda r: (r.case_id, r.sample)):
        groups.setdefault(r.settings, []).append(r)
    batches = []
    for reqs in groups.values():
        for i in range(0, len(reqs), max(1, batch_size)):
            batches.append(reqs[i : i + batch_size])
    return batches


class Engine:
    """Runs requests through a loaded model in batches."""

    def __init__(self, loaded: Any, batch_size: int = 16, static_cache: bool = False, min_new_tokens: int | None = None):
        self.loaded = loaded
        self.batch_size = batch_size
        self.static_cache = static_cache
        self.min_new_tokens = min_new_tokens
        self.batches_run = 0
        self._step: Any = None  # the compiled decode step of --static-cache on, made on first use

    def generate(self, requests: Sequence[Request], on_batch: Callable[[list[Result]], None] | None = None) -> dict[SampleKey, Result]:
        """Results by (case id, sample); ``on_batch`` sees each batch as soon as it is done (an interrupted run keeps those)."""
        out: dict[SampleKey, Result] = {}
        for batch in plan_batches(requests, self.batch_size):
            done = self._run_batch(batch)
            if on_batch is not None:
                on_batch(done)
            for r in done:
                out[r.key] = r
        return out

    def _run_batch(self, batch: list[Request]) -> list[Result]:
        import torch
        from transformers import LogitsProcessorList

        model, tok = self.loaded.model, self.loaded.tokenizer
        settings = batch[0].settings
        enc = tok([r.rendered for r in batch], add_special_tokens=False, padding=True, return_tensors="pt")
        input_ids = enc["input_ids"].to(model.device)
        attention = enc["attention_mask"].to(model.device)
        pad_lens = (attention == 0).sum(dim=1).tolist()
        sampler = RowSampler([r.seed for r in batch], pad_lens, settings, model.device)
        start = time.perf_counter()
        try:
            with torch.inference_mode():
                if self.static_cache:
                    seqs = self._decode_loop(input_ids, attention, sampler, settings)
                else:
                    seqs = model.generate(
                        input_ids, attention_mask=attention, max_new_tokens=settings.max_new_tokens,
                        min_new_tokens=self.min_new_tokens, do_sample=False, num_beams=1,
                        logits_processor=LogitsProcessorList([sampler]), pad_token_id=tok.pad_token_id,
                        eos_token_id=tok.eos_token_id, use_cache=True,
                    )
        except torch.cuda.OutOfMemoryError:
            from shisa_spec.generation.loader import oom_message, weight_bytes

            raise GenerationOOM(
                oom_message(f"generating a batch of {len(batch)}", weight_bytes(model), str(model.device), self.loaded.options.quantize)
            ) from None
        if model.device.type == "cuda":
            torch.cuda.synchronize(model.device)
        seconds = time.perf_counter() - start
        self.batches_run += 1
        new = seqs[:, input_ids.shape[1] :].tolist()
        results = []
        for i, r in enumerate(batch):
            tokens, reason = cut_at_eos(new[i], tok.eos_token_id)
            results.append(
                Result(
                    case_id=r.case_id,
                    output=tok.decode(tokens, skip_special_tokens=True).strip(),
                    finish_reason=reason,
                    new_tokens=len(tokens) + (1 if reason == "eos" else 0),
                    prompt_tokens=int(attention[i].sum()),
                    seconds=seconds,
                    batch_size=len(batch),
                    sample=r.sample,
                )
            )
        return results

    def _compiled_step(self) -> Any:
        """The model's forward compiled once per engine: static shapes (dynamic=False) and CUDA graphs."""
        import torch

        if self._step is None:
            self._step = torch.compile(self.loaded.model.__call__, mode="reduce-overhead", dynamic=False, fullgraph=False)
        return self._step

    def _decode_loop(self, input_ids: Any, attention: Any, sampler: RowSampler, settings: GenerationSettings) -> Any:
        """Our own decode loop over a static KV cache, replacing generate() for --static-cache on.

        The decode step is the model's forward compiled with CUDA graphs on CUDA; unlike generate(),
        the loop never waits for the GPU except to check for EOS every 16 steps, so the CPU queues
        work ahead. Rows sample exactly as in generate() (same sampler, same draws per step), and
        finished rows receive the pad token, as generate() gives them.
        """
        model = self.loaded.model
        total = input_ids.shape[1] + settings.max_new_tokens
        window = getattr(model.config, "sliding_window", None)
        if window is not None and total <= window:
            # The window cannot bite within `total` tokens, so full attention is the same maths; and
            # transformers 5.17's sliding static cache keeps a per-step Python int that makes
            # torch.compile recompile at every step (measured: 29 ms/step instead of a graph replay).
            model.config.sliding_window = None
        try:
            return self._decode(input_ids, attention, sampler, settings, total)
        finally:
            model.config.sliding_window = window

    def _decode(self, input_ids: Any, attention: Any, sampler: RowSampler, settings: GenerationSettings, total: int) -> Any:
        import inspect

        import torch
        from transformers import StaticCache

        model, tok = self.loaded.model, self.loaded.tokenizer
        dev = input_ids.device
        batch, plen = input_ids.shape
        n_new = settings.max_new_tokens
        cache = StaticCache(config=model.config, max_cache_len=total)
        mask = torch.ones(batch, total, dtype=attention.dtype, device=dev)
        mask[:, :plen] = attention
        hist = torch.full((batch, total), tok.pad_token_id, dtype=input_ids.dtype, device=dev)
        hist[:, :plen] = input_ids
        valid = attention.sum(-1)
        positions = (attention.cumsum(-1) - 1).clamp(min=0)
        # transformers renamed past_key_values to cache (deprecated from 5.2x); older 5.x only knows the first
        ckw = "cache" if "cache" in inspect.signature(model.forward).parameters else "past_key_values"
        out = model(input_ids=input_ids, attention_mask=mask, position_ids=positions, **{ckw: cache},
                    cache_position=torch.arange(plen, device=dev), use_cache=True, logits_to_keep=1)
        step = self._compiled_step() if dev.type == "cuda" else model.__call__
        cache_positions = torch.arange(plen, total, device=dev)  # on the device: a per-step host copy would sync
        eos, pad = tok.eos_token_id, tok.pad_token_id
        finished = torch.zeros(batch, dtype=torch.bool, device=dev)
        steps = 0
        for t in range(n_new):
            scores = sampler(hist[:, : plen + t], out.logits[:, -1].float())
            if self.min_new_tokens and t < self.min_new_tokens:
                scores[:, eos] = float("-inf")
            nxt = torch.where(finished, torch.full_like(finished, pad, dtype=hist.dtype), scores.argmax(-1))
            hist[:, plen + t] = nxt
            finished |= nxt == eos
            steps = t + 1
            if t == n_new - 1 or (t % 16 == 15 and bool(finished.all())):
                break
            out = step(input_ids=nxt.unsqueeze(1), attention_mask=mask, position_ids=(valid + t).unsqueeze(1),
                       **{ckw: cache}, cache_position=cache_positions[t : t + 1], use_cache=True)
        return hist[:, : plen + steps]
