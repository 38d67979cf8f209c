"""Fixed sinusoidal encodings of scalars (the NAR-Former V2 numeric code)."""

from __future__ import annotations

import numpy as np


def sinusoid(x: np.ndarray | float, dim: int = 10, base: float = 10000.0) -> np.ndarray:
    """Encode each scalar of ``x`` as ``dim`` numbers, shape ``x.shape + (dim,)``, float32.

    Frequencies are ``base ** (-k / (dim // 2))`` for ``k = 0 .. dim//2 - 1``; the output
    interleaves ``sin(x * f_k)`` (even slots) and ``cos(x * f_k)`` (odd slots), as the reference
    code does (``dim=10``: five frequencies ``10000^(-k/5)``).
    """
    if dim % 2:
        raise ValueError(f"dim must be even, got {dim}")
    x = np.asarray(x, dtype=np.float64)
    half = dim // 2
    freqs = base ** (-np.arange(half, dtype=np.float64) / half)
    with np.errstate(invalid="ignore", over="ignore"):  # inf in -> nan out, refused by the tokenizer
        ang = x[..., None] * freqs
        out = np.empty(x.shape + (dim,), dtype=np.float32)
        out[..., 0::2] = np.sin(ang)
        out[..., 1::2] = np.cos(ang)
    return out


def nerf_code(x: np.ndarray | float, multires: int = 32) -> np.ndarray:
    """NeRF-style code of integers/scalars, shape ``x.shape + (2 * multires,)``, float32.

    Frequencies ``linspace(1, 2**(multires-1), multires)`` (linear sampling, as the reference cell
    tokenizer uses); each frequency contributes ``sin(pi*f*x), cos(pi*f*x)``.
    """
    x = np.asarray(x, dtype=np.float64)
    freqs = np.linspace(1.0, 2.0 ** (multires - 1), multires)
    ang = np.pi * x[..., None] * freqs
    out = np.empty(x.shape + (2 * multires,), dtype=np.float32)
    out[..., 0::2] = np.sin(ang)
    out[..., 1::2] = np.cos(ang)
    return out
