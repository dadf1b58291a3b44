"""sim.engine_layers: host.model.ir nodes on the RTL engine (chunked when too large), and a small
network layer by layer through host.runtime.golden.run with the engine's conv_fn/fc_fn hooks, bit-exact
with the golden model under the layer and block schedules."""
import numpy as np
import pytest

from host.runtime import golden
from host.model.builder import GraphBuilder, smooth_input
from host.model.ir import FC, Conv
from host.model.quant import quantize_multipliers
from host.compiler.layer import EngineCapacityError, compile_conv
from sim.engine_layers import EngineSim, run_conv, run_fc
from tests.test_engine import CI_CFG


def _node(rng, cls, wshape, **kw):
    weight = rng.integers(-128, 128, wshape, dtype=np.int8)
    o = wshape[0]
    fan = int(np.prod(wshape[1:]))
    mult, shift = quantize_multipliers(np.full(o, 40.0 / (128 * 74 * np.sqrt(fan))))
    return cls(name=cls.__name__.lower(), inputs=["x"], output="y", weight=weight,
               bias=rng.integers(-3000, 3000, o).astype(np.int32), mult=mult, shift=shift, **kw)


def test_run_conv_splits_large_layers():
    rng = np.random.default_rng(3)
    node = _node(rng, Conv, (200, 4, 1, 1), lo=-100, hi=127)     # 67 column blocks > 64
    with pytest.raises(EngineCapacityError):
        compile_conv(node.weight, node.folded_bias(0), node.mult, node.shift,
                     np.zeros((4, 2, 3), np.int8), 0, 0, -128, 127, cfg=CI_CFG)
    x = rng.integers(-128, 128, (4, 2, 3), dtype=np.int8)
    y, cycles = run_conv(node, x, zx=7, zy=-3, config=CI_CFG)
    want = golden.conv_layer(node, x, 7, -3)
    np.testing.assert_array_equal(y, want)
    assert cycles > 0 and len(np.unique(want)) > 20


@pytest.mark.parametrize("c,h,w,stride,expect", [
    (40, 18, 12, 1, "rows"),              # 8 channel blocks × 20×14 padded: stripes of rows
    (40, 6, 90, 2, "columns"),            # 3 input rows × 92 words × 8 blocks > 2048: columns too
])
def test_run_conv_tiles_a_map_larger_than_the_engine(c, h, w, stride, expect):
    """A map larger than the input memory runs as tiles of the output (each with its input
    window) × output-channel chunks, bit-exact, with a reduction tiled over channel blocks."""
    from host.compiler.tiling import conv_parts
    rng = np.random.default_rng(c + w)
    node = _node(rng, Conv, (4, c, 3, 3), stride=[stride, stride], pads=[1, 1, 1, 1])
    x = rng.integers(-128, 128, (c, h, w), dtype=np.int8)
    xp = np.pad(x, ((0, 0), (1, 1), (1, 1)), constant_values=3)
    parts = conv_parts(node.weight, node.folded_bias(3), node.mult, node.shift, xp, 3, 0,
                       node.lo, node.hi, (stride, stride), 1, CI_CFG)
    boxes = {box for _, _, box, _ in parts}
    rows, cols = len({b[:2] for b in boxes}), len({b[2:] for b in boxes})
    assert (rows > 1 and cols == 1) if expect == "rows" else cols > 1
    assert all(prog.desc["n_it"] > 1 for *_, prog in parts)
    y, cycles = run_conv(node, x, zx=3, zy=0, config=CI_CFG)
    want = golden.conv_layer(node, x, 3, 0)
    np.testing.assert_array_equal(y, want)
    assert len(np.unique(want)) > 20


def test_run_conv_tiles_with_the_fused_pool():
    """Tiles of even size keep the fused 2×2 pool's windows whole."""
    from tests.test_engine import CI_CFG_FEATURES, reference_maxpool
    rng = np.random.default_rng(12)
    node = _node(rng, Conv, (5, 16, 3, 3), pads=[1, 1, 1, 1])
    x = rng.integers(-128, 128, (16, 22, 23), dtype=np.int8)      # 4 blocks × 24×25 > 2048
    y, _ = run_conv(node, x, zx=-2, zy=1, config=CI_CFG_FEATURES, pool=True)
    np.testing.assert_array_equal(y, reference_maxpool(golden.conv_layer(node, x, -2, 1)))


def test_run_fc_matches_golden():
    rng = np.random.default_rng(4)
    node = _node(rng, FC, (11, 37))
    x = rng.integers(-128, 128, 37, dtype=np.int8)
    y, cycles = run_fc(node, x, zx=-5, zy=2, config=CI_CFG)
    np.testing.assert_array_equal(y, golden.fc_layer(node, x, -5, 2))
    assert cycles >= 3 * -(-37 // CI_CFG.rows)      # 4 column blocks × 8 steps at least


def _tiny_net():
    b = GraphBuilder("tiny", (3, 6, 6), seed=5)
    x = b.conv(b.input, 6, 3, name="c1")
    x = b.conv(x, 6, 3, groups=6, name="dw")
    x = b.conv(x, 4, 1, stride=2, name="pw")
    x = b.flatten(x, name="flat")
    b.fc(x, 5, name="fc")
    return b.build()


@pytest.mark.parametrize("schedule,block", [("layer", None), ("fused", (2, 2)), ("block", (2, 2))])
def test_network_on_engine_bit_exact(schedule, block):
    g = _tiny_net()
    x = smooth_input(g, seed=1)
    want = golden.run(g, x, schedule=schedule, block=block)
    sim = EngineSim(CI_CFG)
    got = golden.run(g, x, schedule=schedule, block=block, conv_fn=sim.conv_fn, fc_fn=sim.fc_fn)
    np.testing.assert_array_equal(got, want)
    assert {s["name"] for s in sim.stats} == {"c1", "dw", "pw", "fc"}
    assert all(0 < s["utilisation"] <= 1 for s in sim.stats)


@pytest.mark.parametrize("schedule,block", [("layer", None), ("block", (3, 3))])
def test_emulated_engine_equals_the_rtl(schedule, block):
    """``--target emu``: the same engine runs executed by the NumPy model give the RTL's outputs,
    cycles and traffic, layer by layer (here with reductions iterated on the 32-entry table)."""
    b = GraphBuilder("wide", (40, 6, 6), seed=8)
    x = b.conv(b.input, 24, 3, name="c1")
    x = b.conv(x, 24, 3, groups=24, name="dw")
    x = b.conv(x, 7, 1, name="pw")
    b.fc(b.flatten(x, name="flat"), 5, name="fc")
    g = b.build()
    x = smooth_input(g, seed=2)
    runs = {}
    for emulated in (False, True):
        eng = EngineSim(CI_CFG, emulated=emulated)
        y = golden.run(g, x, schedule=schedule, block=block, conv_fn=eng.conv_fn, fc_fn=eng.fc_fn)
        runs[emulated] = (y, [(s["name"], s["cycles"], s["offchip_bytes"]) for s in eng.stats])
    np.testing.assert_array_equal(runs[True][0], runs[False][0])
    np.testing.assert_array_equal(runs[True][0], golden.run(g, x, schedule=schedule, block=block))
    assert runs[True][1] == runs[False][1]


def _pool_net(size=14):
    """conv → max-pool pairs the engine fuses (odd 7×7 map: floor pooling), one it must not
    (the conv output also feeds the residual add) and a 3×3 pool it cannot; ``size``: the
    input's height and width (the comments are for 14)."""
    b = GraphBuilder("pooly", (3, size, size), seed=9)
    x = b.conv(b.input, 4, 3, name="c1")
    x = b.maxpool(x, 2, name="p1")                       # 7×7
    y = b.conv(x, 4, 3, name="c2")
    x = b.add(x, y, name="res")
    x = b.conv(x, 5, 3, groups=1, name="c3")
    x = b.maxpool(x, 2, name="p3")                       # 7×7 → 3×3 (last row/column dropped)
    x = b.conv(x, 5, 3, groups=5, name="dw")
    x = b.maxpool(x, 3, stride=1, pad=1, name="p4")      # not 2×2/2: the host pools
    x = b.flatten(x, name="flat")
    b.fc(x, 3, name="fc")
    return b.build()


def run_pool_net(cfg, schedule, block, seed):
    """``_pool_net`` on the engine ``cfg`` (with the fused-pool hook) and on the golden model
    under one schedule → (engine output, golden output, the EngineSim with its stats)."""
    g = _pool_net()
    x = smooth_input(g, seed=seed)
    want = golden.run(g, x, schedule=schedule, block=block)
    sim = EngineSim(cfg)
    got = golden.run(g, x, schedule=schedule, block=block, conv_fn=sim.conv_fn,
                     fc_fn=sim.fc_fn, conv_pool_fn=sim.conv_pool_fn)
    return got, want, sim


@pytest.mark.parametrize("schedule,block", [("layer", None), ("fused", (7, 7)),
                                            ("block", (8, 8))])
def test_network_with_fused_pools_bit_exact(schedule, block):
    """``conv_pool_fn``: convolutions whose only consumer is a 2×2/2 max-pool run with the
    engine's fused pool, under every schedule, bit-exact with the golden model."""
    from tests.test_engine import CI_CFG_FEATURES as cfg
    got, want, sim = run_pool_net(cfg, schedule, block, seed=2)
    np.testing.assert_array_equal(got, want)
    names = [s["name"] for s in sim.stats]
    assert "c1+p1" in names and "c3+p3" in names
    assert "c1" not in names and "c3" not in names and "dw" in names and "c2" in names
    assert len(np.unique(got)) > 1


def test_fused_pool_falls_back_when_the_map_is_too_wide():
    """An engine whose pool row buffer is narrower than the map pools on the host instead
    (a 16-word buffer; pooled rows of 34 and 17 words)."""
    from tests.test_engine import CI_CFG_FEATURES as cfg
    g = _pool_net(68)
    x = smooth_input(g, seed=3)
    sim = EngineSim(cfg)
    got = golden.run(g, x, conv_fn=sim.conv_fn, fc_fn=sim.fc_fn, conv_pool_fn=sim.conv_pool_fn)
    np.testing.assert_array_equal(got, golden.run(g, x))
    names = [s["name"] for s in sim.stats]
    assert "c1" in names and "c3" in names and not any("+" in n for n in names)


@pytest.mark.parametrize("seed", range(40))
def test_layer_compiler_on_the_dataflow_model(seed):
    """compile_conv + the NumPy model of the engine's dataflow (emulate) vs the golden conv on
    many random shapes — fast, no simulator; the RTL tests then pin the RTL to the same model.
    A reduction no tiling fits is refused, never run wrong."""
    _dataflow_case(seed)


def _dataflow_case(seed):
    """One random case; returns whether its engine runs iterated their reduction (None when
    the engine refused the layer, as it must when no reduction plan fits)."""
    from host.compiler.reduction import plan_reduction
    from hw.engine.engine import EngineConfig
    from host.compiler.pack import unpack_output
    from host.compiler.tiling import conv_chunks
    from host.runtime.engine_model import emulate
    rng = np.random.default_rng(seed)
    # short step tables make long reductions iterate (host.compiler.reduction)
    cfg = EngineConfig(rows=int(rng.integers(1, 10)), cols=int(rng.integers(1, 10)),
                       in_depth=4096, w_depth=4096, step_depth=int(rng.choice([12, 24, 512])),
                       ob_depth=8, out_depth=4096, post_lanes=int(rng.integers(1, 4)))
    k = int(rng.integers(1, 8))
    g = int(rng.choice([1, 1, 2, 3, 5]))
    dw = rng.random() < 0.3
    c = g * (1 if dw else int(rng.integers(1, 30)))
    o = g * (1 if dw else int(rng.integers(1, 12)))
    h, w = int(rng.integers(1, 9)), int(rng.integers(1, 9))
    pads = tuple(int(v) for v in rng.integers(0, k, 4))
    if h + pads[0] + pads[2] < k or w + pads[1] + pads[3] < k:
        pads = (k - 1,) * 4
    stride = (int(rng.integers(1, 3)), int(rng.integers(1, 3)))
    node = _node(rng, Conv, (o, c // g, k, k), stride=stride, pads=pads, groups=g)
    x = rng.integers(-128, 128, (c, h, w), dtype=np.int8)
    zx, zy = int(rng.integers(-128, 128)), int(rng.integers(-5, 5))
    if not (dw and g > 1) and plan_reduction(k, k, c // g, cfg.rows, cfg.lanes,
                                             cfg.step_depth) is None:
        with pytest.raises(EngineCapacityError, match="step-table words even tiled"):
            conv_chunks(node.weight, node.folded_bias(zx), node.mult, node.shift, x, zx, zy,
                        node.lo, node.hi, stride, pads, g, cfg)
        return None
    parts = conv_chunks(node.weight, node.folded_bias(zx), node.mult, node.shift, x, zx, zy,
                        node.lo, node.hi, stride, pads, g, cfg)
    y = np.concatenate([unpack_output(p, emulate(p, cfg)[0]) for _, _, p in parts])
    np.testing.assert_array_equal(y, golden.conv_layer(node, x, zx, zy))
    return {p.desc["n_it"] > 1 for _, _, p in parts}


def test_the_dataflow_model_cases_include_tiled_reductions():
    """The random cases above cover both plain and iterated reductions."""
    seen = set()
    for seed in range(40):
        seen |= _dataflow_case(seed) or {None}
    assert {False, True} <= seen


@pytest.mark.parametrize("seed", range(6))
def test_fused_maxpool_on_the_dataflow_model(seed):
    """compile_conv(pool=True) + emulate vs the golden conv then the golden 2×2/2 max-pool."""
    from hw.engine.engine import EngineConfig
    from host.model.ir import Pool
    from host.compiler.pack import unpack_output
    from host.runtime.engine_model import emulate
    rng = np.random.default_rng(500 + seed)
    cfg = EngineConfig(rows=4, cols=3, in_depth=4096, w_depth=4096, step_depth=512, ob_depth=8,
                       out_depth=4096, post_lanes=2, pool_width=16)
    c, o = int(rng.integers(1, 6)), int(rng.integers(1, 8))
    h, w = int(rng.integers(2, 11)), int(rng.integers(2, 11))
    node = _node(rng, Conv, (o, c, 3, 3), stride=(1, 1), pads=(1, 1, 1, 1), groups=1)
    x = rng.integers(-128, 128, (c, h, w), dtype=np.int8)
    zx, zy = int(rng.integers(-128, 128)), int(rng.integers(-5, 5))
    prog = compile_conv(node.weight, node.folded_bias(zx), node.mult, node.shift, x, zx, zy,
                        node.lo, node.hi, (1, 1), (1, 1, 1, 1), 1, cfg, pool=True)
    words, _ = emulate(prog, cfg)
    conv = golden.conv_layer(node, x, zx, zy)
    pool = Pool(name="p", inputs=["y"], output="z", kind="max", kernel=(2, 2), stride=(2, 2),
                pads=(0, 0, 0, 0))
    want = golden.maxpool_padded(pool, conv)
    np.testing.assert_array_equal(unpack_output(prog, words), want)


def test_fused_maxpool_capacity_errors():
    from hw.engine.engine import EngineConfig
    rng = np.random.default_rng(9)
    x = rng.integers(-128, 128, (2, 6, 20), dtype=np.int8)
    wgt = rng.integers(-128, 128, (2, 2, 1, 1), dtype=np.int8)
    args = (wgt, np.zeros(2), np.full(2, 1 << 30), np.zeros(2, int), x, 0, 0, -128, 127)
    with pytest.raises(EngineCapacityError, match="no fused max-pool"):
        compile_conv(*args, cfg=CI_CFG, pool=True)
    narrow = EngineConfig(rows=5, cols=3, in_depth=2048, w_depth=1024, step_depth=256,
                          ob_depth=64, out_depth=2048, post_lanes=2, pool_width=16)
    with pytest.raises(EngineCapacityError, match="exceeds the max-pool"):
        compile_conv(*args, cfg=narrow, pool=True)


def test_engine_sim_reexports_the_moved_parts():
    """``sim.engine_sim`` stays importable for older callers: its public names are exactly those
    of the parts' new homes, the same objects."""
    import sim.engine_sim as old
    from host.compiler import layer, pack, tiling
    from host.runtime import engine_model as emulator
    from sim import engine_layers, engine_rtl
    homes = {n: getattr(mod, n) for mod in (layer, pack, tiling, emulator, engine_layers, engine_rtl)
             for n in mod.__all__}
    assert sorted(old.__all__) == sorted(homes)
    for n in old.__all__:
        assert getattr(old, n) is homes[n], n
