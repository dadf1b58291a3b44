"""The whole SoC running network programs, driven over the protocol: the link SoC with the
accelerator core (hw.soc.controller + the engine) as its engine, under Verilator, reached through
the host driver's simulated transport.  Every byte of the program, the input, START, STATUS and
the output crosses the UART.  Results must equal the program emulator's and the golden model's;
the controller's counters must equal the emulator's where both count the same thing (engine
cycles, data bytes moved)."""
import numpy as np
import pytest

from host.compiler.program import compile_program
from host.model import zoo
from host.model.builder import GraphBuilder, smooth_input
from host.runtime import golden
from host.runtime.driver import Device, DeviceError, SimTransport
from host.runtime.emulator import Emulator
from host.runtime.program_device import ProgramDevice, soc_config
from hw.configs import get_config
from hw.soc.isa import Op, unpack


@pytest.fixture(scope="module")
def ice_device():
    dev = Device(SimTransport(config=soc_config(get_config("icebreaker"))))
    yield dev
    dev.close()


def _check(dev, g, acfg, schedule="layer", seeds=(0,), plan=None):
    p = compile_program(g, acfg, plan, schedule=schedule)
    pd = ProgramDevice(dev, p)
    for seed in seeds:
        x = smooth_input(g, seed=seed)
        y = pd.run(x)
        want, st = Emulator(acfg, p).run(x)
        np.testing.assert_array_equal(y, want)
        np.testing.assert_array_equal(y, golden.run(g, x, plan=plan))
        f = pd.frames[-1]
        assert f["busy"]["engine"] == st.busy["engine"]
        assert (f["read"], f["written"], f["act"]) == (st.read, st.written, st.act)
        assert f["insns"] == p.n_insns - 1
        # the controller waits for the engine only part of the engine's time (the rest runs
        # beside fetches and transfers), and every unit's cycles lie inside START→DONE
        e, d = f["busy"]["engine"], f["busy"]["dma"]
        assert max(e, d) <= f["cycles"] and f["wait"] < e
    return pd


def test_digits_on_the_icebreaker_configuration(ice_device):
    """The trained digits CNN, two frames on one loaded program (weights stay resident). The
    DMA works beside the engine (double-buffered memories): START→DONE, fetches included, is
    shorter than the engine's and the DMA's busy cycles together."""
    pd = _check(ice_device, zoo.get("digits"), get_config("icebreaker"), seeds=(0, 1))
    f = pd.frames[-1]
    assert f["cycles"] < f["busy"]["engine"] + f["busy"]["dma"], f


@pytest.mark.parametrize("case", [(3, 6, 7, 5, 3, 2, 1), (6, 6, 6, 6, 3, 1, "dw"),
                                  (4, 5, 9, 9, 5, 1, 1)])
def test_single_layers_on_the_icebreaker_configuration(ice_device, case):
    """Stride 2 on odd sizes, depthwise, 5×5 — each cut into tiles by the tiny memories."""
    cin, cout, h, w, k, s, g = case
    b = GraphBuilder("one", (cin, h, w), seed=sum(case[:4]))
    b.conv(b.input, cout, k, stride=s, groups=cin if g == "dw" else g)
    _check(ice_device, b.build(), get_config("icebreaker"))


@pytest.fixture(scope="module")
def b45_device():
    dev = Device(SimTransport(config=soc_config(get_config("ulx3s-45f"))))
    yield dev
    dev.close()


@pytest.mark.parametrize("k,s,pad,h,w", [(2, 2, 0, 5, 7), (3, 2, 1, 6, 5)])
def test_max_pooling(b45_device, k, s, pad, h, w):
    """POOL through the vector unit: odd sizes (the floor pool drops a row), overlapping padded
    windows."""
    b = GraphBuilder("p", (6, h, w), seed=k + h)
    b.maxpool(b.conv(b.input, 6, 3), k, s, pad=pad)
    _check(b45_device, b.build(), get_config("ulx3s-45f"))


def test_global_average_pooling(b45_device):
    """GAP through the vector unit and its requantisation lane, then an FC on its vector."""
    b = GraphBuilder("g", (5, 6, 7), seed=3, input_zero_point=-9)
    b.fc(b.flatten(b.gap(b.conv(b.input, 8, 3))), 3)
    _check(b45_device, b.build(), get_config("ulx3s-45f"))


def test_pooling_faults_where_there_is_no_vector_unit(ice_device):
    """The iCEBreaker's controller has no vector unit: a POOL (from a program compiled as if it
    had one) stops the program with the unused-opcode error at that instruction, as the
    emulator faults there too; the compiler refuses such a network for it in one line."""
    import dataclasses
    from host.compiler.program import ProgramError
    from host.runtime.emulator import ProgramFault
    acfg = get_config("icebreaker")
    b = GraphBuilder("p", (4, 6, 6), seed=2)
    b.maxpool(b.conv(b.input, 4, 3), 2)
    g = b.build()
    with pytest.raises(ProgramError, match="no vector unit"):
        compile_program(g, acfg)
    p = compile_program(g, dataclasses.replace(acfg, vector=True))
    at = next(k for k in range(p.n_insns) if unpack(p.code[32 * k:32 * k + 32])[0] == Op.POOL)
    with pytest.raises(ProgramFault, match=f"instruction {at}: POOL"):
        Emulator(acfg, p).run(smooth_input(g))
    with pytest.raises(DeviceError, match=f"error 0x01 at instruction {at}"):
        ProgramDevice(ice_device, p).run(smooth_input(g))


def test_an_unused_opcode_is_an_error_in_one_line(ice_device):
    """The controller stops at an opcode it does not know and the host says where."""
    g = zoo.get("digits")
    p = compile_program(g, get_config("icebreaker"), schedule="layer")
    code = bytearray(p.code)
    code[5 * 32] = (code[5 * 32] & 0xF0) | 9               # instruction 5 becomes opcode 9
    p.code = bytes(code)
    assert unpack(p.code[:32])[0] == Op.LOAD
    with pytest.raises(DeviceError, match="error 0x01 at instruction 5"):
        ProgramDevice(ice_device, p).run(smooth_input(g))


@pytest.fixture(scope="module")
def b85_device():
    dev = Device(SimTransport(config=soc_config(get_config("ulx3s-85f"))))
    yield dev
    dev.close()


# hold-out shapes (channels in, out, h, w, kernel, stride, groups or "dw")
HOLDOUT = [(3, 20, 9, 11, 3, 1, 1), (16, 16, 1, 1, 3, 1, 1), (5, 7, 13, 9, 3, 2, 1),
           (4, 6, 12, 12, 5, 1, 1), (3, 8, 15, 15, 7, 2, 1), (3, 9, 35, 35, 11, 4, 1),
           (18, 18, 10, 9, 3, 1, "dw"), (8, 8, 9, 9, 7, 1, "dw"), (70, 33, 5, 5, 3, 1, 1)]


@pytest.mark.slow
def test_digits_on_the_85f_configuration(b85_device):
    _check(b85_device, zoo.get("digits"), get_config("ulx3s-85f"))


@pytest.mark.slow
@pytest.mark.parametrize("case", range(len(HOLDOUT)))
def test_holdout_layers_on_the_85f_configuration(b85_device, case):
    """Odd sizes, a 1×1 map, stride 2, 5×5, 7×7, 11×11 stride 4, depthwise, a reduction that
    iterates — each followed by a 2×2 max pool where its map allows — through the whole SoC."""
    cin, cout, h, w, k, s, g = HOLDOUT[case]
    b = GraphBuilder("one", (cin, h, w), seed=case)
    x = b.conv(b.input, cout, k, stride=s, groups=cin if g == "dw" else g)
    if min(b.shape(x)[1:]) >= 2:
        x = b.maxpool(x, 2)
    _check(b85_device, b.build(), get_config("ulx3s-85f"))


@pytest.mark.slow
def test_a_fused_group_on_chip_on_the_85f_configuration(b85_device):
    """A fused chain (3×3, 3×3 stride 2, 2×2 max pool, 1×1) in blocks with halos: its
    intermediate maps, and the pool's input and output, stay in the activation buffer; the
    RTL's off-chip and on-chip byte counters equal the emulator's."""
    from host.compiler.plan import Group, Plan
    b = GraphBuilder("f", (16, 24, 20), seed=5, input_zero_point=3)
    t = b.conv(b.input, 16, 3)
    t = b.conv(t, 32, 3, stride=2)
    b.conv(b.maxpool(t, 2), 16, 1)
    g = b.build()
    plan = Plan("fused", [Group([n.name for n in g.nodes], (8, 10))])
    pd = _check(b85_device, g, get_config("ulx3s-85f"), plan=plan, seeds=(0, 1))
    assert pd.frames[-1]["act"] > 0 and pd.frames[-1]["written"] == 16 * 6 * 5


def test_a_block_group_on_chip_on_the_85f_configuration(b85_device):
    """Block convolution on chip: two blocks through a 3×3 chain and a max pool, each block's
    intermediate maps in the activation buffer (padded at the block's borders by the engine,
    never stored), moved a map word per cycle through its wide port; the 3-channel input
    stored in 4-byte words and loaded ``dense``; the layers' step and block tables in both
    banks. The RTL's output and counters equal the emulator's."""
    from host.compiler.plan import Group, Plan
    from hw.soc.isa import Target
    acfg = get_config("ulx3s-85f")
    b = GraphBuilder("b", (3, 20, 12), seed=8, input_zero_point=-5)
    b.maxpool(b.conv(b.conv(b.input, 32, 3), 16, 3), 2)
    g = b.build()
    plan = Plan("block", [Group([n.name for n in g.nodes], (10, 12))])
    p = compile_program(g, acfg, plan)
    assert p.counts["act_groups"] == 1 and p.input.lanes == 4
    steps = {a["onchip"] for op, _, a in (unpack(p.code[k:k + 32])
                                          for k in range(0, len(p.code), 32))
             if op == Op.LOAD and a["target"] == Target.STEPS}
    assert steps == {0, acfg.engine.step_depth}
    pd = _check(b85_device, g, acfg, plan=plan)
    assert pd.frames[-1]["act"] > 0 and pd.frames[-1]["written"] == 16 * 10 * 6


@pytest.mark.slow
def test_a_block_group_on_chip_on_the_45f_configuration(b45_device):
    """The same block group on the ulx3s-45f: its 8-byte map words take a wide port of two
    memory words (the 85F's takes four)."""
    from host.compiler.plan import Group, Plan
    acfg = get_config("ulx3s-45f")
    b = GraphBuilder("b", (3, 20, 12), seed=8, input_zero_point=-5)
    b.maxpool(b.conv(b.conv(b.input, 32, 3), 16, 3), 2)
    g = b.build()
    plan = Plan("block", [Group([n.name for n in g.nodes], (10, 12))])
    pd = _check(b45_device, g, acfg, plan=plan)
    assert pd.frames[-1]["act"] > 0


@pytest.mark.slow
def test_a_resident_map_on_the_85f_configuration(b85_device):
    """A block held once in the whole input memory while six weight chunks stream in halves
    (:func:`test_map_resident_is_chosen_where_halves_need_many_tiles`), through the SoC."""
    _check(b85_device, _resident_graph(), get_config("ulx3s-85f"))


def _resident_graph():
    b = GraphBuilder("r", (128, 22, 22), seed=8)
    b.conv(b.input, 96, 3)
    return b.build()


def test_weights_load_in_pieces_beside_a_chunks_runs(ice_device):
    """A layer whose tiles run inside output chunks (its 5×5 weights outweigh its map): the
    next chunk's weights load in pieces, one after each run of the chunk before. The RTL's
    output and counters equal the emulator's."""
    from hw.soc.isa import Op, Target, unpack
    acfg = get_config("icebreaker")
    b = GraphBuilder("w", (8, 12, 12), seed=9)
    b.conv(b.input, 8, 5, pad=2)
    g = b.build()
    p = compile_program(g, acfg, schedule="layer")
    insns = [unpack(p.code[k:k + 32]) for k in range(0, len(p.code), 32)]
    sizes = [a["n0"] for op, _, a in insns if op == Op.LOAD and a["target"] == Target.WEIGHTS]
    assert len(sizes) > 2 and len(set(sizes)) > 1     # the second chunk's came in pieces
    _check(ice_device, g, acfg)


def test_map_resident_is_chosen_where_halves_need_many_tiles():
    """128 channels of 22×22 into 96: in halves the map takes three tiles, each loaded again
    for the second output chunk; the whole input memory holds it once for all six chunks."""
    from host.compiler import program as P
    g = _resident_graph()
    seen = []
    orig = P._Compiler.conv_parts

    def spy(self, *a, **kw):
        parts = orig(self, *a, **kw)
        seen.append(({q.share for q in parts}, len({q.tile for q in parts}),
                     len({q.o0 for q in parts})))
        return parts
    P._Compiler.conv_parts = spy
    try:
        P.compile_program(g, get_config("ulx3s-85f"), schedule="layer")
    finally:
        P._Compiler.conv_parts = orig
    assert seen == [({P.MAP_RESIDENT}, 1, 6)]


def test_a_preloaded_device_must_hold_the_program(ice_device):
    """The back door's check: a device said to hold the program's image but holding another
    one is refused before anything runs."""
    b = GraphBuilder("other", (3, 5, 5), seed=11)
    b.conv(b.input, 4, 3)
    p = compile_program(b.build(), get_config("icebreaker"), schedule="layer")
    ice_device.write(0, bytes(64))
    with pytest.raises(DeviceError, match="does not hold the program"):
        ProgramDevice(ice_device, p, preloaded=True)
