"""hw.engine.pe.PE in Verilator against an independent NumPy reference, in its three builds: the
behavioural multiply (simulation), the ECP5 build with its instantiated MULT18X18D, simulated
with the cell model of sim.ecp5_cells, and the iCE40 build, one SB_MAC16 under yosys's own
simulation model (sim.ice40_cells)."""
import numpy as np
import pytest
from amaranth.hdl import ClockSignal, Instance, Module
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from hw.engine.pe import PE
from sim.ecp5_cells import mult18x18d_model
from sim.ice40_cells import sb_mac16
from sim.runner import ECP5, ICE40, build, run_cocotb, to_verilog
from sim.yosys_cells import cell_counts, synthesised_cells


def reference(x, w, psum_in, width):
    """psum_out sampled at cycle t: psum_in of cycle t−1 plus the product of x and w of cycle
    t−3 (operand, product and sum registers), wrapped to ``width`` bits; 0 before that."""
    n = len(x)
    out = np.zeros(n, dtype=np.int64)
    prod = x.astype(np.int64) * w.astype(np.int64)
    for t in range(n):
        p = prod[t - 3] if t >= 3 else 0
        s = (psum_in[t - 1] if t >= 1 else 0) + p
        out[t] = ((s + (1 << (width - 1))) % (1 << width)) - (1 << (width - 1))
    out[:2] = 0
    return out


def stream(seed, n=600, width=20):
    rng = np.random.default_rng(seed)
    x = rng.integers(-128, 128, n, dtype=np.int8)
    w = rng.integers(-128, 128, n, dtype=np.int8)
    x[:20:2], w[:20:2] = -128, -128                      # the extreme products first
    x[1:20:2], w[1:20:2] = -128, 127
    psum = rng.integers(-(1 << (width - 1)), 1 << (width - 1), n)
    return x, w, psum


@pytest.mark.parametrize("build_kind", ["behavioural", "mult18x18d", "sb_mac16"])
@pytest.mark.parametrize("seed", [1, pytest.param(2, marks=pytest.mark.slow)])
def test_pe_matches_reference(build_kind, seed):
    width = 20
    x, w, psum = stream(seed, width=width)
    dut = PE(psum_width=width)
    design = {"behavioural": lambda: dut,
              "mult18x18d": lambda: to_verilog(dut, platform=ECP5) + mult18x18d_model(),
              "sb_mac16": lambda: to_verilog(dut, platform=ICE40) + sb_mac16()}[build_kind]()
    got = run_cocotb(design, "sim.tb_pe", inputs=dict(x=x, w=w, psum_in=psum))["psum_out"]
    want = reference(x, w, psum, width)
    np.testing.assert_array_equal(got[3:], want[3:])
    assert len(np.unique(want)) > 500


def test_ecp5_build_instantiates_the_cell():
    """The ECP5 build is the cell with its own operand and output registers (what the model
    simulates); the behavioural build has no cell."""
    text = to_verilog(PE(), platform=ECP5)
    assert "MULT18X18D" in text and 'REG_INPUTA_CLK("CLK0")' in text.replace(" ", "")
    assert "MULT18X18D" not in to_verilog(PE())


@pytest.mark.parametrize("width", [17, 32])
def test_ice40_build_is_one_dsp_block(width):
    """On iCE40 every register and the adder of the PE are the SB_MAC16's own: yosys's
    synthesis leaves one DSP block and no flip-flop or carry cell in the fabric (the
    behavioural build needs all of them beside the multiplier)."""
    cells = cell_counts(PE(psum_width=width), "ice40", platform=ICE40)
    assert cells.get("SB_MAC16") == 1
    assert not [c for c in cells if c.startswith(("SB_DFF", "SB_CARRY", "$_DFF"))], cells
    plain = cell_counts(PE(psum_width=width), "ice40")
    assert sum(n for c, n in plain.items() if c.startswith(("SB_DFF", "$_DFF"))) >= 32 + width


def test_ice40_synthesis_keeps_the_dsp_configuration():
    """The bitstream flow's yosys options (``host.synthesis.ICE40_SYNTH_OPTS``) leave the PE's
    SB_MAC16 as instantiated: its registers and adder, i.e. the function the simulation of
    ``test_pe_matches_reference`` checked (yosys's ``-dsp`` re-derives the configuration of
    every SB_MAC16 and made it a bare multiplier)."""
    from host.synthesis import ICE40_SYNTH_OPTS
    macs = [p for t, p in synthesised_cells(PE(psum_width=17), "ice40", platform=ICE40,
                                            opts=ICE40_SYNTH_OPTS) if t == "SB_MAC16"]
    assert len(macs) == 1
    want = dict(A_REG=1, B_REG=1, C_REG=0, D_REG=0, PIPELINE_16x16_MULT_REG2=1, A_SIGNED=1,
                B_SIGNED=1, TOPADDSUB_UPPERINPUT=1, TOPADDSUB_LOWERINPUT=2,
                TOPADDSUB_CARRYSELECT=2, TOPOUTPUT_SELECT=1, BOTADDSUB_UPPERINPUT=1,
                BOTADDSUB_LOWERINPUT=2, BOTADDSUB_CARRYSELECT=0, BOTOUTPUT_SELECT=1)
    assert {k: macs[0].get(k, 0) for k in want} == want


def test_build_is_cached():
    """A second build of one design reuses the first (the PE the reference test builds)."""
    text = to_verilog(PE(psum_width=20))
    a = build(text)
    t = (a / ".built").stat().st_mtime
    b = build(text)
    assert a == b and (b / ".built").stat().st_mtime == t


class _Mult(wiring.Component):
    """A MULT18X18D with the given register options on 18-bit operands (full 36-bit product):
    checks the cell model itself, signedness included, beyond the 8-bit PE."""

    def __init__(self, regs: tuple, signed_: int):
        self.regs, self.signed_ = regs, signed_
        super().__init__({"a": In(18), "b": In(18), "p": Out(36)})

    def elaborate(self, platform):
        m = Module()
        names = ("REG_INPUTA_CLK", "REG_INPUTB_CLK", "REG_PIPELINE_CLK", "REG_OUTPUT_CLK")
        ports = {f"i_A{k}": self.a[k] for k in range(18)} | {f"i_B{k}": self.b[k] for k in range(18)}
        ports |= {f"i_C{k}": 0 for k in range(18)} | {f"o_P{k}": self.p[k] for k in range(36)}
        ports |= {f"i_{n}{k}": 0 for n in ("CLK", "CE", "RST") for k in range(1, 4)}
        m.submodules.mult = Instance(
            "MULT18X18D", **{f"p_{n}": ("CLK0" if r else "NONE") for n, r in zip(names, self.regs)},
            i_SIGNEDA=self.signed_, i_SIGNEDB=self.signed_, i_SOURCEA=0, i_SOURCEB=0,
            i_CLK0=ClockSignal(), i_CE0=1, i_RST0=0, **ports)
        return m


@pytest.mark.parametrize("regs,signed_", [
    ((1, 1, 0, 1), 1),                          # the PE's own options; the others: slow tier
    pytest.param((0, 0, 1, 0), 0, marks=pytest.mark.slow),
    pytest.param((1, 0, 1, 1), 1, marks=pytest.mark.slow)])
def test_mult18x18d_model(regs, signed_):
    """The model's product, signedness and latency (one cycle per register on the A path,
    where A and B registers differ) against integer arithmetic."""
    rng = np.random.default_rng(sum(regs) + 7 * signed_)
    n = 300
    a, b = rng.integers(0, 1 << 18, n), rng.integers(0, 1 << 18, n)
    a[:4], b[:4] = (1 << 17), (1 << 17) | 1                   # the most negative operands
    design = to_verilog(_Mult(regs, signed_)) + mult18x18d_model()
    got = np.array([int(h, 16) for h in run_cocotb(design, "sim.tb_mult",
                                                   inputs=dict(a=a, b=b))["p_hex"]], dtype=object)

    def val(v):
        v = int(v)
        return v - (1 << 18) if signed_ and v >> 17 else v
    la, lb = regs[0] + regs[2] + regs[3], regs[1] + regs[2] + regs[3]
    for t in range(max(la, lb) + 1, n):
        want = (val(a[t - la]) * val(b[t - lb])) % (1 << 36)
        assert got[t] == want, (t, got[t], want)
