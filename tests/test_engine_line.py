"""The engine in line mode (``EngineConfig(line_rows=…)``): the array reads a ring of input rows
that ``hw.engine.row_feeder.RowFeeder`` fills from the map memory, each row once (the engine runs output
row → output-channel block → column, so all blocks of an output row read the same lines).
Checked bit for bit against the direct-loop convolution of ``tests/test_engine.py``; the map
words the feeder read must be exactly ``rows × blocks × W`` (every needed row fetched once) and
the cycles must equal the event model ``line_mode_cycles``.

The ring here has only 4 lines, so tall maps recycle every line several times and a 4×4 kernel
fills the ring completely (the tightest case the feeder's flow control must not deadlock on)."""
import numpy as np
import pytest

from hw.engine.engine import EngineConfig
from host.compiler.layer import EngineCapacityError, compile_conv
from host.runtime.engine_model import emulate, line_mode_cycles, preloaded_cycles
from sim.engine_rtl import simulate
from tests.test_engine import random_layer, reference_conv, reference_maxpool

LINE_CFG = EngineConfig(rows=5, cols=3, in_depth=2048, w_depth=1024, step_depth=256,
                        ob_depth=64, out_depth=2048, post_lanes=2, pool_width=16,
                        line_rows=4, line_words=32)
KEYS = ("x", "weight", "bias_folded", "mult", "shift", "zx", "zy", "lo", "hi", "stride", "pads",
        "groups")
#: compile_conv's positional order
ARGS = ("weight", "bias_folded", "mult", "shift", "x", "zx", "zy", "lo", "hi")

CASES = [
    # (c, o, h, w, k, stride, pads, groups, pool)
    (5, 6, 11, 9, 3, (1, 1), (1, 1, 1, 1), 1, False),     # tall map: every line reused 3×
    (4, 4, 10, 7, 4, (1, 1), (2, 1, 1, 2), 1, False),     # kernel height = lines: ring full
    (8, 4, 12, 9, 3, (2, 2), (1, 1, 0, 0), 1, False),     # stride 2, two channel blocks
    (6, 6, 9, 9, 3, (2, 2), (1, 1, 1, 1), 6, False),      # depthwise stride 2
    (6, 9, 7, 7, 1, (2, 2), (0, 0, 0, 0), 3, False),      # grouped 1×1 stride 2: odd rows unused
    (9, 7, 1, 1, 1, (1, 1), (0, 0, 0, 0), 1, False),      # FC (1×1 map, 2 blocks)
    (2, 3, 1, 1, 3, (1, 1), (1, 1, 1, 1), 1, False),      # 1×1 map, 3×3 kernel: all padding
    (3, 5, 8, 8, 3, (1, 1), (1, 1, 1, 1), 1, True),       # fused 2×2 max-pool
    (4, 4, 13, 5, 3, (1, 2), (3, 0, 2, 1), 4, False),     # depthwise, top pad 3 (row −3 first)
]


def run(case, cfg=LINE_CFG, seed=0):
    c, o, h, w, k, stride, pads, groups, pool = case
    layer = random_layer(np.random.default_rng(seed), c, o, h, w, k, stride, pads, groups)
    prog = compile_conv(*(layer[k] for k in ARGS), layer["stride"], layer["pads"],
                        layer["groups"], cfg, pool=pool)
    y, cycles, info = simulate(prog, cfg)
    want = reference_conv(**{k: layer[k] for k in KEYS})
    if pool:
        want = reference_maxpool(want)
    assert y.shape == want.shape
    bad = np.argwhere(y != want)
    assert bad.size == 0, f"{len(bad)} of {y.size} outputs differ, first {bad[:4].tolist()}"
    d = prog.desc
    assert info["fetched"] == d["h_feed"] * d["nb"] * d["w"]       # each row once
    assert cycles >= preloaded_cycles(d, cfg) + int(pool)
    assert cycles == line_mode_cycles(d, cfg) + int(pool)         # the RTL against the model
    return cycles, info


@pytest.mark.parametrize("case", range(len(CASES)))
def test_line_mode_conv(case):
    run(CASES[case], seed=300 + case)


HOP_CFG = EngineConfig(rows=5, cols=3, in_depth=2048, w_depth=1024, step_depth=256,
                       ob_depth=64, out_depth=2048, post_lanes=3, psum_hop=2,
                       line_rows=8, line_words=32)
BIG_KERNELS = [
    (4, 4, 8, 8, 7, (2, 2), (3, 3, 3, 3), 4, False),      # depthwise 7×7 stride 2
    (3, 5, 9, 8, 5, (2, 1), (2, 2, 1, 0), 1, False),      # 5×5, mixed stride
    (4, 4, 17, 6, 7, (1, 1), (3, 3, 3, 3), 4, False),     # 7×7 on a tall map: lines recycled
]


@pytest.mark.parametrize("case", [CASES[0], CASES[1], CASES[3]] + BIG_KERNELS)
def test_line_mode_with_psum_hop_and_drain_1(case):
    """An 8-line ring (kernels up to 7×7 and beyond) with ``psum_hop=2``: the release delay
    follows the doubled skew; one requant lane per column (drain 1) makes the depthwise pixels
    one cycle each, the feeder's tightest race."""
    run(case, cfg=HOP_CFG, seed=500 + case[3])


def test_line_mode_reads_each_row_once():
    """A 3×3 layer with three output-channel blocks: the feeder reads the map exactly once,
    where the array reads each input word up to 3 blocks × 9 taps times."""
    _, info = run((5, 9, 9, 6, 3, (1, 1), (1, 1, 1, 1), 1, False), seed=7)
    assert info["fetched"] == 9 * 6


@pytest.mark.parametrize("what,case", [
    ("kernel height", (3, 3, 8, 8, 5, (1, 1), (2, 2, 2, 2), 1)),       # 5 rows > 4 lines
    ("even output width", (3, 6, 7, 7, 3, (1, 1), (1, 1, 1, 1), 1)),  # pooled, 2 blocks, Wo 7
    ("exceeds the line memories", (3, 3, 4, 33, 3, (1, 1), (1, 1, 1, 1), 1)),   # 33 > 32 words
    ("exceeds the line memories", (11, 3, 4, 11, 3, (1, 1), (1, 1, 1, 1), 1)),  # 3 × 11 > 32
])
def test_line_mode_capacity_errors(what, case):
    c, o, h, w, k, stride, pads, groups = case
    layer = random_layer(np.random.default_rng(1), c, o, h, w, k, stride, pads, groups)
    with pytest.raises(EngineCapacityError, match=what):
        compile_conv(*(layer[k] for k in ARGS), stride, pads, groups, LINE_CFG,
                     pool=what == "even output width")


@pytest.mark.parametrize("seed", range(12))
def test_line_mode_emulation_random(seed):
    """The layer compiler's line-mode addressing on the NumPy model (no simulator)."""
    rng = np.random.default_rng(900 + seed)
    k = int(rng.choice([1, 2, 3, 4]))
    s = int(rng.integers(1, 3))
    g = int(rng.choice([1, 2]))
    c = g * int(rng.integers(1, 6))
    o = g * int(rng.integers(1, 5))
    h, w = int(rng.integers(1, 12)), int(rng.integers(1, 17))
    pads = tuple(int(v) for v in rng.integers(0, k, 4))
    if (h + pads[0] + pads[2] < k) or (w + pads[1] + pads[3] < k):
        pads = (k, k, k, k)
    layer = random_layer(rng, c, o, h, w, k, (s, s), pads, g)
    prog = compile_conv(*(layer[k2] for k2 in ARGS), (s, s), pads, g, LINE_CFG)
    y, _ = emulate(prog, LINE_CFG)
    want = reference_conv(**{k2: layer[k2] for k2 in KEYS})
    from host.compiler.pack import unpack_output
    assert (unpack_output(prog, y) == want).all()


@pytest.mark.slow
@pytest.mark.parametrize("seed", range(8))
def test_line_mode_random_sweep(seed):
    rng = np.random.default_rng(1200 + seed)
    k = int(rng.choice([1, 3, 4]))
    s = int(rng.integers(1, 3))
    g = int(rng.choice([1, 2]))
    c, o = g * int(rng.integers(1, 5)), g * int(rng.integers(1, 5))
    h, w = int(rng.integers(k, 14)), int(rng.integers(k, 17))
    pads = tuple(int(v) for v in rng.integers(0, k, 4))
    ho, wo = (h + pads[0] + pads[2] - k) // s + 1, (w + pads[1] + pads[3] - k) // s + 1
    pool = ho >= 2 and wo >= 2 and bool(rng.random() < 0.3)
    if pool:       # only where the fused pool can take the (row, block, column) order
        layer = random_layer(np.random.default_rng(seed), c, o, h, w, k, (s, s), pads, g)
        try:
            compile_conv(*(layer[k2] for k2 in ARGS), (s, s), pads, g, LINE_CFG, pool=True)
        except EngineCapacityError:
            pool = False
    run((c, o, h, w, k, (s, s), pads, g, pool), seed=seed)


@pytest.mark.parametrize("schedule,block", [("layer", None), ("fused", (7, 7)),
                                            ("block", (8, 8))])
def test_network_in_line_mode_bit_exact(schedule, block):
    """A network (fused conv+pool pairs, a residual add, depthwise, FC) layer by layer on the
    line-mode engine, bit-exact with the golden model under every schedule (the block schedule
    hands the engine blocks padded at their own borders)."""
    from tests.test_engine_sim import run_pool_net
    got, want, sim = run_pool_net(LINE_CFG, schedule, block, seed=4)
    np.testing.assert_array_equal(got, want)
    assert "c1+p1" in {s["name"] for s in sim.stats}
    assert len(np.unique(got)) > 1
