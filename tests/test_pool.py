"""hw.engine.pool.MaxPool2x2 against NumPy (Amaranth simulator), with input gaps and back-pressure."""
import numpy as np
import pytest
from amaranth.sim import Simulator

from hw.engine.pool import MaxPool2x2


@pytest.mark.parametrize("h,w", [(4, 6), (5, 7), (2, 2), (1, 4), (6, 1), (3, 10)])
def test_maxpool_2x2(h, w):
    rng = np.random.default_rng(h * 100 + w)
    lanes = 3
    dut = MaxPool2x2(lanes, max_width=10)
    frames = [rng.integers(-128, 128, (h, w, lanes)) for _ in range(2)]
    want = []
    for f in frames:
        hh, ww = h // 2, w // 2
        p = f[:2 * hh, :2 * ww].reshape(hh, 2, ww, 2, lanes).max(axis=(1, 3))
        want += [p[i, j] for i in range(hh) for j in range(ww)]
    got = []

    async def producer(ctx):
        ctx.set(dut.w, w)
        ctx.set(dut.h, h)
        for f in frames:
            for v in f.reshape(-1, lanes):
                while rng.random() < 0.3:
                    ctx.set(dut.i.valid, 0)
                    await ctx.tick()
                ctx.set(dut.i.valid, 1)
                ctx.set(dut.i.payload, [int(a) for a in v])
                await ctx.tick().until(dut.i.ready)
            ctx.set(dut.i.valid, 0)

    async def consumer(ctx):
        while True:
            ctx.set(dut.o.ready, int(rng.random() < 0.6))
            await ctx.tick()

    async def monitor(ctx):
        async for _, _, valid, ready, payload in ctx.tick().sample(dut.o.valid, dut.o.ready,
                                                                   dut.o.payload):
            if valid and ready:
                got.append(np.array([payload[k] for k in range(lanes)]))

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(producer)
    sim.add_testbench(consumer, background=True)
    sim.add_testbench(monitor, background=True)
    sim.run_until(1e-6 * (40 * h * w + 50))
    assert len(got) == len(want)
    for n, (g, wn) in enumerate(zip(got, want)):
        np.testing.assert_array_equal(g, wn, err_msg=f"output {n}")
