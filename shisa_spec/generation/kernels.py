"""Fused Triton kernels for the graph engine's decode step on CUDA (CPU runs never import this).

Each replaces a chain of small element-wise kernels that, at a decode step's tiny shapes, cost
more in launches than in work: RMSNorm (one kernel instead of six), RoPE on the new token's
queries and keys plus the key/value cache write (one instead of about ten), SiLU times up (one
instead of two), and decode attention that reads the grouped KV heads as they are and only a
row's own filled slots (one instead of seven, and no reads of empty cache). Every program works on
one row, in a fixed order, so a row's numbers never depend on the other rows of the batch.
"""

from __future__ import annotations

from typing import Any

import torch
import triton
import triton.language as tl


@triton.jit
def _rms_norm_kernel(x_ptr, w_ptr, out_ptr, stride, n, eps, BLOCK: tl.constexpr):
    row = tl.program_id(0)
    offs = tl.arange(0, BLOCK)
    mask = offs < n
    x = tl.load(x_ptr + row * stride + offs, mask=mask, other=0.0).to(tl.float32)
    var = tl.sum(x * x, axis=0) / n
    y = (x * tl.rsqrt(var + eps)).to(out_ptr.dtype.element_ty)
    w = tl.load(w_ptr + offs, mask=mask, other=0.0)
    tl.store(out_ptr + row * n + offs, (w * y).to(out_ptr.dtype.element_ty), mask=mask)


def rms_norm(x: Any, weight: Any, eps: float) -> Any:
    rows, n = x.shape
    out = torch.empty((rows, n), dtype=x.dtype, device=x.device)
    _rms_norm_kernel[(rows,)](x, weight, out, x.stride(0), n, eps, BLOCK=triton.next_power_of_2(n), num_warps=8)
    return out


@triton.jit
def _rope_cache_kernel(y_ptr, cos_ptr, sin_ptr, pos_ptr, q_ptr, k_ptr, v_ptr, stride_y, stride_c, stride_kr, stride_kh, stride_ks,
                       HQ: tl.constexpr, HK: tl.constexpr, D: tl.constexpr, HALF: tl.constexpr):
    row = tl.program_id(0)
    head = tl.program_id(1)  # queries, then keys, then values
    offs = tl.arange(0, HALF)
    src = y_ptr + row * stride_y + head * D
    x1 = tl.load(src + offs).to(tl.float32)
    x2 = tl.load(src + HALF + offs).to(tl.float32)
    if head < HQ + HK:
        c1 = tl.load(cos_ptr + row * stride_c + offs).to(tl.float32)
        c2 = tl.load(cos_ptr + row * stride_c + HALF + offs).to(tl.float32)
        s1 = tl.load(sin_ptr + row * stride_c + offs).to(tl.float32)
        s2 = tl.load(sin_ptr + row * stride_c + HALF + offs).to(tl.float32)
        o1 = x1 * c1 - x2 * s1
        o2 = x2 * c2 + x1 * s2
    else:
        o1 = x1
        o2 = x2
    if head < HQ:
        dst = q_ptr + row * (HQ * D) + head * D
    else:
        slot = tl.load(pos_ptr + row)
        kv = head - HQ
        if kv < HK:
            dst = k_ptr + row * stride_kr + kv * stride_kh + slot * stride_ks
        else:
            dst = v_ptr + row * stride_kr + (kv - HK) * stride_kh + slot * stride_ks
    tl.store(dst + offs, o1.to(q_ptr.dtype.element_ty))
    tl.store(dst + HALF + offs, o2.to(q_ptr.dtype.element_ty))


def rope_and_cache(y: Any, cos: Any, sin: Any, pos: Any, kc: Any, vc: Any, hq: int, hk: int, d: int) -> Any:
    """y: [rows, (hq + 2 hk) * d] from the fused projection; returns the rotated queries [rows, hq, d]."""
    rows = y.shape[0]
    q = torch.empty((rows, hq, d), dtype=y.dtype, device=y.device)
    _rope_cache_kernel[(rows, hq + 2 * hk)](y, cos, sin, pos, q, kc, vc, y.stride(0), cos.stride(0), kc.stride(0), kc.stride(1),
                                            kc.stride(2), HQ=hq, HK=hk, D=d, HALF=d // 2, num_warps=1)
    return q


@triton.jit
def _decode_attention_kernel(q_ptr, k_ptr, v_ptr, pos_ptr, o_ptr, scale, stride_kr, stride_kh, stride_ks,
                             G: tl.constexpr, BLOCK_G: tl.constexpr, D: tl.constexpr, HQ: tl.constexpr, BLOCK_N: tl.constexpr):
    row = tl.program_id(0)
    kvh = tl.program_id(1)
    n_valid = tl.load(pos_ptr + row) + 1
    offs_g = tl.arange(0, BLOCK_G)
    offs_d = tl.arange(0, D)
    gmask = offs_g[:, None] < G
    q = tl.load(q_ptr + row * (HQ * D) + (kvh * G + offs_g)[:, None] * D + offs_d[None, :], mask=gmask, other=0.0)
    m_i = tl.full([BLOCK_G], float("-inf"), tl.float32)
    l_i = tl.zeros([BLOCK_G], tl.float32)
    acc = tl.zeros([BLOCK_G, D], tl.float32)
    kbase = k_ptr + row * stride_kr + kvh * stride_kh
    vbase = v_ptr + row * stride_kr + kvh * stride_kh
    for start in range(0, n_valid, BLOCK_N):
        offs_n = start + tl.arange(0, BLOCK_N)
        nmask = offs_n < n_valid
        k = tl.load(kbase + offs_n[:, None] * stride_ks + offs_d[None, :], mask=nmask[:, None], other=0.0)
        s = tl.dot(q, tl.trans(k)) * scale
        s = tl.where(nmask[None, :], s, float("-inf"))
        m_new = tl.maximum(m_i, tl.max(s, 1))
        alpha = tl.exp(m_i - m_new)
        p = tl.exp(s - m_new[:, None])
        l_i = l_i * alpha + tl.sum(p, 1)
        v = tl.load(vbase + offs_n[:, None] * stride_ks + offs_d[None, :], mask=nmask[:, None], other=0.0)
        acc = acc * alpha[:, None] + tl.dot(p.to(v.dtype), v)
        m_i = m_new
    out = acc / l_i[:, None]
    tl.store(o_ptr + row * (HQ * D) + (kvh * G + offs_g)[:, None] * D + offs_d[None, :], out.to(o_ptr.dtype.element_ty), mask=gmask)


def decode_attention(q: Any, kc: Any, vc: Any, pos: Any, scale: float) -> Any:
    """q: [rows, hq, d]; kc/vc: [rows, hk, cache, d]; each row attends to its slots 0..pos. Returns [rows, hq * d]."""
    rows, hq, d = q.shape
    hk = kc.shape[1]
    g = hq // hk
    out = torch.empty((rows, hq * d), dtype=q.dtype, device=q.device)
    _decode_attention_kernel[(rows, hk)](q, kc, vc, pos, out, scale, kc.stride(0), kc.stride(1), kc.stride(2),
                                         G=g, BLOCK_G=max(16, triton.next_power_of_2(g)), D=d, HQ=hq, BLOCK_N=64,
                                         num_warps=4, num_stages=3)
    return out


@triton.jit
def _silu_mul_kernel(gu_ptr, out_ptr, n, stride, BLOCK: tl.constexpr):
    row = tl.program_id(0)
    offs = tl.program_id(1) * BLOCK + tl.arange(0, BLOCK)
    mask = offs < n
    g = tl.load(gu_ptr + row * stride + offs, mask=mask, other=0.0).to(tl.float32)
    u = tl.load(gu_ptr + row * stride + n + offs, mask=mask, other=0.0).to(tl.float32)
    tl.store(out_ptr + row * n + offs, (g / (1.0 + tl.exp(-g)) * u).to(out_ptr.dtype.element_ty), mask=mask)


def silu_mul(gu: Any) -> Any:
    """gu: [rows, 2 n] (gate, then up) -> silu(gate) * up, [rows, n]."""
    rows, two_n = gu.shape
    n = two_n // 2
    out = torch.empty((rows, n), dtype=gu.dtype, device=gu.device)
    block = 1024
    _silu_mul_kernel[(rows, triton.cdiv(n, block))](gu, out, n, gu.stride(0), BLOCK=block, num_warps=4)
    return out
