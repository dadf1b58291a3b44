"""hw.stream_slice.StreamSlice, both kinds: every beat through once and in order under random
valid/ready; a beat a cycle with the skid buffer, one every second cycle without."""
import numpy as np
import pytest

from hw.stream_slice import StreamSlice
from sim.amsim import run


def _through(full_rate, seed, p_valid, p_ready, n=400):
    rng = np.random.default_rng(seed)
    dut = StreamSlice(16, full_rate=full_rate)
    sent, got = [], []
    cycles = [0]

    async def tb(ctx):
        nxt = 0
        while len(got) < n:
            offer = nxt < n and rng.random() < p_valid
            ctx.set(dut.i.valid, offer)
            ctx.set(dut.i.payload, nxt * 7 % 65536)
            ctx.set(dut.o.ready, rng.random() < p_ready)
            took = offer and ctx.get(dut.i.ready)
            if ctx.get(dut.o.valid) and ctx.get(dut.o.ready):
                got.append(ctx.get(dut.o.payload))
            if took:
                sent.append(nxt * 7 % 65536)
                nxt += 1
            await ctx.tick()
            cycles[0] += 1
            assert cycles[0] < 20 * n, "the slice stopped moving"

    run(dut, tb)
    assert got == sent[:len(got)] and len(got) == n
    return cycles[0]


@pytest.mark.parametrize("full_rate", [True, False])
@pytest.mark.parametrize("seed,p_valid,p_ready", [(1, 0.5, 0.5), (2, 0.9, 0.3), (3, 0.3, 0.9)])
def test_every_beat_once_in_order(full_rate, seed, p_valid, p_ready):
    _through(full_rate, seed, p_valid, p_ready)


@pytest.mark.parametrize("full_rate,per_beat", [(True, 1), (False, 2)])
def test_throughput(full_rate, per_beat):
    cycles = _through(full_rate, 4, 1.0, 1.0, n=200)
    assert per_beat * 200 <= cycles <= per_beat * 200 + 3
