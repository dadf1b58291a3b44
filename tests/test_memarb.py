"""Memory-port arbiter: two initiators issuing random reads and writes into one block RAM; every
read returns what a Python model of the memory holds at that point, to the initiator that asked."""
import random

from amaranth.hdl import Module
from amaranth.lib.wiring import connect
from amaranth.sim import Simulator

from hw.memory.bram import BRAMTarget
from hw.memory.memarb import MemPortArbiter


def test_two_initiators_random():
    m = Module()
    m.submodules.arb = arb = MemPortArbiter(2, 6, 16)
    m.submodules.ram = ram = BRAMTarget(64, 16)
    connect(m, arb.out, ram.bus)
    rng = random.Random(4)
    # disjoint address halves, so the expected read value does not depend on interleaving
    model = [0] * 64
    log = {0: [], 1: []}
    done = []

    def initiator(k):
        port = arb.bus(k)

        async def tb(ctx):
            lo = 32 * k
            expect = []
            issued = 0
            ctx.set(port.resp.ready, 1)
            pending = None
            while issued < 150 or expect:
                if pending is None and issued < 150 and rng.random() < 0.7:
                    a = lo + rng.randrange(32)
                    if rng.random() < 0.5:
                        v = rng.randrange(1 << 16)
                        pending = {"addr": a, "write": 1, "data": v}
                    else:
                        pending = {"addr": a, "write": 0, "data": 0}
                if pending is not None:
                    ctx.set(port.req.valid, 1)
                    ctx.set(port.req.payload, pending)
                else:
                    ctx.set(port.req.valid, 0)
                ready_resp = rng.random() < 0.8
                ctx.set(port.resp.ready, ready_resp)
                _, _, rq, rv, pv, pd = await ctx.tick().sample(
                    port.req.ready, port.req.valid, port.resp.valid, port.resp.payload)
                if rq and rv:
                    if pending["write"]:
                        model[pending["addr"]] = pending["data"]
                    else:
                        expect.append(model[pending["addr"]])
                    pending = None
                    issued += 1
                if pv and ready_resp:
                    assert expect, "response nobody asked for"
                    log[k].append((pd, expect.pop(0)))
            ctx.set(port.req.valid, 0)
            done.append(k)
        return tb

    sim = Simulator(m)
    sim.add_clock(1e-6)
    sim.add_testbench(initiator(0))
    sim.add_testbench(initiator(1))
    sim.run()
    assert sorted(done) == [0, 1]
    for k in (0, 1):
        assert len(log[k]) > 30
        assert all(got == want for got, want in log[k]), k
