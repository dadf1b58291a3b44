"""UART RX/TX: loop-back and line-level checks against a Python bit model (Amaranth simulator)."""
import random

import pytest
from amaranth.hdl import Module
from amaranth.sim import Simulator

from hw.link.uart import UARTRx, UARTTx, divisor_for
from sim.amsim import stream_get, stream_put


def line_bits(byte, divisor):
    """Samples of an 8N1 frame of ``byte``, one per clock."""
    bits = [0] + [(byte >> i) & 1 for i in range(8)] + [1]
    return [b for b in bits for _ in range(divisor)]


@pytest.mark.parametrize("divisor", [4, 5, 33])
def test_tx_waveform(divisor):
    rng = random.Random(divisor)
    data = [rng.randrange(256) for _ in range(6)]
    dut = UARTTx(divisor)
    seen = []

    async def feed(ctx):
        for b in data:
            await stream_put(ctx, dut.data, b)

    async def watch(ctx):
        # record the line every clock until the transmitter has been idle for a while
        idle = 0
        while idle < 3 * divisor:
            await ctx.tick()
            seen.append(ctx.get(dut.tx))
            idle = idle + 1 if ctx.get(dut.idle) else 0

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(feed, background=True)
    sim.add_testbench(watch)
    sim.run()
    expect = [b for byte in data for b in line_bits(byte, divisor)]
    start = seen.index(0)
    assert seen[start:start + len(expect)] == expect
    assert all(seen[start + len(expect):])


@pytest.mark.parametrize("divisor", [4, 7, 16])
def test_rx_from_bit_model(divisor):
    """Drive the line from the bit model with a mid-frame gap, check bytes and error flags."""
    rng = random.Random(divisor)
    data = [rng.randrange(256) for _ in range(12)]
    dut = UARTRx(divisor)
    got, errors = [], []

    async def drive(ctx):
        for _ in range(5):
            await ctx.tick()
        for k, b in enumerate(data):
            for v in line_bits(b, divisor):
                ctx.set(dut.rx, v)
                await ctx.tick()
            if k == 5:
                # a frame with a low stop bit must be dropped and flagged
                for v in line_bits(0x55, divisor)[:-divisor] + [0] * (2 * divisor) + [1] * divisor:
                    ctx.set(dut.rx, v)
                    await ctx.tick()
            for _ in range(rng.randrange(3)):
                await ctx.tick()

    async def collect(ctx):
        while len(got) < len(data):
            got.append(await stream_get(ctx, dut.data))

    async def errs(ctx):
        async for _clk, _rst, fe in ctx.tick().sample(dut.frame_error):
            if fe:
                errors.append(1)

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(drive, background=True)
    sim.add_testbench(collect)
    sim.add_process(errs)
    sim.run()
    assert got == data
    assert errors == [1]


def test_loopback_and_overrun():
    """TX → RX at divisor 4; a consumer that stalls loses bytes and sees ``overrun``."""
    m = Module()
    m.submodules.tx = tx = UARTTx(4)
    m.submodules.rx = rx = UARTRx(4)
    m.d.comb += rx.rx.eq(tx.tx)
    data = list(range(0, 256, 7))
    got, overruns = [], []

    async def feed(ctx):
        for b in data:
            await stream_put(ctx, tx.data, b)

    done = []

    async def collect(ctx):
        while len(got) < 10:
            got.append(await stream_get(ctx, rx.data))
        # stall for 3 byte times: bytes arriving meanwhile beyond the one held are lost
        for _ in range(3 * 40):
            await ctx.tick()
        quiet = 0
        ctx.set(rx.data.ready, 1)
        while quiet < 100:
            _, _, valid, payload = await ctx.tick().sample(rx.data.valid, rx.data.payload)
            if valid:
                got.append(payload)
            quiet = 0 if (valid or not ctx.get(tx.idle) or not ctx.get(rx.idle)) else quiet + 1

    async def watch(ctx):
        async for _clk, _rst, ov in ctx.tick().sample(rx.overrun):
            if ov:
                overruns.append(1)

    sim = Simulator(m)
    sim.add_clock(1e-6)
    sim.add_testbench(feed, background=True)
    sim.add_testbench(collect)
    sim.add_process(watch)
    sim.run_until(1e-6 * 20000)
    assert got[:10] == data[:10]
    missing = [b for b in data if b not in got]
    # the lost bytes are one contiguous run during the stall, each counted as an overrun
    assert 1 <= len(missing) <= 3 and len(overruns) == len(missing)
    i = data.index(missing[0])
    assert data[i:i + len(missing)] == missing
    assert got == [b for b in data if b not in missing]


def test_divisor_for():
    assert divisor_for(100_000_000, 3_000_000) == 33
    assert divisor_for(48_000_000, 12_000_000) == 4
    with pytest.raises(ValueError):
        divisor_for(10_000_000, 3_000_000)
