"""hw.link.counter_bank: random increments, clears and reads against the cycle-level model; the
counts cross the 16-bit halves and wrap at 2^32 (preloaded near it)."""
import numpy as np
import pytest

from hw.link.counter_bank import CounterBank, CounterBankModel
from sim.amsim import run


def _run(n, inc_bits, cycles, seed, start=None, p_clear=0.01, quiet_every=300):
    rng, rrng = np.random.default_rng(seed), np.random.default_rng(seed + 100)
    dut = CounterBank(n, inc_bits)
    model = CounterBankModel(n, start)
    reads = []                 # (counter, first cycle, last cycle, value)

    async def drive(ctx):
        if start is not None:
            for c, v in enumerate(start):
                ctx.set(dut.mem.data[2 * c], v & 0xFFFF)
                ctx.set(dut.mem.data[2 * c + 1], v >> 16)
        for t in range(cycles):
            quiet = (t // quiet_every) % 3 == 2        # stretches without events: reads exact
            inc = [0] * n if quiet else [int(rng.integers(0, 2 ** inc_bits)) *
                                         int(rng.random() < 0.7) for _ in range(n)]
            clear = [0] * n if quiet else [int(rng.random() < p_clear) for _ in range(n)]
            for c in range(n):
                ctx.set(dut.inc[c], inc[c])
            ctx.set(dut.clear, sum(b << c for c, b in enumerate(clear)))
            model.step(inc, clear)
            await ctx.tick()
        ctx.set(dut.inc.as_value(), 0)
        ctx.set(dut.clear, 0)

    async def read(ctx):
        t = 0
        while t < cycles - 4 * n - 8:
            c = int(rrng.integers(0, n))
            ctx.set(dut.req.valid, 1)
            ctx.set(dut.req.payload, c)
            t0 = t
            while True:
                *_, ready = await ctx.tick().sample(dut.req.ready)
                t += 1
                if ready:
                    break
            ctx.set(dut.req.valid, 0)
            value = None
            while True:
                *_, lo, hi, half = await ctx.tick().sample(dut.rd_lo, dut.rd_hi, dut.rd_data)
                t += 1
                if lo:
                    value = half
                if hi:
                    assert value is not None, "the high half came first"
                    value |= half << 16
                    break
            assert t - t0 <= 2 * n + 4, "a read waited longer than a sweep"
            reads.append((c, t0, t, value))
            for _ in range(int(rrng.integers(0, 5))):
                await ctx.tick()
                t += 1

    run(dut, drive, read)
    assert len(reads) > cycles // (4 * n + 8)
    for c, t0, t1, value in reads:
        window = [model.history[t][c] for t in range(t0, min(t1, len(model.history)))]
        assert value in window, (c, t0, t1, value, window[:3], window[-3:])
    return reads, model


@pytest.mark.parametrize("n,inc_bits,seed", [(1, 1, 1), (6, 1, 2), (13, 2, 3), (9, 6, 4)])
def test_counts_match_the_model(n, inc_bits, seed):
    _run(n, inc_bits, 1500, seed)


def test_counts_cross_the_halves_and_wrap():
    near = [0xFFFF_FF00, 0x0000_FFF0, 0x1234_FFFF, 0xFFFF_FFFF]
    reads, model = _run(4, 8, 900, 7, start=near, p_clear=0.0)
    # each counter went past its boundary (2^16 or 2^32) while being read
    wrapped = {c for c, *_, v in reads if v < near[c]}
    crossed = {c for c, *_, v in reads if (v >> 16) != (near[c] >> 16)}
    assert wrapped >= {0, 3} and crossed == {0, 1, 2, 3}


def test_a_clear_drops_its_cycles_increment_and_keeps_the_others():
    dut = CounterBank(3, 2)
    got = {}

    async def tb(ctx):
        ctx.set(dut.inc.as_value(), 0b11_10_01)           # +1, +2, +3 every cycle
        for _ in range(40):
            await ctx.tick()
        ctx.set(dut.clear, 0b010)
        await ctx.tick()
        ctx.set(dut.clear, 0)
        ctx.set(dut.inc.as_value(), 0)
        for _ in range(20):
            await ctx.tick()
        for c in range(3):
            ctx.set(dut.req.valid, 1)
            ctx.set(dut.req.payload, c)
            await ctx.tick()
            ctx.set(dut.req.valid, 0)
            while not ctx.get(dut.rd_lo):
                await ctx.tick()
            lo = ctx.get(dut.rd_data)
            await ctx.tick()
            assert ctx.get(dut.rd_hi)
            got[c] = lo | ctx.get(dut.rd_data) << 16
            await ctx.tick()

    run(dut, tb)
    assert got == {0: 41, 1: 0, 2: 123}
