"""hw.engine.line_buffer.LineBuffer against NumPy windows of the zero-point-padded map (Amaranth sim),
with random back-pressure on the output and gaps on the input."""
import numpy as np
import pytest
from amaranth.sim import Simulator

from hw.engine.line_buffer import LineBuffer

MAX_W, MAX_K = 12, 7


def windows(x, k, s, pads, zp):
    t, l, b, r = pads
    xp = np.pad(x, ((t, b), (l, r)), constant_values=zp)
    ho, wo = (xp.shape[0] - k) // s + 1, (xp.shape[1] - k) // s + 1
    return [xp[oy * s:oy * s + k, ox * s:ox * s + k] for oy in range(ho) for ox in range(wo)]


CASES = [  # (h, w, k, stride, pads)
    (5, 6, 3, 1, (1, 1, 1, 1)),
    (7, 9, 3, 2, (1, 0, 0, 1)),
    (1, 1, 3, 1, (1, 1, 1, 1)),          # 1×1 map: all padding but the centre
    (9, 12, 7, 2, (3, 3, 3, 3)),          # 7×7 stride 2 at full width
    (6, 5, 1, 1, (0, 0, 0, 0)),          # 1×1 kernel
    (8, 7, 5, 1, (2, 0, 2, 1)),          # asymmetric padding
    (8, 8, 2, 2, (0, 0, 0, 0)),          # 2×2 stride 2, rows left over at the bottom
    (4, 3, 7, 1, (3, 3, 3, 3)),          # kernel larger than the map
]


@pytest.mark.parametrize("case", range(len(CASES)))
def test_line_buffer_windows(case):
    h, w, k, s, pads = CASES[case]
    rng = np.random.default_rng(50 + case)
    dut = LineBuffer(MAX_W, MAX_K, width=8)
    frames = [rng.integers(0, 256, (h, w)) for _ in range(2)]     # two frames back to back
    zp = int(rng.integers(0, 256))
    want = [wi for f in frames for wi in windows(f, k, s, pads, zp)]
    got = []

    async def producer(ctx):
        ctx.set(dut.desc, {"h": h, "w": w, "k": k, "stride": s, "pad_t": pads[0],
                           "pad_l": pads[1], "pad_b": pads[2], "pad_r": pads[3], "zp": zp})
        for f in frames:
            ctx.set(dut.start, 1)
            await ctx.tick()
            ctx.set(dut.start, 0)
            for v in f.ravel():
                while rng.random() < 0.3:                      # input gaps
                    ctx.set(dut.i.valid, 0)
                    await ctx.tick()
                ctx.set(dut.i.valid, 1)
                ctx.set(dut.i.payload, int(v))
                await ctx.tick().until(dut.i.ready)
            ctx.set(dut.i.valid, 0)
            while ctx.get(dut.busy):
                await ctx.tick()

    async def consumer(ctx):
        while True:
            ctx.set(dut.o.ready, int(rng.random() < 0.7))   # random back-pressure
            await ctx.tick()

    async def monitor(ctx):
        async for clk_edge, rst, valid, ready, payload in ctx.tick().sample(
                dut.o.valid, dut.o.ready, dut.o.payload):
            if valid and ready:
                got.append(np.array([[payload[ky][kx] for kx in range(k)] for ky in range(k)]))
            if len(got) >= len(want):
                break

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(producer)
    sim.add_testbench(consumer, background=True)
    sim.add_testbench(monitor)
    sim.run_until(2e-6 * (len(want) * 4 + 200 + 10 * sum(f.size for f in frames)))
    assert len(got) == len(want), f"{len(got)} windows, want {len(want)}"
    for n, (g, wnt) in enumerate(zip(got, want)):
        np.testing.assert_array_equal(g, wnt, err_msg=f"window {n}")
