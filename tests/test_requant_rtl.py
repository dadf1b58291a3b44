"""hw.engine.requant.Requant against host.model.quant.requantize, bit for bit, incl. edge cases."""
import numpy as np
import pytest

from host.model.quant import INT32_MAX, INT32_MIN, quantize_multiplier, requantize
from hw.engine.requant import Requant, RequantSerial
from sim.ecp5_cells import cell_models
from sim.runner import run_cocotb, to_verilog


def cases(seed: int, n: int):
    rng = np.random.default_rng(seed)
    acc = rng.integers(INT32_MIN, INT32_MAX, n, endpoint=True, dtype=np.int64)
    small = rng.random(n) < 0.5                           # realistic accumulators too
    acc[small] = rng.integers(-(1 << 20), 1 << 20, small.sum())
    mult = rng.integers(1 << 30, 1 << 31, n, dtype=np.int64)
    shift = rng.integers(-31, 31, n, dtype=np.int64)
    zp = rng.integers(-128, 128, n, dtype=np.int64)
    lo = rng.integers(-128, 0, n, dtype=np.int64)
    hi = rng.integers(0, 128, n, dtype=np.int64)
    full = rng.random(n) < 0.5
    lo[full], hi[full] = -128, 127
    # realistic multipliers from real scales
    real = 10.0 ** rng.uniform(-5, 0.5, n // 4)
    for k, r in enumerate(real):
        mult[k], shift[k] = quantize_multiplier(float(r))
    # edge cases
    edges = [
        (INT32_MIN, 1 << 30, 0), (INT32_MIN, (1 << 31) - 1, 0), (INT32_MAX, (1 << 31) - 1, 0),
        (INT32_MIN, 1 << 30, 5), (INT32_MAX, 1 << 30, 30), (-1, 1 << 30, -31), (1, 1 << 30, -31),
        (-(1 << 20), (1 << 31) - 1, -1), (12345, 0, 0), (-12345, 1 << 30, -1), (0, 1 << 30, 0),
        (-3, 1 << 30, 0), (3, 1 << 30, 0), (-2, 1 << 30, -1), (2, 1 << 30, -1), (INT32_MIN, 0, 0),
        (INT32_MIN, (1 << 31) - 1, -31), (INT32_MAX, (1 << 31) - 1, 30), (-(1 << 30), 1 << 30, 1),
        (-1, (1 << 31) - 1, 0), (1, (1 << 31) - 1, 0), (-1, 1 << 30, 0), (1, 1 << 30, 0),
        (-5, 1 << 30, 0), (-7, 3 << 29, 0), (-12, 1 << 30, -1), (-20, 1 << 30, -2),
    ]
    bias = rng.integers(-(1 << 24), 1 << 24, n, dtype=np.int64)
    bias[rng.random(n) < 0.5] = 0
    bias[:20] = rng.integers(INT32_MIN, INT32_MAX, 20)        # acc + bias wraps around int32
    # exact ties of the doubling high multiply (|x|·m ≡ 2^30 mod 2^31) and of the right shift
    ties = slice(n - 200, n - 100)
    acc[ties] = rng.integers(-1000, 1000, 100) * 2 + 1
    mult[ties] = 1 << 30
    shift[ties] = rng.integers(-3, 1, 100)
    for k, (a, mm, s) in enumerate(edges):
        acc[n - 1 - k], mult[n - 1 - k], shift[n - 1 - k], bias[n - 1 - k] = a, mm, s, 0
    for r in (ties, slice(n - len(edges), n)):              # no clamping hides these
        zp[r], lo[r], hi[r], bias[r] = 0, -128, 127, 0
    # around the clamp's short cut (|result before zp| ≥ 1024 saturates whatever the zero
    # point): m ≈ 1 and no shift, so the magnitude before the zero point is |acc| itself
    near = slice(n - 300, n - 200)
    acc[near] = rng.choice([900, 1000, 1023, 1024, 1025, 1150, 1279, 1280, 2047, 2048, 4097],
                           100) * rng.choice([-1, 1], 100)
    mult[near], shift[near], bias[near] = (1 << 31) - 1, 0, 0
    zp[near] = rng.choice([-128, -100, 0, 100, 127], 100)
    return dict(acc=acc, bias=bias, mult=mult, shift=shift, zp=zp, lo=lo, hi=hi)


# make test: the hard-multiplier lane and the logic-multiplier lane as the ECP5 builds it; the
# logic lane in generic cells and without its bias stage in the slow tier
@pytest.mark.parametrize("lut_mul,bias,cells", [
    (False, True, "generic"), pytest.param(True, True, "generic", marks=pytest.mark.slow),
    pytest.param(True, False, "generic", marks=pytest.mark.slow), (True, True, "ecp5")])
def test_requant_bit_exact(lut_mul, bias, cells):
    """``cells="ecp5"``: the partial-product pairs are the hand-instantiated CCU2C carry cells
    the FPGA build uses, simulated with yosys's own cell models."""
    d = cases(7, 3000)
    total = (d["acc"] + d["bias"] + (1 << 31)) % (1 << 32) - (1 << 31)     # int32 wrap
    if not bias:                       # the engine's lanes: the bias is already in the sum
        d = dict(d, acc=total, bias=np.full_like(total, 0x5A5A5A5))        # and must be ignored
    want = np.array([requantize(np.array([a]), np.array([mm]), np.array([s]), int(z), int(l), int(h))[0]
                     for a, mm, s, z, l, h in zip(total, *(d[k] for k in ("mult", "shift", "zp", "lo", "hi")))],
                    dtype=np.int64)
    dut = Requant(lut_mul=lut_mul, bias=bias, cells=cells)
    design = to_verilog(dut) + cell_models() if cells == "ecp5" else dut
    out = run_cocotb(design, "sim.tb_requant", inputs=d)
    got = out["y"]
    assert np.all(out["when"] - np.arange(len(got)) + 1 == dut.LATENCY)
    assert len(got) == len(want)
    bad = np.nonzero(got != want)[0]
    assert bad.size == 0, f"{bad.size} mismatches, first at {bad[:5]}: " + str(
        [(int(total[i]), int(d['mult'][i]), int(d['shift'][i]), int(got[i]), int(want[i])) for i in bad[:5]])
    assert len(np.unique(want)) > 100       # the data exercise the whole int8 range


def test_requant_serial_bit_exact():
    """The digit-serial lane (small FPGAs): one value every II cycles, same results.  zp, lo and
    hi are layer constants for this lane (read at its output), so each run holds one set."""
    dut = RequantSerial()
    d = cases(11, 1200)
    # its left shifts stop at MAX_LEFT (the compiler refuses more): the cases' larger ones
    # become MAX_LEFT, saturating and not
    d["shift"] = np.minimum(d["shift"], dut.MAX_LEFT)
    total = (d["acc"] + d["bias"] + (1 << 31)) % (1 << 32) - (1 << 31)
    for zp, lo, hi in [(0, -128, 127), (37, -100, 90), (-50, -128, 0)]:
        want = requantize(total, d["mult"], d["shift"], zp, lo, hi)
        n = len(total)
        inp = dict(acc=d["acc"], bias=d["bias"], mult=d["mult"], shift=d["shift"],
                   zp=np.full(n, zp), lo=np.full(n, lo), hi=np.full(n, hi), gap=np.array([dut.II]))
        out = run_cocotb(dut, "sim.tb_requant", inputs=inp)
        got = out["y"]
        assert len(got) == n
        bad = np.nonzero(got != want)[0]
        assert bad.size == 0, f"{bad.size} mismatches, first at {bad[:5]}: " + str(
            [(int(total[i]), int(d['mult'][i]), int(d['shift'][i]), int(got[i]), int(want[i]))
             for i in bad[:5]])
        assert np.all(out["when"] - np.arange(n) * dut.II + 1 == dut.LATENCY)
        assert len(np.unique(want)) > 50
