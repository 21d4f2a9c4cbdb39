"""Whether the graph engine's Triton kernels (kernels.py) can run here, without importing them on CPU."""

from __future__ import annotations

from typing import Any


def can_fuse(head_dim: int, device: Any) -> bool:
    if device.type != "cuda" or head_dim < 16 or head_dim & (head_dim - 1):
        return False
    try:
        import triton  # noqa: F401
    except ImportError:
        return False
    return True
