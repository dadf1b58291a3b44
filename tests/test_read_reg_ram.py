"""hw.memory.read_reg_ram.ReadRegRAM: both builds (Amaranth memory; ECP5 DP16KD tiles, simulated with
the model in sim.ecp5_cells) return every word two cycles after its address, bit for bit; and
yosys maps the tiles without the read-during-write emulation it adds to an Amaranth memory."""
import numpy as np
import pytest

from hw.memory.read_reg_ram import LATENCY, ReadRegRAM
from sim.ecp5_cells import dp16kd_pdp36_model, ecp5_cell_counts
from sim.runner import run_cocotb, to_verilog


def traffic(width, depth, ports, n, seed):
    """Random writes and reads; a port never reads the word written in the same cycle (the one
    case the component leaves undefined). Many reads return words written one cycle before."""
    rng = np.random.default_rng(seed)
    nbytes = -(-width // 8)
    w_en = rng.random(n) < 0.5
    w_en[: min(depth, n // 3)] = True                    # fill most of the memory first
    w_addr = rng.integers(0, depth, n)
    w_addr[: min(depth, n // 3)] = np.arange(min(depth, n // 3))
    w_data = rng.integers(0, 256, (n, nbytes), dtype=np.uint8)
    if width % 8:
        w_data[:, -1] &= (1 << (width % 8)) - 1
    r_addr = rng.integers(0, depth, (n, ports))
    recent = rng.random((n, ports)) < 0.3
    r_addr[1:][recent[1:]] = np.broadcast_to(w_addr[:-1, None], (n - 1, ports))[recent[1:]]
    for t in range(n):
        if w_en[t] and depth > 1:
            clash = r_addr[t] == w_addr[t]
            r_addr[t, clash] = (w_addr[t] + 1) % depth
    return dict(w_en=w_en.astype(np.int64), w_addr=w_addr, w_data=w_data, r_addr=r_addr)


def expected(d, depth, nbytes, latency):
    """r_data at cycle t + latency: the word at r_addr[t] after the writes before cycle t."""
    mem = np.zeros((depth, nbytes), dtype=np.uint8)
    n, ports = d["r_addr"].shape
    want = np.zeros((n, ports, nbytes), dtype=np.uint8)
    for t in range(n):
        if t + latency < n:
            want[t + latency] = mem[d["r_addr"][t]]
        if d["w_en"][t]:
            mem[d["w_addr"][t]] = d["w_data"][t]
    return want


#: (width, depth, read ports, registered) × both builds; each case is a Verilator build of its
#: own (~25 s), so ``make test`` runs both builds of the odd depth with two read ports and the
#: tiles of the unregistered memory (:data:`FAST`), the slow tier the rest
SHAPES = [(128, 512, 3, True), (20, 37, 2, True), (36, 2, 1, True), (128, 512, 1, False)]
FAST = {(False, 20, 37, 2, True), (True, 20, 37, 2, True), (True, 128, 512, 1, False)}


@pytest.mark.parametrize("tiles,width,depth,ports,registered", [
    pytest.param(tiles, *shape, id=f"{'dp16kd' if tiles else 'memory'}-{shape[0]}x{shape[1]}-"
                 f"{shape[2]}{'' if shape[3] else '-unregistered'}",
                 marks=() if (tiles, *shape) in FAST else pytest.mark.slow)
    for shape in SHAPES for tiles in (False, True)])
def test_read_reg_ram_bit_exact(tiles, width, depth, ports, registered):
    d = traffic(width, depth, ports, 1500, seed=width + depth + ports)
    dut = ReadRegRAM(width, depth, ports, tiles=tiles, registered=registered)
    assert dut.latency == (LATENCY if registered else LATENCY - 1)
    design = to_verilog(dut) + dp16kd_pdp36_model() if tiles else dut
    out = run_cocotb(design, "sim.tb_read_reg_ram",
                     inputs=dict(d, abits=np.array([max(1, (depth - 1).bit_length())])))
    lat = dut.latency
    want = expected(d, depth, d["w_data"].shape[1], lat)
    got = out["r_data"]
    bad = np.argwhere(np.any(got[lat:] != want[lat:], axis=2))
    assert bad.size == 0, f"{len(bad)} wrong reads, first (cycle, port): {bad[:5] + [lat, 0]}"
    assert len(np.unique(want[lat:, 0, 0])) > min(100, depth)  # real data came back


def test_tiles_refuse_deep_memories():
    with pytest.raises(ValueError, match="512 words"):
        ReadRegRAM(8, 513, tiles=True)


def test_yosys_maps_tiles_without_emulation():
    """The point of the tiles: on ECP5 yosys surrounds an Amaranth memory's read port with a
    copy of the written word and a multiplexer (hundreds of LUTs and registers here); the
    tiles leave the block RAMs and the output registers alone."""
    tiles = ecp5_cell_counts(ReadRegRAM(128, 512, 2, tiles=True))
    memory = ecp5_cell_counts(ReadRegRAM(128, 512, 2, tiles=False))
    assert tiles.get("DP16KD") == memory.get("DP16KD") == 8
    logic = {k: v for k, v in tiles.items() if k.startswith("$_")}
    assert tiles.get("TRELLIS_FF") == 2 * 128 and not logic, tiles
    assert memory.get("$_MUX_", 0) >= 2 * 128 and memory.get("TRELLIS_FF") > 2 * 128, memory
