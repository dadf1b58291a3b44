"""host.compiler.program: the layout of maps, what the program loads, the memory map and its
limits, and that the tables it stores decode to what the layer compiler made."""
import numpy as np
import pytest

from host.compiler.plan import default_plan
from host.compiler.program import MapPlace, ProgramError, compile_program
from host.model import zoo
from host.model.builder import GraphBuilder
from host.runtime.emulator import Emulator
from hw.configs import BOARD_CONFIGS, CI_CONFIG
from hw.soc.isa import Op, Target, target_word_bytes, unpack
from host.compiler.layer import compile_conv
from host.compiler.pack import pack_program

B85 = BOARD_CONFIGS["ulx3s-85f"]


def _insns(p):
    return [unpack(p.code[k:k + 32]) for k in range(0, len(p.code), 32)]


def _descs(p, cfg):
    """The descriptors the program's LOADs bring, in order, decoded from its constants."""
    from hw.engine.engine import layer_desc_layout
    from hw.soc.isa import decode_fields
    consts = np.frombuffer(p.consts, np.uint8)
    lay = layer_desc_layout(cfg.addr_width)
    n = target_word_bytes(cfg)[Target.DESC]
    return [decode_fields(lay, int.from_bytes(consts[a["ext"] - p.consts_addr:][:n].tobytes(),
                                              "little"))
            for op, _, a in _insns(p) if op == Op.LOAD and a["target"] == Target.DESC]


@pytest.mark.parametrize("shape,lanes", [((5, 3, 4), 4), ((16, 2, 2), 16), ((33, 1, 1), 16)])
def test_map_layout_round_trip(shape, lanes):
    rng = np.random.default_rng(sum(shape))
    x = rng.integers(-128, 128, shape).astype(np.int8)
    place = MapPlace(0, *shape, lanes)
    raw = place.pack(x)
    assert len(raw) == place.nbytes == -(-shape[0] // lanes) * lanes * shape[1] * shape[2]
    np.testing.assert_array_equal(place.unpack(raw), x)
    c, y, xx = 2 % shape[0], shape[1] - 1, shape[2] - 1
    assert np.frombuffer(raw, np.int8)[place.word(c // lanes, y, xx) + c % lanes] == x[c, y, xx]
    idx = place.vector_index()                 # the flattened vector, from the stored bytes
    flat = np.zeros(x.size, np.int8)
    flat[idx[idx >= 0]] = np.frombuffer(raw, np.int8)[idx >= 0]
    np.testing.assert_array_equal(flat, x.reshape(-1))


def test_no_padded_copy_is_loaded():
    """A 3×3 pad-1 layer whose map fits the input memory loads the map's own words once —
    (H, W), not (H+2, W+2): the engine puts the zero point at the borders."""
    b = GraphBuilder("p", (16, 10, 12), seed=1, input_zero_point=9)
    b.conv(b.input, 16, 3)
    p = compile_program(b.build(), B85, schedule="layer")
    loads = [a for op, _, a in _insns(p) if op == Op.LOAD and a["target"] == Target.MAP]
    assert len(loads) == 1 and (loads[0]["n0"], loads[0]["n1"], loads[0]["n2"]) == (12, 10, 1)


@pytest.mark.parametrize("pool_first", [False, True])
def test_a_three_channel_image_is_stored_and_loaded_dense(pool_first):
    """A 3-channel input whose consumers are convolutions is stored in 4-byte words and loaded
    ``dense`` (a memory word per map word, the rest zero): a quarter of the bytes of 16-byte
    words, bit-exact with golden; an input a max pool reads keeps the engine's lanes."""
    from host.runtime import golden
    b = GraphBuilder("d", (3, 14, 18), seed=3, input_zero_point=-7)
    b.conv(b.maxpool(b.input, 2) if pool_first else b.input, 16, 3)
    g = b.build()
    p = compile_program(g, B85, schedule="layer")
    x = np.random.default_rng(5).integers(-128, 128, (3, 14, 18)).astype(np.int8)
    y, st = Emulator(B85, p).run(x)
    np.testing.assert_array_equal(y, golden.run(g, x))
    lanes = 16 if pool_first else 4
    assert p.input.lanes == lanes and len(p.input_bytes(x)) == 14 * 18 * lanes
    loads = [a for op, _, a in _insns(p) if op == Op.LOAD and a["target"] == Target.MAP]
    assert [a["dense"] for a in loads] == [0 if pool_first else 1]
    if not pool_first:
        assert st.traffic["map"] == 14 * 18 * 4 + 16 * 14 * 18     # dense in, 16 lanes out


def test_weights_stay_for_every_tile_of_a_chunk():
    """A map cut into several tiles under one output chunk loads its weights once."""
    b = GraphBuilder("t", (16, 40, 40), seed=2)
    b.conv(b.input, 16, 3)
    p = compile_program(b.build(), B85, schedule="layer")
    ops = _insns(p)
    maps = [a for op, _, a in ops if op == Op.LOAD and a["target"] == Target.MAP]
    weights = [a for op, _, a in ops if op == Op.LOAD and a["target"] == Target.WEIGHTS]
    assert len(maps) > 1 and len(weights) == 1
    assert sum(op == Op.CONV for op, _, _ in ops) == len(maps)
    assert p.counts["loads_skipped"] > 0


def test_a_layers_first_weights_load_beside_the_last_layers_last_run():
    """The next layer's first weights are loaded right after the last layer's last CONV, into
    the weight half that run does not use — before the STORE that waits for it — and the
    program still runs bit-exact (the emulator raises on any clash)."""
    from host.model.builder import smooth_input
    from host.runtime import golden
    b = GraphBuilder("t", (16, 12, 12), seed=4)
    b.conv(b.conv(b.input, 32, 3), 16, 3)
    g = b.build()
    p = compile_program(g, B85, schedule="layer")
    ops = _insns(p)
    first, second = (n.name for n in g.nodes)
    load = next(k for k, (op, _, a) in enumerate(ops) if op == Op.LOAD
                and a["target"] == Target.WEIGHTS and p.layers[k] == second)
    last_conv = max(k for k, (op, _, _) in enumerate(ops) if op == Op.CONV and p.layers[k] == first)
    last_store = max(k for k, (op, _, _) in enumerate(ops) if op == Op.STORE and p.layers[k] == first)
    assert last_conv < load < last_store
    x = smooth_input(g, seed=0)
    np.testing.assert_array_equal(Emulator(B85, p).run(x)[0], golden.run(g, x))


def test_a_pointwise_layers_first_weights_stream_beside_the_last_pointwise_layers_last_runs():
    """Pointwise, depthwise, pointwise (MobileNet's pattern): the second pointwise layer's first
    weights load in pieces between the runs of the first one's last output chunk — before the
    depthwise layer, whose runs are short and whose weights are a few words — into words
    nothing touches until that layer runs; so its first run does not wait for them, and the
    program runs bit-exact (the emulator raises on any clash)."""
    from host.model.builder import smooth_input
    from host.runtime import golden
    b = GraphBuilder("t", (512, 14, 14), seed=5)
    t = b.conv(b.input, 512, 1, pad=0)
    t = b.conv(t, 512, 3, groups=512)
    b.conv(t, 512, 1, pad=0)
    g = b.build()
    pw1, dw, pw2 = (n.name for n in g.nodes)
    p = compile_program(g, B85, schedule="layer")
    ops = _insns(p)
    at = [k for k, (op, _, a) in enumerate(ops) if op == Op.LOAD
          and a["target"] == Target.WEIGHTS and p.layers[k] == pw2]
    convs = {n: [k for k, (op, _, _) in enumerate(ops) if op == Op.CONV and p.layers[k] == n]
             for n in (pw1, dw, pw2)}
    early = [k for k in at if k < convs[dw][0]]
    assert len(early) > 1                                    # in pieces …
    assert all(convs[pw1][0] < k < convs[pw1][-1] + 2 for k in early)   # … beside pw1's runs
    x = smooth_input(g, seed=0)
    y, st = Emulator(B85, p).run(x)
    np.testing.assert_array_equal(y, golden.run(g, x))
    runs = [(s, e) for op, layer, s, e, _, _ in st.insns if op == Op.CONV]
    first = next(k for k, (op, layer, *_) in enumerate(st.insns)
                 if op == Op.CONV and layer == pw2)
    k = sum(1 for op, layer, *_ in st.insns[:first] if op == Op.CONV)
    piece = max(e - s for op, layer, s, e, _, _ in st.insns if op == Op.LOAD and layer == pw2)
    assert runs[k][0] - runs[k - 1][1] < piece * len(early)  # less than its weights' load


def test_a_depthwise_layers_weights_are_stored_and_loaded_dense():
    """A depthwise run uses two of the array's nine weight rows per step: its weight words are
    stored with their used memory words only and loaded ``dense`` (the rest zero on chip), a
    fraction of the bytes; the result is the golden model's."""
    from host.model.builder import smooth_input
    from host.runtime import golden
    b = GraphBuilder("t", (32, 9, 10), seed=6)
    b.conv(b.input, 32, 3, groups=32)
    g = b.build()
    p = compile_program(g, B85, schedule="layer")
    loads = [a for op, _, a in _insns(p) if op == Op.LOAD and a["target"] == Target.WEIGHTS]
    wb = target_word_bytes(B85.engine)[Target.WEIGHTS]
    assert loads and all(0 < a["dense"] * 4 < wb for a in loads)
    x = smooth_input(g, seed=1)
    y, st = Emulator(B85, p).run(x)
    np.testing.assert_array_equal(y, golden.run(g, x))
    assert st.traffic["weights"] == sum(a["n0"] * a["dense"] * 4 for a in loads)


def test_tables_alternate_between_their_banks_without_waiting_for_the_engine():
    """With two table banks, a run whose step or block table differs from the running one's
    has it loaded into the other bank (the descriptor names the bank) with no sync bit: the
    DMA writes it while the engine runs; the emulator (which raises on any clash) agrees with
    the golden model, and with one bank the same network takes longer."""
    from host.model.builder import smooth_input
    from host.runtime import golden
    from dataclasses import replace
    from hw.engine.engine import EngineConfig
    b = GraphBuilder("t", (16, 20, 20), seed=7)
    t = b.conv(b.input, 48, 3)
    t = b.conv(t, 48, 3, groups=48)
    b.conv(t, 32, 1, pad=0)
    g = b.build()
    cfg = B85.engine
    assert cfg.table_banks == 2
    p = compile_program(g, B85, schedule="layer")
    ops = _insns(p)
    for t, depth in ((Target.STEPS, cfg.step_depth),
                     (Target.BLOCKS, cfg.block_words)):
        loads = [(s, a) for op, s, a in ops if op == Op.LOAD and a["target"] == t]
        assert {a["onchip"] for _, a in loads} == {0, depth}
        assert any(not s["engine"] for s, _ in loads[1:])
    descs = _descs(p, cfg)
    assert {d["step_bank"] for d in descs} == {d["ob_bank"] for d in descs} == {0, 1}
    x = smooth_input(g, seed=2)
    y, st = Emulator(B85, p).run(x)
    np.testing.assert_array_equal(y, golden.run(g, x))
    one = replace(B85, engine=EngineConfig(**{**cfg.as_dict(), "table_banks": 1}))
    y1, st1 = Emulator(one, compile_program(g, one, schedule="layer")).run(x)
    np.testing.assert_array_equal(y1, y)
    assert st.cycles < st1.cycles


def test_runs_are_double_buffered_and_pipelined():
    """Tiles of one layer alternate between the halves of the input and output memories, and
    each run's STORE comes after the next run's CONV without a sync bit: the DMA drains one
    output half and fills one input half while the engine works on the others. The emulator
    (which raises on any clash) then finishes in fewer cycles than the two units' sum."""
    from host.model.builder import smooth_input
    b = GraphBuilder("t", (16, 40, 40), seed=2)
    b.conv(b.input, 16, 3)
    g = b.build()
    p = compile_program(g, B85, schedule="layer")
    ops = _insns(p)
    cfg = B85.engine
    half = {Target.MAP: cfg.in_depth // 2, Target.OUT: cfg.out_depth // 2}
    maps = [a["onchip"] for op, _, a in ops if op == Op.LOAD and a["target"] == Target.MAP]
    assert len(maps) > 2 and set(maps) == {0, half[Target.MAP]}
    assert all(a != b for a, b in zip(maps, maps[1:]))           # alternating halves
    stores = [k for k, (op, _, _) in enumerate(ops) if op == Op.STORE]
    convs = [k for k, (op, _, _) in enumerate(ops) if op == Op.CONV]
    assert {ops[k][2]["onchip"] for k in stores} == {0, half[Target.OUT]}
    # every STORE but the last follows the next run's CONV and does not wait for it
    for s, c in zip(stores[:-1], convs[1:]):
        assert c < s and not ops[s][1]["engine"]
    assert ops[stores[-1]][1]["engine"]                         # the last one must wait
    # the descriptor of each run points at its halves (pix0 carries the input half)
    descs = _descs(p, cfg)
    assert [d["out_base"] for d in descs] == [ops[k][2]["onchip"] for k in stores]
    y, st = Emulator(B85, p).run(smooth_input(g))
    assert st.cycles < st.busy["engine"] + st.busy["dma"]


def test_arena_reuses_dead_maps():
    g = zoo.get("mobilenet_v1", 32)
    p = compile_program(g, B85, default_plan(g, "layer"))
    every_map = sum(MapPlace(0, *t.shape, 16).nbytes for t in g.tensors.values()
                    if len(t.shape) == 3)
    assert p.size - p.arena_addr < every_map / 2
    assert p.consts_addr >= len(p.code) and p.arena_addr >= p.consts_addr + len(p.consts)


def test_refusals_are_one_line():
    with pytest.raises(ProgramError, match=r"36\.\d MiB of off-chip memory, ulx3s-85f has 32\.0"):
        compile_program(zoo.get("vgg16", 32), B85)       # VGG16's classifier alone is 21 MB
    with pytest.raises(ProgramError, match="as many columns as lanes"):
        compile_program(zoo.get("digits"), CI_CONFIG)
    b = GraphBuilder("g", (8, 6, 6))
    b.conv(b.input, 8, 1, groups=2)
    with pytest.raises(ProgramError, match="grouped convolutions"):
        compile_program(b.build(), B85)
    with pytest.raises(ProgramError, match="no layer"):
        compile_program(zoo.get("digits"), B85, until="conv9")


@pytest.mark.parametrize("board", ["ulx3s-85f", "icebreaker", "ulx3s-45f"])
def test_stored_tables_decode_to_the_layer_compilers(board):
    """The descriptor, step and block tables the program stores, decoded as the emulator (and
    the controller's loads) take them, are the layer compiler's own — so the engine's NumPy
    model, pinned to the RTL on the compiler's programs, runs the same layer."""
    acfg = BOARD_CONFIGS[board]
    cfg = acfg.engine
    rng = np.random.default_rng(5)
    c, o, h, w = 6, cfg.cols + 1, 5, 4
    layer = compile_conv(rng.integers(-127, 128, (o, c, 3, 3)), rng.integers(-999, 999, o),
                         rng.integers(1 << 29, 1 << 30, o), rng.integers(-9, 3, o),
                         np.zeros((c, h, w), np.int8), 3, -2, -128, 127, (1, 2), (1, 0, 1, 1),
                         1, cfg)
    b = GraphBuilder("one", (c, h, w), seed=5)
    b.conv(b.input, o, 3)
    p = compile_program(b.build(), acfg, schedule="layer")
    em = Emulator(acfg, p)

    pk = pack_program(layer, cfg)
    wb = target_word_bytes(cfg)
    rows = np.frombuffer(b"".join(int(x, 16).to_bytes(wb[Target.STEPS], "little")
                                  for x in pk["step_hex"]), np.uint8).reshape(-1, wb[Target.STEPS])
    assert em._decode_steps(rows) == layer.step_words
    assert rows.tobytes() in p.consts          # the program stores this very table
    rows = np.frombuffer(b"".join(int(x, 16).to_bytes(wb[Target.BLOCKS], "little")
                                  for x in pk["blk_hex"]), np.uint8).reshape(-1, wb[Target.BLOCKS])
    for (ib, bias, mult, shift), (ib2, bias2, mult2, shift2) in zip(em._decode_blocks(rows),
                                                                     layer.blocks):
        assert ib == ib2
        np.testing.assert_array_equal(bias, bias2)
        np.testing.assert_array_equal(mult, mult2)
        np.testing.assert_array_equal(shift, shift2)


def test_fused_group_keeps_its_intermediate_maps_in_the_activation_buffer():
    """Under ``fused`` a chain's intermediate maps live in the activation buffer a block's
    window at a time: only the group's input and output cross the off-chip memory, the result
    is the same, and with a buffer too small for the windows the maps go off chip again."""
    import dataclasses

    from host.compiler.plan import Group, Plan
    from host.model.builder import smooth_input
    from host.runtime import golden
    from hw.soc.isa import ACT_BASE
    b = GraphBuilder("f", (16, 24, 20), seed=5, input_zero_point=3)
    t = b.conv(b.input, 16, 3)
    t = b.conv(t, 32, 3, stride=2)
    t = b.maxpool(t, 2)
    b.conv(t, 16, 1)
    g = b.build()
    plan = Plan("fused", [Group([n.name for n in g.nodes], (8, 10))])
    x = smooth_input(g, seed=1)
    want = golden.run(g, x, plan=plan)
    small = dataclasses.replace(B85, act_bytes=1024)
    runs = {}
    for cfg in (B85, small):
        p = compile_program(g, cfg, plan)
        y, st = Emulator(cfg, p).run(x)
        np.testing.assert_array_equal(y, want)
        on = [a for op, _, a in _insns(p) if op in (Op.LOAD, Op.STORE)
              and a["target"] in (Target.MAP, Target.OUT) and a["ext"] >= ACT_BASE]
        pools = [a for op, _, a in _insns(p) if op == Op.POOL]
        runs[cfg.act_bytes] = (p, st, on, pools)
    p, st, on, pools = runs[B85.act_bytes]
    assert p.counts["act_groups"] == 1 and on and st.act > 0
    assert all(a["src"] >= ACT_BASE and a["dst"] >= ACT_BASE for a in pools)
    # off chip: the input once (the halos of its blocks overlap) and the output once
    assert st.written == 16 * 6 * 5
    p0, st0, on0, _ = runs[1024]
    assert p0.counts["act_groups"] == 0 and not on0 and st0.act == 0
    assert st0.read + st0.written - (st.read + st.written) >= 2 * 32 * (12 * 10 + 6 * 5)


def test_a_block_groups_weights_stay_while_its_blocks_run():
    """Weights that fit the weight memory side by side are placed in words nothing holds, so a
    block group's layers keep theirs from block to block: each constant of weights loads once
    for six blocks (they used to alternate between the halves and reload every block)."""
    from host.compiler.plan import Group, Plan
    from host.model.builder import smooth_input
    from host.runtime import golden
    b = GraphBuilder("w", (16, 24, 18), seed=2, input_zero_point=1)
    b.conv(b.conv(b.conv(b.input, 32, 3), 32, 1), 16, 3)
    g = b.build()
    plan = Plan("block", [Group([n.name for n in g.nodes], (8, 9))])
    p = compile_program(g, B85, plan)
    assert p.counts["act_groups"] == 1
    weight_loads = [a["ext"] for op, _, a in _insns(p)
                    if op == Op.LOAD and a["target"] == Target.WEIGHTS]
    assert len(weight_loads) == len(set(weight_loads)) == 3
    x = smooth_input(g, seed=3)
    np.testing.assert_array_equal(Emulator(B85, p).run(x)[0], golden.run(g, x, plan=plan))


def test_one_descriptor_register_makes_each_descriptor_wait_for_the_run():
    """With one descriptor register (``desc_buffers=1``, the iCEBreaker's) no descriptor loads
    while a run is on: between each CONV and the next LOAD of a descriptor some instruction
    waits for the engine; with two most descriptors load beside the run.  The emulator (which
    raises on a missing sync bit) runs both programs bit-exact, the single register costs
    cycles, and a two-register program on the one-register controller is a hazard."""
    from dataclasses import replace
    from host.model.builder import smooth_input
    from host.runtime import golden
    from host.runtime.emulator import HazardError
    b = GraphBuilder("t", (16, 20, 20), seed=7)
    t = b.conv(b.input, 48, 3)
    t = b.conv(t, 48, 3, groups=48)
    b.conv(t, 32, 1, pad=0)
    g = b.build()
    x = smooth_input(g, seed=2)
    want = golden.run(g, x)
    stats, beside = {}, {}
    for n in (1, 2):
        acfg = replace(B85, desc_buffers=n)
        p = compile_program(g, acfg, schedule="layer")
        ops, last_conv, waits = _insns(p), None, []
        for k, (op, s, a) in enumerate(ops):
            if op == Op.CONV:
                last_conv = k
            elif op == Op.LOAD and a["target"] == Target.DESC and last_conv is not None:
                waits.append(any(ops[j][1]["engine"] for j in range(last_conv + 1, k + 1)))
        beside[n] = waits.count(False)
        assert len(waits) > 3
        y, stats[n] = Emulator(acfg, p).run(x)
        np.testing.assert_array_equal(y, want)
    assert beside[1] == 0 and beside[2] > len(waits) // 2
    assert stats[1].cycles > stats[2].cycles
    with pytest.raises(HazardError, match="desc"):
        Emulator(replace(B85, desc_buffers=1),
                 compile_program(g, replace(B85, desc_buffers=2), schedule="layer")).run(x)
