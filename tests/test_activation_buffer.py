"""The activation buffer in front of the memory port (``hw.soc.activation_buffer``): random
reads and writes to both sides, the off-chip side answering several cycles later than the
buffer and stalling at random; every read returns what a Python model holds, in request order,
and the traffic strobes count each side's words."""
import random
from collections import deque

from amaranth.sim import Simulator

from hw.soc.activation_buffer import ActivationBuffer

AW, MAW, W, DEPTH = 12, 8, 32, 64
ON = 1 << (AW - 1)


def _offchip(dut, words: dict, latency: int, ready):
    """The off-chip side of ``dut`` holding ``words``: answers each read ``latency`` cycles
    later, in order, and takes a request on the cycles ``ready()`` allows."""
    async def memory(ctx):
        queue, cycle = deque(), 0
        while True:
            head = queue[0] if queue and queue[0][0] <= cycle else None
            ctx.set(dut.mem.resp.valid, head is not None)
            ctx.set(dut.mem.resp.payload, head[1] if head else 0)
            take = ready()
            ctx.set(dut.mem.req.ready, take)
            _, _, rv, req, rr = await ctx.tick().sample(dut.mem.req.valid, dut.mem.req.payload,
                                                        dut.mem.resp.ready)
            if head is not None and rr:
                queue.popleft()
            if rv and take:
                if req.write:
                    words[req.addr] = req.data
                else:
                    queue.append((cycle + latency, words.get(req.addr, 0)))
            cycle += 1
    return memory


def test_random_traffic_on_both_sides():
    dut = ActivationBuffer(DEPTH, AW, MAW, W)
    rng = random.Random(9)
    ops = []
    for _ in range(600):
        # runs of a few accesses on one side, as the DMA's patterns make them
        side = ON if rng.random() < 0.5 else 0
        for _ in range(rng.randrange(1, 6)):
            a = side | rng.randrange(DEPTH if side else 1 << MAW)
            ops.append((a, rng.random() < 0.4, rng.getrandbits(W)))
    model = {}
    want = []
    for a, write, d in ops:
        if write:
            model[a] = d
        else:
            want.append(model.get(a, 0))
    got, counts = [], {"offchip_read": 0, "offchip_write": 0, "onchip_read": 0,
                       "onchip_write": 0}
    offchip = {}

    async def initiator(ctx):
        i = 0
        for _ in range(20 * len(ops)):                 # a lost response must not hang the test
            if i == len(ops) and len(got) >= len(want):
                break
            a, write, d = ops[i] if i < len(ops) else (0, 0, 0)
            ctx.set(dut.bus.req.valid, i < len(ops))
            ctx.set(dut.bus.req.payload, {"addr": a, "write": write, "data": d})
            ready = rng.random() < 0.8
            ctx.set(dut.bus.resp.ready, ready)
            _, _, rq, rv, pv, pd, *strobes = await ctx.tick().sample(
                dut.bus.req.ready, dut.bus.req.valid, dut.bus.resp.valid, dut.bus.resp.payload,
                *(getattr(dut, k) for k in counts))
            if rq and rv:
                i += 1
            if pv and ready:
                got.append(pd)
            for k, s in zip(counts, strobes):
                counts[k] += s

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(initiator)
    sim.add_process(_offchip(dut, offchip, 6, lambda: rng.random() < 0.7))
    sim.run()
    assert got == want
    for side, on in (("offchip", False), ("onchip", True)):
        assert counts[f"{side}_read"] == sum(1 for a, w, _ in ops if not w and (a >= ON) == on)
        assert counts[f"{side}_write"] == sum(1 for a, w, _ in ops if w and (a >= ON) == on)


def test_wide_port_and_bus_see_the_same_bytes():
    """Banks side by side: phases of ``bus`` traffic (buffer and off-chip sides) alternate with
    phases on the wide port (a row read or written per cycle, back to back), as the
    controller's instructions use them; every read — a bus word or a whole row — returns what
    a model of the buffer's words holds, whichever port wrote them."""
    N = 4
    dut = ActivationBuffer(DEPTH, AW, MAW, W, wide=N)
    rng = random.Random(4)
    rows = DEPTH // N
    model = [0] * DEPTH                                # the buffer's bus words
    offchip = {}

    async def initiator(ctx):
        ctx.set(dut.bus.resp.ready, 1)
        for _ in range(40):
            # a phase on the bus: requests back to back, all responses before the next phase
            ops = []
            for _ in range(rng.randrange(1, 12)):
                on = rng.random() < 0.7
                a = (ON | rng.randrange(DEPTH)) if on else rng.randrange(1 << MAW)
                ops.append((a, rng.random() < 0.5, rng.getrandbits(W)))
            want = []
            for a, write, d in ops:
                if a & ON:
                    if write:
                        model[a & ~ON] = d
                    else:
                        want.append(model[a & ~ON])
                elif write:
                    pass
                else:
                    want.append(None)                  # off-chip: checked by the other test
            got, i = [], 0
            for _ in range(50 * len(ops)):
                if i == len(ops) and len(got) == len(want):
                    break
                a, write, d = ops[i] if i < len(ops) else (0, 0, 0)
                ctx.set(dut.bus.req.valid, i < len(ops))
                ctx.set(dut.bus.req.payload, {"addr": a, "write": write, "data": d})
                _, _, rq, pv, pd = await ctx.tick().sample(dut.bus.req.ready,
                                                           dut.bus.resp.valid,
                                                           dut.bus.resp.payload)
                i += rq and i < len(ops)
                if pv:
                    got.append(pd)
            ctx.set(dut.bus.req.valid, 0)
            assert len(got) == len(want)
            assert [g for g, w in zip(got, want) if w is not None] == \
                [w for w in want if w is not None]
            # a phase on the wide port: writes, or reads answered the next cycle
            if rng.random() < 0.5:
                for _ in range(rng.randrange(1, 8)):
                    r, d = rng.randrange(rows), rng.getrandbits(W * N)
                    for b in range(N):
                        model[r * N + b] = (d >> (W * b)) & ((1 << W) - 1)
                    ctx.set(dut.wide_addr, r)
                    ctx.set(dut.wide_wdata, d)
                    ctx.set(dut.wide_we, 1)
                    await ctx.tick()
                ctx.set(dut.wide_we, 0)
            else:
                reads = [rng.randrange(rows) for _ in range(rng.randrange(1, 8))]
                seen = []
                lat = ActivationBuffer.WIDE_LATENCY
                for r in reads + [None] * lat:
                    ctx.set(dut.wide_re, r is not None)
                    ctx.set(dut.wide_addr, r or 0)
                    _, _, d = await ctx.tick().sample(dut.wide_rdata)
                    seen.append(d)
                ctx.set(dut.wide_re, 0)
                # the data of the read issued in a cycle appears WIDE_LATENCY cycles later
                for r, d in zip(reads, seen[lat:]):
                    assert d == sum(model[r * N + b] << (W * b) for b in range(N))

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(initiator)
    sim.add_process(_offchip(dut, offchip, 3, lambda: True))
    sim.run()
