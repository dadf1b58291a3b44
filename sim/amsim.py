"""Helpers for Amaranth-simulator unit tests of stream components (async testbenches)."""
from amaranth.sim import Simulator


async def stream_put(ctx, s, payload):
    """Offer one beat on stream ``s`` and wait for it to be taken."""
    ctx.set(s.valid, 1)
    ctx.set(s.payload, payload)
    await ctx.tick().until(s.ready)
    ctx.set(s.valid, 0)


async def stream_get(ctx, s):
    """Take one beat from stream ``s``."""
    ctx.set(s.ready, 1)
    (payload,) = await ctx.tick().sample(s.payload).until(s.valid)
    ctx.set(s.ready, 0)
    return payload


def run(dut, *testbenches, processes=(), vcd=None, deadline=None):
    """Simulate ``dut`` with a 1 MHz clock on ``sync`` until all testbenches return."""
    sim = Simulator(dut)
    sim.add_clock(1e-6)
    for tb in testbenches:
        sim.add_testbench(tb)
    for p in processes:
        sim.add_process(p)
    if vcd:
        with sim.write_vcd(vcd):
            sim.run_until(deadline) if deadline else sim.run()
    elif deadline:
        sim.run_until(deadline)
    else:
        sim.run()
