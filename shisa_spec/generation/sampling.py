"""The sampler both engines share: repetition penalty, temperature, top-p and counter-based noise.

One function, ``choose``, picks every row's next token from its scores with plain tensor ops,
so the reference path (transformers' ``generate()`` with ``RowSampler``) and the CUDA-graph
engine make the same choice from the same scores. Its noise is counter-based: a 32-bit integer
hash of (row seed, step, token id) computed with integer tensor ops, turned into a Gumbel draw,
so it needs no ``torch.Generator``, lives inside a CUDA graph and depends on nothing but the row.

Top-p keeps the most likely tokens whose probability mass *above* them is below ``top_p``, looked
for among the ``TOP_P_CANDIDATES`` most likely tokens (a ``topk``, not a sort of the whole
vocabulary): a nucleus larger than that is cut to it. With ``top_p`` 1.0 every token competes.
"""

from __future__ import annotations

from typing import Any

TOP_P_CANDIDATES = 64
_M32 = 0xFFFFFFFF


def _mix(x: Any) -> Any:
    """A 32-bit integer mixer (xor-shift-multiply) on int64 tensors holding values below 2**32.

    Both multipliers are below 2**31, so no product leaves int64: CPU and CUDA agree bit for bit.
    """
    x = x ^ (x >> 16)
    x = (x * 0x7FEB352D) & _M32
    x = x ^ (x >> 15)
    x = (x * 0x446CA68B) & _M32
    return x ^ (x >> 16)


def split_seeds(seeds: Any) -> tuple[Any, Any]:
    """Low and high 32-bit halves of 63-bit seeds (an int64 tensor)."""
    return seeds & _M32, (seeds >> 32) & _M32


def uniform(seed_lo: Any, seed_hi: Any, step: Any, token: Any) -> Any:
    """A float32 in (0, 1) per element: a hash of (seed, step, token id), all int64 tensors that broadcast."""
    import torch

    h = _mix(seed_lo ^ _mix(seed_hi ^ _mix((step & _M32) ^ _mix(token & _M32))))
    return ((h >> 8).to(torch.float32) + 0.5) * (1.0 / 16777216.0)


def gumbel(seed_lo: Any, seed_hi: Any, step: Any, token: Any) -> Any:
    import torch

    return -torch.log(-torch.log(uniform(seed_lo, seed_hi, step, token)))


def penalise(scores: Any, seen: Any, penalty: float) -> Any:
    """transformers' repetition penalty, on the tokens marked in ``seen`` (a bool mask like scores)."""
    import torch

    if penalty == 1.0:
        return scores
    return torch.where(seen, torch.where(scores > 0, scores / penalty, scores * penalty), scores)


def choose(scores: Any, seen: Any, settings: Any, seed_lo: Any, seed_hi: Any, step: Any) -> Any:
    """The next token of every row (int64, shape [rows]).

    scores: float32 [rows, vocab]; seen: bool [rows, vocab], the tokens of each row's own text;
    seed_lo/seed_hi: int64 [rows, 1]; step: int64 tensor broadcastable to [rows, 1] (0 for the first new token).
    """
    import torch

    scores = penalise(scores, seen, settings.repetition_penalty)
    if not settings.do_sample:
        return scores.argmax(-1)
    scores = scores / settings.temperature
    if settings.top_p >= 1.0:
        token = torch.arange(scores.shape[-1], device=scores.device)
        return (scores + gumbel(seed_lo, seed_hi, step, token)).argmax(-1)
    k = min(TOP_P_CANDIDATES, scores.shape[-1])
    vals, idx = scores.topk(k, dim=-1)  # sorted, most likely first
    probs = (vals - torch.logsumexp(scores, dim=-1, keepdim=True)).exp()
    above = probs.cumsum(-1) - probs  # the mass of the tokens more likely than each candidate
    keep = above < settings.top_p  # the first candidate always stays
    noisy = torch.where(keep, vals + gumbel(seed_lo, seed_hi, step, idx), torch.full_like(vals, float("-inf")))
    return idx.gather(-1, noisy.argmax(-1, keepdim=True)).squeeze(-1)
