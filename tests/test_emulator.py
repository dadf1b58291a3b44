"""host.runtime.emulator: each opcode against NumPy (as VTA tests each instruction class), then
single layers and whole networks compiled by host.compiler.program, bit-exact with the golden
model under the same plan."""
import numpy as np
import pytest

from host.compiler.plan import default_plan
from host.compiler.program import MapPlace, Program, compile_program
from host.model import zoo
from host.model.builder import GraphBuilder, smooth_input
from host.runtime import golden
from host.runtime.emulator import Emulator, EmuTarget, HazardError, ProgramFault
from hw.configs import BOARD_CONFIGS
from hw.soc.isa import Op, Target, pack, unpack

B85 = BOARD_CONFIGS["ulx3s-85f"]
ICE = BOARD_CONFIGS["icebreaker"]


def _bare(acfg, insns, size=1 << 16) -> Emulator:
    """An emulator holding a hand-written program (no compiler) and ``size`` bytes of memory."""
    code = b"".join(insns) + pack(Op.HALT)
    place = MapPlace(size - 64, 1, 1, 1, acfg.engine.lanes)
    prog = Program(board=acfg.name, schedule="layer", code=code, consts=b"",
                   consts_addr=len(code), arena_addr=len(code), size=size, input=place,
                   output=place, output_shape=(1,), layers=["t"] * (len(code) // 32), macs={})
    return Emulator(acfg, prog)


@pytest.mark.parametrize("seed", range(3))
def test_load_and_store_move_the_3d_pattern(seed):
    rng = np.random.default_rng(seed)
    L = B85.engine.lanes
    n0, n1, n2 = (int(v) for v in rng.integers(1, 6, 3))
    s1 = int(rng.integers(n0, 3 * n0 + 1)) * L + int(rng.integers(0, 3))     # any byte stride
    s2 = n1 * s1 + int(rng.integers(0, 50))
    ext, dst = 1000 + int(rng.integers(0, 7)), 30000
    at = int(rng.integers(0, 20))
    em = _bare(B85, [pack(Op.LOAD, target=Target.MAP, onchip=at, ext=ext, n0=n0, n1=n1, s1=s1,
                          n2=n2, s2=s2)])
    em.mem[64:] = rng.integers(0, 256, len(em.mem) - 64)        # past the two instructions
    want = np.stack([em.mem[ext + i2 * s2 + i1 * s1:ext + i2 * s2 + i1 * s1 + n0 * L]
                     for i2 in range(n2) for i1 in range(n1)]).reshape(-1, L)
    op, _, args = unpack(em.mem[:32].tobytes())
    cycles, rd, wr, _ = em.execute(0, op, args)
    np.testing.assert_array_equal(em.onchip[Target.MAP][at:at + n0 * n1 * n2], want)
    assert (rd, wr) == (want.size, 0) and cycles > 0
    # the output memory back by the same pattern
    em.onchip[Target.OUT][at:at + len(want)] = want
    before = em.mem.copy()
    args = dict(target=Target.OUT, onchip=at, ext=dst, n0=n0, n1=n1, s1=s1, n2=n2, s2=s2)
    em.execute(0, Op.STORE, args)
    got = np.stack([em.mem[dst + i2 * s2 + i1 * s1:dst + i2 * s2 + i1 * s1 + n0 * L]
                    for i2 in range(n2) for i1 in range(n1)]).reshape(-1, L)
    np.testing.assert_array_equal(got, want)
    touched = np.flatnonzero(em.mem != before)
    assert touched.size == 0 or (touched.min() >= dst and touched.max() < dst + n2 * s2)


def test_faults():
    em = _bare(B85, [])
    with pytest.raises(ProgramFault, match="overrun"):
        em.execute(0, Op.LOAD, dict(target=Target.MAP, onchip=B85.engine.in_depth - 1, ext=0,
                                    n0=2, n1=1, s1=0, n2=1, s2=0))
    with pytest.raises(ProgramFault, match="outside"):
        em.execute(0, Op.LOAD, dict(target=Target.MAP, onchip=0, ext=len(em.mem) - 8, n0=1,
                                    n1=1, s1=0, n2=1, s2=0))
    with pytest.raises(ProgramFault, match="STORE from"):
        em.execute(0, Op.STORE, dict(target=Target.MAP, onchip=0, ext=0, n0=1, n1=1, s1=0,
                                     n2=1, s2=0))
    # the controller shifts a descriptor in whole: no dense descriptor loads
    with pytest.raises(ProgramFault, match="dense LOAD of a descriptor"):
        em.execute(0, Op.LOAD, dict(target=Target.DESC, onchip=0, ext=0, n0=1, n1=1, s1=0,
                                    n2=1, s2=0, dense=2))


@pytest.mark.parametrize("k,s,pad,h,w", [(2, 2, 0, 6, 8), (3, 2, 1, 7, 5), (3, 1, 1, 4, 4),
                                         (2, 2, 0, 5, 7)])
def test_pool_is_the_golden_maxpool(k, s, pad, h, w):
    rng = np.random.default_rng(k * 10 + h)
    L = B85.engine.lanes
    c = 2 * L + 3
    b = GraphBuilder("p", (c, h, w), seed=1)
    b.maxpool(b.input, k, s, pad=pad)
    g = b.build(calibrate=False)
    x = rng.integers(-128, 128, (c, h, w)).astype(np.int8)
    p = compile_program(g, B85, schedule="layer")
    assert [unpack(p.code[i:i + 32])[0] for i in range(0, len(p.code), 32)] == [Op.POOL, Op.HALT]
    y, st = Emulator(B85, p).run(x)
    np.testing.assert_array_equal(y, golden.run(g, x))
    ho, wo = (h + 2 * pad - k) // s + 1, (w + 2 * pad - k) // s + 1
    taps = sum(0 <= oy * s - pad + ky < h and 0 <= ox * s - pad + kx < w
               for oy in range(ho) for ox in range(wo) for ky in range(k) for kx in range(k))
    assert st.read == -(-c // L) * L * taps             # the vector unit reads tap by tap


@pytest.mark.parametrize("h,w,scale", [(7, 7, 0.9), (1, 1, 1.7), (14, 3, 0.2)])
def test_gap_is_the_golden_average(h, w, scale):
    rng = np.random.default_rng(h * w)
    b = GraphBuilder("g", (20, h, w), seed=2, input_zero_point=-7)
    b.gap(b.input)
    g = b.build(calibrate=False)
    g.tensors[g.output].scale = g.input_tensor.scale * scale
    g.tensors[g.output].zero_point = 5
    x = rng.integers(-128, 128, (20, h, w)).astype(np.int8)
    y, _ = Emulator(B85, compile_program(g, B85, schedule="layer")).run(x)
    np.testing.assert_array_equal(y, golden.run(g, x))


# the hold-out shapes: (channels in, out, h, w, kernel, stride, groups or "dw")
LAYERS = [(3, 20, 9, 11, 3, 1, 1), (16, 16, 1, 1, 3, 1, 1), (5, 7, 13, 9, 3, 2, 1),
          (4, 6, 12, 12, 5, 1, 1), (3, 8, 15, 15, 7, 2, 1), (3, 9, 35, 35, 11, 4, 1),
          (18, 18, 10, 9, 3, 1, "dw"), (8, 8, 9, 9, 7, 1, "dw"), (40, 24, 6, 5, 1, 1, 1),
          (40, 33, 5, 5, 3, 1, 1)]


def _layer_graph(cin, cout, h, w, k, s, g, seed):
    b = GraphBuilder("one", (cin, h, w), seed=seed)
    groups = cin if g == "dw" else g
    x = b.conv(b.input, cout, k, stride=s, groups=groups)
    b.flatten(b.conv(x, 5, 1))      # a second layer reads the first from off-chip memory
    return b.build()


@pytest.mark.parametrize("board", ["ulx3s-85f", "icebreaker"])
@pytest.mark.parametrize("case", range(len(LAYERS)))
def test_single_layers_bit_exact(board, case):
    """Odd sizes, 1×1 maps, stride 2, 5×5, 7×7, 11×11 stride 4, depthwise 3×3/7×7, 1×1, deep
    reductions; on the iCEBreaker's tiny memories every one of them is cut into tiles."""
    acfg = BOARD_CONFIGS[board]
    g = _layer_graph(*LAYERS[case], seed=case)
    x = smooth_input(g, seed=case)
    p = compile_program(g, acfg, schedule="layer")
    y, st = Emulator(acfg, p).run(x)
    np.testing.assert_array_equal(y, golden.run(g, x))
    assert st.busy["engine"] > 0 and st.cycles >= st.busy["engine"]


def test_fc_reads_a_flattened_map_in_its_stored_order():
    b = GraphBuilder("fc", (21, 3, 2), seed=4)
    x = b.conv(b.input, 19, 3)
    b.fc(b.flatten(x), 12)
    g = b.build()
    xin = smooth_input(g, seed=3)
    for acfg in (B85, ICE):
        y, _ = Emulator(acfg, compile_program(g, acfg, schedule="layer")).run(xin)
        np.testing.assert_array_equal(y, golden.run(g, xin))


@pytest.mark.parametrize("name,res,board,schedule,block,until", [
    ("digits", None, "icebreaker", "layer", None, None),
    ("digits", None, "ulx3s-85f", "fused", None, None),
    ("vgg16", 64, "ulx3s-85f", "block", (32, 32), "pool5"),
    ("vgg16", 32, "ulx3s-85f", "fused", (8, 8), "fc6"),
    ("vgg16", 32, "ulx3s-45f", "layer", None, "conv4_1"),
    ("mobilenet_v1", 32, "ulx3s-85f", "fused", (16, 16), None),
    ("mobilenet_v1", 64, "ulx3s-85f", "block", (32, 32), None),
])
def test_networks_bit_exact(name, res, board, schedule, block, until):
    g = zoo.get(name, res) if res else zoo.get(name)
    acfg = BOARD_CONFIGS[board]
    plan = default_plan(g, schedule, block)
    x = smooth_input(g, seed=0)
    t = EmuTarget(g, plan, acfg, until=until)
    got = t.run(x)
    values = golden.run(g, x, plan=plan, keep=True)
    want = values[g.node(until).output if until else g.output]
    np.testing.assert_array_equal(got, want)
    f = t.frames[0]
    assert f["cycles"] >= f["busy"]["engine"] > 0 and f["read"] > 0
    assert {r["name"] for r in t.stats} >= set(t.program.macs)


def test_layers_the_engine_cannot_hold_are_refused_in_one_line():
    """A reduction whose one output block needs more weight words than the memory holds (3×3
    over 1,200 channels: 1,200 words of 9 rows against 1,024), an FC whose input exceeds the
    input memory: both need accumulation across runs, which the engine does not do yet."""
    from host.compiler.program import ProgramError
    b = GraphBuilder("deep", (1200, 2, 2))
    b.conv(b.input, 16, 3, name="deep")
    with pytest.raises(ProgramError, match="deep: .*weight memory"):
        compile_program(b.build(), B85)
    b = GraphBuilder("wide", (300, 15, 15))
    b.fc(b.flatten(b.input), 4, name="fc")
    with pytest.raises(ProgramError, match="fc: 67,500 inputs .4,275 words as stored. exceed"):
        compile_program(b.build(), B85)


def test_a_missing_sync_bit_is_a_hazard():
    """The compiler's sync bits are what keeps the DMA off the engine's memories while it runs:
    cleared, the emulator's scoreboard finds the clash."""
    g = zoo.get("digits")
    p = compile_program(g, B85, schedule="layer")
    code = bytearray(p.code)
    for k in range(0, len(code), 32):
        op, sync, args = unpack(bytes(code[k:k + 32]))
        code[k:k + 32] = pack(op, {}, **args)
    p.code = bytes(code)
    with pytest.raises(HazardError, match="uses"):
        Emulator(B85, p).run(smooth_input(g))


@pytest.mark.parametrize("net,board,schedule", [("digits", "icebreaker", "layer"),
                                                ("digits", "ulx3s-85f", "fused"),
                                                ("mobilenet_v1@64", "ulx3s-85f", "fused"),
                                                ("vgg16@32", "ulx3s-45f", "block")])
def test_the_programs_cost_is_known_before_it_runs(net, board, schedule):
    """``predict`` counts a program's cycles (per unit, waits included) and off-chip bytes from
    its instructions and descriptors alone; running it with data gives the same counts."""
    from host.runtime.emulator import predict
    name, _, res = net.partition("@")
    g = zoo.get(name, int(res)) if res else zoo.get(name)
    acfg = BOARD_CONFIGS[board]
    until = "pool5" if name == "vgg16" else None
    p = compile_program(g, acfg, schedule=schedule, until=until)
    want = Emulator(acfg, p).run(smooth_input(g, seed=3))[1]
    got = predict(p, acfg)
    assert (got.cycles, got.busy, got.wait, got.read, got.written, got.traffic) == \
        (want.cycles, want.busy, want.wait, want.read, want.written, want.traffic)
    assert got.cycles > 0 and got.read > 0
