"""Requantisation: vectorised NumPy against a scalar pure-Python transcription of gemmlowp."""
import math

import numpy as np
import pytest

from host.model import quant

INT32_MIN, INT32_MAX = -(1 << 31), (1 << 31) - 1


def srdhm_scalar(a: int, b: int) -> int:
    if a == b == INT32_MIN:
        return INT32_MAX
    ab = a * b
    nudge = (1 << 30) if ab >= 0 else 1 - (1 << 30)
    return int((ab + nudge) / (1 << 31)) if abs(ab + nudge) < (1 << 52) else \
        ((ab + nudge) // (1 << 31) if ab + nudge >= 0 else -((-(ab + nudge)) // (1 << 31)))


def rdbpot_scalar(x: int, e: int) -> int:
    mask = (1 << e) - 1
    rem = x & mask
    thr = (mask >> 1) + (1 if x < 0 else 0)
    return (x >> e) + (1 if rem > thr else 0)


def mbqm_scalar(acc: int, m: int, shift: int) -> int:
    left, right = max(shift, 0), max(-shift, 0)
    x = max(INT32_MIN, min(INT32_MAX, acc * (1 << left)))
    return rdbpot_scalar(srdhm_scalar(x, m), right)


def test_quantize_multiplier_roundtrip():
    rng = np.random.default_rng(0)
    for real in np.concatenate([10.0 ** rng.uniform(-9, 1.5, 500), [1.0, 0.5, 2.0 ** -31]]):
        m, s = quant.quantize_multiplier(float(real))
        assert (1 << 30) <= m < (1 << 31)
        assert math.isclose(m * 2.0 ** (s - 31), real, rel_tol=2 ** -30)


def test_quantize_multiplier_zero_and_errors():
    assert quant.quantize_multiplier(0.0) == (0, 0)
    with pytest.raises(ValueError):
        quant.quantize_multiplier(-1.0)
    with pytest.raises(ValueError):
        quant.quantize_multiplier(float("nan"))


@pytest.mark.parametrize("seed", range(4))
def test_multiply_by_quantized_multiplier_matches_scalar(seed):
    rng = np.random.default_rng(seed)
    n = 2000
    acc = rng.integers(INT32_MIN, INT32_MAX, n, endpoint=True)
    acc[:20] = [INT32_MIN, INT32_MAX, 0, 1, -1, 2, -2, 3, -3, 1 << 20, -(1 << 20)] + [INT32_MIN] * 9
    small = rng.integers(-5000, 5000, n // 2)
    acc[n // 2:] = small
    reals = 10.0 ** rng.uniform(-8, 0.9, n)
    ms, ss = quant.quantize_multipliers(reals)
    ms[:9] = INT32_MIN + 0 * ms[:9]         # exercise the saturating corner (a == b == INT32_MIN)
    got = quant.multiply_by_quantized_multiplier(acc, ms, ss)
    want = [mbqm_scalar(int(a), int(m), int(s)) for a, m, s in zip(acc, ms, ss)]
    assert got.tolist() == want


def test_requantize_close_to_float():
    rng = np.random.default_rng(7)
    acc = rng.integers(-(1 << 22), 1 << 22, 5000)
    real = 10.0 ** rng.uniform(-6, -3, 5000)
    m, s = quant.quantize_multipliers(real)
    y = quant.multiply_by_quantized_multiplier(acc, m, s)
    assert np.max(np.abs(y - acc * real)) <= 1.0


def test_requantize_clamps_and_zero_point():
    y = quant.requantize(np.array([-(1 << 30), 0, 1 << 30, 100]), *quant.quantize_multiplier(0.5), zero_point=3, lo=0, hi=100)
    assert y.tolist() == [0, 3, 100, 53]
    assert y.dtype == np.int8


def test_relu_bounds():
    assert quant.relu_bounds(-10, 0.1, None) == (-128, 127)
    assert quant.relu_bounds(-10, 0.1, "relu") == (-10, 127)
    assert quant.relu_bounds(-128, 6 / 255, "relu6") == (-128, 127)
    assert quant.relu_bounds(0, 0.1, "relu6") == (0, 60)
    assert quant.relu_bounds(0, 0.1, "clip", (-1.0, 2.0)) == (-10, 20)


def test_quantize_dequantize_like_onnx():
    x = np.array([-1.0, -0.25, 0.0, 0.125, 0.375, 100.0], dtype=np.float32)
    q = quant.quantize_float(x, 0.25, 2)
    assert q.tolist() == [-2, 1, 2, 2, 4, 127]      # round half to even: 0.5→0, 1.5→2
    assert quant.dequantize(q, 0.25, 2).tolist() == [-1.0, -0.25, 0.0, 0.0, 0.5, 31.25]
