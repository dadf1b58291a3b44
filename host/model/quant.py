"""Fixed-point requantisation exactly as gemmlowp / TFLite do it (`docs/numerics.md`).

A real multiplier ``M`` (e.g. ``s_x * s_w / s_y``) is represented as a Q31 integer ``m`` in
[2^30, 2^31) and a power-of-two ``shift`` so that ``M ≈ m * 2^(shift - 31)``.  Applying it to an
int32 accumulator is a saturating rounding doubling high multiply followed by a rounding right
shift.  Everything here is vectorised NumPy on int64 and is the single reference that the RTL
post-processing pipeline is checked against.
"""
from __future__ import annotations

import math

import numpy as np

INT32_MIN = -(1 << 31)
INT32_MAX = (1 << 31) - 1


def quantize_multiplier(real: float) -> tuple[int, int]:
    """Return ``(m, shift)`` with ``real ≈ m * 2**(shift - 31)`` and m in [2^30, 2^31) (or 0)."""
    if not math.isfinite(real) or real < 0:
        raise ValueError(f"requantisation multiplier must be finite and >= 0, got {real!r}")
    if real == 0.0:
        return 0, 0
    q, shift = math.frexp(real)            # real = q * 2**shift, q in [0.5, 1)
    m = round(q * (1 << 31))
    if m == (1 << 31):                     # rounding overflowed q to 1.0
        m //= 2
        shift += 1
    if shift < -31:                        # too small to represent: the product rounds to zero
        return 0, 0
    if shift > 30:
        raise ValueError(f"requantisation multiplier {real!r} is too large")
    return int(m), int(shift)


def quantize_multipliers(reals) -> tuple[np.ndarray, np.ndarray]:
    """Vector form of :func:`quantize_multiplier`: int64 arrays ``(m, shift)``."""
    pairs = [quantize_multiplier(float(r)) for r in np.asarray(reals, dtype=np.float64).ravel()]
    m = np.array([p[0] for p in pairs], dtype=np.int64)
    s = np.array([p[1] for p in pairs], dtype=np.int64)
    return m, s


def saturating_rounding_doubling_high_mul(a, b) -> np.ndarray:
    """gemmlowp ``SaturatingRoundingDoublingHighMul`` on int32 values held in int64 arrays."""
    a = np.asarray(a, dtype=np.int64)
    b = np.asarray(b, dtype=np.int64)
    overflow = (a == INT32_MIN) & (b == INT32_MIN)
    ab = a * b
    nudge = np.where(ab >= 0, 1 << 30, 1 - (1 << 30))
    t = ab + nudge
    # division by 2^31 truncating toward zero
    q = np.where(t >= 0, t >> 31, -((-t) >> 31))
    return np.where(overflow, INT32_MAX, q)


def rounding_divide_by_pot(x, exponent) -> np.ndarray:
    """gemmlowp ``RoundingDivideByPOT``: x / 2^exponent, rounding half away from zero."""
    x = np.asarray(x, dtype=np.int64)
    exponent = np.asarray(exponent, dtype=np.int64)
    mask = (np.int64(1) << exponent) - 1
    remainder = x & mask
    threshold = (mask >> 1) + (x < 0)
    return (x >> exponent) + (remainder > threshold)


def multiply_by_quantized_multiplier(acc, m, shift) -> np.ndarray:
    """TFLite ``MultiplyByQuantizedMultiplier``: round(acc * m * 2^(shift-31)) in int32 arithmetic.

    ``m``/``shift`` broadcast against ``acc`` (per-channel: shape (C, 1, 1) against (C, H, W)).
    """
    acc = np.asarray(acc, dtype=np.int64)
    shift = np.asarray(shift, dtype=np.int64)
    left = np.maximum(shift, 0)
    right = np.maximum(-shift, 0)
    x = np.clip(acc << left, INT32_MIN, INT32_MAX)
    return rounding_divide_by_pot(saturating_rounding_doubling_high_mul(x, m), right)


def requantize(acc, m, shift, zero_point: int, lo: int = -128, hi: int = 127) -> np.ndarray:
    """int32 accumulators → int8: scale, add the output zero point, clamp to [lo, hi]."""
    y = multiply_by_quantized_multiplier(acc, m, shift) + int(zero_point)
    return np.clip(y, lo, hi).astype(np.int8)


def quantize_float(x, scale: float, zero_point: int) -> np.ndarray:
    """Float → int8 as ONNX ``QuantizeLinear`` does (round half to even, saturate)."""
    q = np.rint(np.asarray(x, dtype=np.float32) / np.float32(scale)) + zero_point
    return np.clip(q, -128, 127).astype(np.int8)


def dequantize(q, scale: float, zero_point: int) -> np.ndarray:
    """int8 → float32 as ONNX ``DequantizeLinear`` does."""
    return ((np.asarray(q, dtype=np.int32) - zero_point) * np.float32(scale)).astype(np.float32)


def relu_bounds(zero_point: int, scale: float, kind: str | None, clip=None) -> tuple[int, int]:
    """Clamp bounds in the int8 output domain for no activation, ReLU, ReLU6 or Clip(min, max)."""
    lo, hi = -128, 127
    if kind is None:
        return lo, hi
    if kind == "relu":
        return max(lo, zero_point), hi
    if kind == "relu6":
        clip = (0.0, 6.0)
    if kind in ("relu6", "clip"):
        cmin, cmax = clip
        if cmin is not None and math.isfinite(cmin):
            lo = max(lo, min(hi, zero_point + round(cmin / scale)))
        if cmax is not None and math.isfinite(cmax):
            hi = min(hi, max(-128, zero_point + round(cmax / scale)))
        return lo, hi
    raise ValueError(f"unknown activation {kind!r}")
