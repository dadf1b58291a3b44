"""RTL tests of hw.engine.pe against NumPy (Verilator via sim.runner)."""
import numpy as np
import pytest

from hw.engine.pe import MAC
from sim.runner import build, run_cocotb, to_verilog


def mac_reference(x, w, valid, first):
    """acc after each beat: restart at 'first', hold when not valid (int64, no overflow here)."""
    acc, out = 0, []
    for xi, wi, v, f in zip(x.astype(np.int64), w.astype(np.int64), valid, first):
        if v:
            acc = (0 if f else acc) + int(xi) * int(wi)
        out.append(acc)
    return np.array(out)


@pytest.mark.parametrize("seed", [1, 2])
def test_mac_matches_numpy(seed):
    rng = np.random.default_rng(seed)
    n = 400
    x = rng.integers(-128, 128, n, dtype=np.int8)
    w = rng.integers(-128, 128, n, dtype=np.int8)
    x[:8] = -128; w[:8] = -128                      # extreme products first
    valid = rng.random(n) < 0.8
    first = rng.random(n) < 0.05
    first[0] = valid[0] = True
    out = run_cocotb(MAC(), "sim.tb_mac", inputs=dict(x=x, w=w, valid=valid, first=first))
    seen = out["acc"]
    ref = mac_reference(x, w, valid, first)
    # sample j (taken after clock edge j) holds the accumulator up to beat j-1
    np.testing.assert_array_equal(seen[1:n + 1], ref)
    assert np.any(ref != 0) and len(np.unique(ref)) > 50


def test_build_is_cached():
    text = to_verilog(MAC())
    a = build(text)
    t = (a / ".built").stat().st_mtime
    b = build(text)
    assert a == b and (b / ".built").stat().st_mtime == t
