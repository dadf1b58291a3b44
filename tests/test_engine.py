"""The RTL engine (hw.engine.engine) against an independent NumPy convolution, bit for bit.

Shapes and data are seeded random; one small engine build (5×3 PEs) serves the CI set.  The
long sweep (more shapes, an 8×8 array, VGG16 channel counts) is marked slow."""
import numpy as np
import pytest

from host.compiler.reduction import plan_reduction
from host.model.quant import quantize_multipliers, requantize
from hw.configs import CI_CONFIG
from hw.engine.engine import EngineConfig
from host.compiler.layer import EngineCapacityError, compile_conv
from host.runtime.engine_model import preloaded_cycles
from sim.engine_rtl import simulate

#: the small instance of the design (non-square, shared requant lanes, a 32-word step table)
CI_CFG = CI_CONFIG.engine


def reference_conv(x, weight, bias_folded, mult, shift, zx, zy, lo, hi, stride, pads, groups):
    """Direct loops over output pixels: pad with zx, Σ x·w per group, requantise."""
    t, l, b, r = pads
    xp = np.pad(x.astype(np.int64), ((0, 0), (t, b), (l, r)), constant_values=zx)
    o, ig, kh, kw = weight.shape
    og = o // groups
    sh, sw = stride
    ho, wo = (xp.shape[1] - kh) // sh + 1, (xp.shape[2] - kw) // sw + 1
    acc = np.zeros((o, ho, wo), dtype=np.int64)
    w64 = weight.astype(np.int64)
    for oc in range(o):
        g = oc // og
        xs = xp[g * ig:(g + 1) * ig]
        for oy in range(ho):
            for ox in range(wo):
                win = xs[:, oy * sh:oy * sh + kh, ox * sw:ox * sw + kw]
                acc[oc, oy, ox] = np.sum(win * w64[oc])
    acc += bias_folded[:, None, None]
    return requantize(acc, mult[:, None, None], shift[:, None, None], zy, lo, hi)


def random_layer(rng, c, o, h, w, k, stride, pads, groups):
    kh, kw = (k, k) if isinstance(k, int) else k
    weight = rng.integers(-128, 128, (o, c // groups, kh, kw), dtype=np.int8)
    x = rng.integers(-128, 128, (c, h, w), dtype=np.int8)
    zx = int(rng.integers(-128, 128))
    zy = int(rng.integers(-20, 20))
    bias = rng.integers(-5000, 5000, o).astype(np.int64)
    bias_folded = bias - zx * weight.reshape(o, -1).astype(np.int64).sum(1)
    # scale so outputs spread over the int8 range: ~ 1/(σ_acc)·50
    sigma = 128 * 74 * np.sqrt(weight[0].size)
    mult, shift = quantize_multipliers(np.full(o, 50.0 / sigma) * rng.uniform(0.5, 2, o))
    lo, hi = (int(rng.integers(-128, -60)), int(rng.integers(60, 128))) if rng.random() < 0.5 else (-128, 127)
    return dict(x=x, weight=weight, bias_folded=bias_folded, mult=mult, shift=shift, zx=zx, zy=zy,
                lo=lo, hi=hi, stride=stride, pads=pads, groups=groups)


def reference_maxpool(y):
    """2×2 max-pool, stride 2, floor (odd last row/column dropped), by explicit loops."""
    o, h, w = y.shape
    out = np.zeros((o, h // 2, w // 2), dtype=y.dtype)
    for c in range(o):
        for i in range(h // 2):
            for j in range(w // 2):
                out[c, i, j] = max(y[c, 2 * i, 2 * j], y[c, 2 * i, 2 * j + 1],
                                   y[c, 2 * i + 1, 2 * j], y[c, 2 * i + 1, 2 * j + 1])
    return out


def check(layer, cfg, pool=False):
    prog = compile_conv(layer["weight"], layer["bias_folded"], layer["mult"], layer["shift"],
                        layer["x"], layer["zx"], layer["zy"], layer["lo"], layer["hi"],
                        layer["stride"], layer["pads"], layer["groups"], cfg, pool=pool)
    y, cycles, _ = simulate(prog, cfg)
    want = reference_conv(**{k: layer[k] for k in ("x", "weight", "bias_folded", "mult", "shift",
                                                   "zx", "zy", "lo", "hi", "stride", "pads",
                                                   "groups")})
    if pool:
        want = reference_maxpool(want)
    assert y.shape == want.shape
    bad = np.argwhere(y != want)
    assert bad.size == 0, f"{len(bad)} of {y.size} outputs differ, first {bad[:4].tolist()}"
    assert len(np.unique(want)) > min(8, want.size // 2)   # the data are not degenerate
    # one step per cycle, no stalls: the RTL's count equals the engine model's
    assert cycles == preloaded_cycles(prog.desc, cfg) + int(pool)
    return cycles


CI_CASES = [
    # (c, o, h, w, k, stride, pads, groups)
    (5, 6, 7, 5, 3, (1, 1), (1, 1, 1, 1), 1),          # odd sizes, partial blocks
    (8, 8, 6, 6, 3, (2, 2), (1, 0, 0, 1), 1),          # stride 2, asymmetric padding
    (6, 6, 5, 7, 3, (1, 1), (1, 1, 1, 1), 6),          # depthwise
    (6, 12, 4, 4, 1, (1, 1), (0, 0, 0, 0), 3),         # grouped 1×1
    (9, 7, 1, 1, 1, (1, 1), (0, 0, 0, 0), 1),          # 1×1 map (FC)
    (3, 5, 9, 8, 5, (2, 1), (2, 2, 1, 0), 1),          # 5×5, mixed stride
    (4, 4, 8, 8, 7, (2, 2), (3, 3, 3, 3), 4),          # depthwise 7×7 stride 2
    (2, 3, 1, 1, 3, (1, 1), (1, 1, 1, 1), 1),          # 1×1 map, 3×3 kernel: all padding
    # reductions longer than the step table, tiled (host.compiler.reduction)
    (64, 5, 3, 4, 3, (1, 1), (1, 1, 1, 1), 1),         # over channel blocks
    (48, 6, 4, 4, 3, (2, 1), (1, 0, 1, 1), 2),         # over kernel rows, per group
    (200, 4, 1, 1, 1, (1, 1), (0, 0, 0, 0), 1),        # FC-like: 200 inputs
    (3, 4, 19, 21, 11, (4, 4), (2, 2, 2, 2), 1),       # 11×11 stride 4: over kernel rows
]

#: how each case lays out its reduction (checked so the tiled cases keep testing tiling)
CI_KINDS = ["dense"] * 8 + ["channels", "rows", "channels", "rows"]


@pytest.mark.parametrize("case", range(len(CI_CASES)))
def test_engine_conv(case):
    rng = np.random.default_rng(100 + case)
    c, o, h, w, k, stride, pads, groups = CI_CASES[case]
    if groups == 1 or c // groups > 1:
        red = plan_reduction(k, k, c // groups, CI_CFG.rows, CI_CFG.lanes, CI_CFG.step_depth)
        assert red.kind == CI_KINDS[case]
    check(random_layer(rng, *CI_CASES[case]), CI_CFG)


#: the array's optional features in one build (one Verilator compile for the three tests
#: below, not three): all requant lanes (drain 1 cycle per pixel, as the ECP5-85F build: the
#: drain enters the latency), a register between array rows (``psum_hop=2``: partial sums take
#: two cycles per row, the skew doubles) and the fused 2×2 max-pool (descriptor bit ``pool``)
CI_CFG_FEATURES = EngineConfig(rows=5, cols=3, in_depth=2048, w_depth=1024, step_depth=256,
                               ob_depth=64, out_depth=2048, post_lanes=3, psum_hop=2,
                               pool_width=16)


@pytest.mark.parametrize("case", [0, 2, 3])
def test_engine_conv_all_lanes(case):
    rng = np.random.default_rng(200 + case)
    check(random_layer(rng, *CI_CASES[case]), CI_CFG_FEATURES)


@pytest.mark.parametrize("case", [0, 2])
def test_engine_with_psum_hop(case):
    """``psum_hop=2``: same results, cycles = the formula with the longer skew."""
    rng = np.random.default_rng(300 + case)
    check(random_layer(rng, *CI_CASES[case]), CI_CFG_FEATURES)
    one_hop = EngineConfig(**(CI_CFG_FEATURES.as_dict() | dict(psum_hop=1)))
    assert CI_CFG_FEATURES.latency == one_hop.latency + CI_CFG_FEATURES.rows - 1


@pytest.mark.parametrize("case,pool", [(0, True), (1, True), (2, True), (6, True), (0, False)])
def test_engine_conv_fused_maxpool(case, pool):
    """conv → requant → 2×2/2 max-pool in the engine equals the reference conv then pool
    (odd maps drop their last row/column); the same build without ``pool`` is unchanged."""
    rng = np.random.default_rng(400 + case)
    check(random_layer(rng, *CI_CASES[case]), CI_CFG_FEATURES, pool=pool)


#: digit-serial requant lanes (the iCE40 build): 2 lanes for 4 columns, II cycles per value,
#: memories written straight from the load port (``load_regs=False``, as on the UP5K)
CI_CFG_SERIAL = EngineConfig(rows=3, cols=4, in_depth=1024, w_depth=512, step_depth=128,
                             ob_depth=16, out_depth=1024, post_lanes=2, serial_requant=True,
                             load_regs=False)


@pytest.mark.parametrize("case", [0, 2, 4])
def test_engine_conv_serial_requant(case):
    rng = np.random.default_rng(300 + case)
    check(random_layer(rng, *CI_CASES[case]), CI_CFG_SERIAL)


def test_serial_lane_refuses_left_shifts_beyond_its_reach():
    """The serial lane shifts left at most RequantSerial.MAX_LEFT bits: the compiler refuses a
    layer that needs more, and takes one at the limit."""
    from hw.engine.requant import RequantSerial
    layer = random_layer(np.random.default_rng(310), *CI_CASES[0])
    args = lambda shift: (layer["weight"], layer["bias_folded"], layer["mult"],
                          np.full_like(layer["shift"], shift), layer["x"], layer["zx"],
                          layer["zy"], layer["lo"], layer["hi"], layer["stride"],
                          layer["pads"], layer["groups"], CI_CFG_SERIAL)
    compile_conv(*args(RequantSerial.MAX_LEFT), check_only=True)
    with pytest.raises(EngineCapacityError, match="left shift"):
        compile_conv(*args(RequantSerial.MAX_LEFT + 1), check_only=True)


@pytest.mark.slow
@pytest.mark.parametrize("seed", range(12))
def test_engine_random_sweep(seed):
    """Random kernel 1..7, stride 1/2, padding on any side, groups/depthwise, odd and 1×1 maps."""
    rng = np.random.default_rng(1000 + seed)
    k = int(rng.integers(1, 8))
    stride = (int(rng.integers(1, 3)), int(rng.integers(1, 3)))
    pads = tuple(int(v) for v in rng.integers(0, k, 4))
    kind = rng.choice(["std", "grouped", "dw"])
    g = {"std": 1, "grouped": int(rng.integers(2, 4)), "dw": int(rng.integers(2, 9))}[kind]
    c = g * (1 if kind == "dw" else int(rng.integers(1, 6)))
    o = g * (1 if kind == "dw" else int(rng.integers(1, 6)))
    h = int(rng.integers(1, 10))
    w = int(rng.integers(1, 10))
    if (h + pads[0] + pads[2] - k) < 0 or (w + pads[1] + pads[3] - k) < 0:
        pads = (k - 1, k - 1, k - 1, k - 1)
    check(random_layer(rng, c, o, h, w, k, stride, pads, g), CI_CFG)


@pytest.mark.slow
@pytest.mark.parametrize("cin,cout", [(64, 64), (128, 256), (256, 128)])
def test_engine_vgg16_channels(cin, cout):
    """VGG16 3×3 layers with their real channel counts at 3×3 height/width (8×8 PE engine)."""
    from host.compiler.layer import DEFAULT_CONFIG
    rng = np.random.default_rng(cin + cout)
    check(random_layer(rng, cin, cout, 3, 3, 3, (1, 1), (1, 1, 1, 1), 1), DEFAULT_CONFIG)


@pytest.mark.slow
def test_engine_lut_requant_variant():
    """The synthesis variant (requant multipliers in logic, one more pipeline stage)."""
    cfg = EngineConfig(rows=3, cols=4, in_depth=1024, w_depth=512, step_depth=128, ob_depth=16,
                       out_depth=1024, post_lanes=3, lut_requant=True)
    rng = np.random.default_rng(77)
    check(random_layer(rng, 7, 9, 5, 6, 3, (1, 2), (1, 1, 0, 1), 1), cfg)
    check(random_layer(rng, 8, 8, 5, 5, 3, (1, 1), (1, 1, 1, 1), 8), cfg)


@pytest.mark.slow
@pytest.mark.parametrize("case", range(len(CI_CASES)))
def test_holdout_layers_on_the_85f_engine(case):
    """The CI shapes (odd sizes, stride 2, depthwise 3×3/7×7, grouped 1×1, 1×1 maps, 5×5,
    11×11 stride 4, reductions that iterate) on the ulx3s-85f configuration's RTL, as run_conv
    runs them (tiles and chunks when needed), bit-exact with the direct-loop reference."""
    from hw.configs import BOARD_CONFIGS
    from host.model.ir import Conv
    from sim.engine_layers import run_conv
    layer = random_layer(np.random.default_rng(700 + case), *CI_CASES[case])
    w = layer["weight"]
    node = Conv(name="c", inputs=["x"], output="y", weight=w, bias=np.zeros(w.shape[0], np.int32),
                mult=layer["mult"], shift=layer["shift"], stride=list(layer["stride"]),
                pads=list(layer["pads"]), groups=layer["groups"], lo=layer["lo"], hi=layer["hi"])
    node.folded_bias = lambda zx, b=layer["bias_folded"]: b
    y, cycles = run_conv(node, layer["x"], layer["zx"], layer["zy"],
                         BOARD_CONFIGS["ulx3s-85f"].engine)
    want = reference_conv(**{k: layer[k] for k in ("x", "weight", "bias_folded", "mult", "shift",
                                                   "zx", "zy", "lo", "hi", "stride", "pads",
                                                   "groups")})
    np.testing.assert_array_equal(y, want)
    assert cycles > 0


#: nine rows sharing two read ports: rows past the fifth see their first element later than
#: the zero point's chain takes to reach them
NINE_ROWS_TWO_PORTS = EngineConfig(rows=9, cols=3, in_depth=512, w_depth=256, step_depth=32,
                                   ob_depth=8, out_depth=512, post_lanes=3, read_ports=2)


def test_runs_back_to_back_take_their_own_zero_point():
    """Two padded layers with different input zero points in one simulation, one run right
    after the other: every row pads with its own run's zero point (a row's padding taken
    before its skew would still see the previous run's)."""
    from sim.engine_rtl import simulate_many
    rng = np.random.default_rng(7)
    cfg = NINE_ROWS_TWO_PORTS
    layers = [random_layer(rng, 3, 4, 5, 6, 3, (1, 1), (1, 1, 1, 1), 1) for _ in range(2)]
    layers[0]["zx"], layers[1]["zx"] = -100, 90
    for ly in layers:           # refold the bias for the new zero point
        w = ly["weight"].reshape(ly["weight"].shape[0], -1).astype(np.int64)
        ly["bias_folded"] = rng.integers(-5000, 5000, w.shape[0]) - ly["zx"] * w.sum(1)
    progs = [compile_conv(ly["weight"], ly["bias_folded"], ly["mult"], ly["shift"], ly["x"],
                          ly["zx"], ly["zy"], ly["lo"], ly["hi"], ly["stride"], ly["pads"],
                          ly["groups"], cfg) for ly in layers]
    for (y, _, _), ly in zip(simulate_many(progs, cfg), layers):
        want = reference_conv(**{k: ly[k] for k in ("x", "weight", "bias_folded", "mult",
                                                     "shift", "zx", "zy", "lo", "hi", "stride",
                                                     "pads", "groups")})
        np.testing.assert_array_equal(y, want)
