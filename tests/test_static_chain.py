"""hw.engine.static_chain: the delay chain and per-consumer copies of a static value; on ECP5 the
copies must survive synthesis as separate registers (yosys merges equal plain registers)."""
import numpy as np
from amaranth.hdl import Module, Signal, signed

from hw.engine.static_chain import own_copy, static_chain
from sim.amsim import run
from sim.ecp5_cells import ecp5_cell_counts


class _Ecp5:
    family = "ecp5"


def _copies(platform):
    m = Module()
    x = Signal(signed(9))
    outs = [own_copy(m, x, f"copy{k}", platform) for k in range(3)]
    chain = static_chain(m, x, 4, "chain")
    return m, x, outs, chain


def test_copies_and_chain_delay():
    m, x, outs, chain = _copies(None)
    values = np.random.default_rng(5).integers(-256, 256, 40)
    seen = []

    async def tb(ctx):
        for v in values:
            ctx.set(x, int(v))
            await ctx.tick()
            seen.append(([ctx.get(o) for o in outs], [ctx.get(c) for c in chain]))

    run(m, tb)
    for t, (copies, stages) in enumerate(seen):
        assert copies == [values[t]] * 3                   # one cycle late, sign kept
        for k, s in enumerate(stages):                     # stage k: k + 1 cycles late
            assert s == (values[t - k] if t >= k else 0)


def test_copies_survive_synthesis_on_ecp5():
    """Three copies of a 9-bit value: 27 flip-flops on ECP5; plain registers merge into 9."""
    for platform, want in ((_Ecp5(), 27), (None, 9)):
        m = Module()
        x = Signal(signed(9))
        outs = [own_copy(m, x, f"copy{k}", platform) for k in range(3)]
        assert ecp5_cell_counts(m, platform=platform, ports=[x] + outs)["TRELLIS_FF"] == want
