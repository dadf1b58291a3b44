"""The board's host link (hw.soc.top.BoardLink: the link gateware with register slices) on the
board memories: frames go in and out at the UART line level (Amaranth simulator).

* iCEBreaker memory: SPRAM (behavioural), 32-bit words;
* ULX3S memory: the SDRAM controller in burst-2 mode (32-bit words) on the timing-checking
  SDRAM model.
WRITE then READ of random bytes at a random address must return the bytes; INFO must describe
the board memory; STATUS must carry the memory status (the SDRAM read calibration) to the host."""
import random

import pytest
from amaranth.hdl import Module
from amaranth.lib import wiring
from amaranth.sim import Simulator

from host.runtime.protocol import (Deframer, DeviceInfo, Reply, Status, frame, parse_status,
                                   req_info, req_read, req_status, req_write)
from hw.memory.sdram import SDRAMController
from hw.memory.spram import SPRAMMemory
from hw.soc.top import BoardLink
from sim.sdram_model import SDRAMModel, attach

DIV = 4
#: a calibration result: position 2 in use, positions 1 and 2 passed, ok, done
MEM_STATUS = 2 | (0b0110 << 4) | (1 << 12) | (1 << 13)


def line_bytes(data: bytes):
    """UART 8N1 bit sequence for ``data``."""
    for b in data:
        yield 0
        for i in range(8):
            yield (b >> i) & 1
        yield 1


def run_link(memory: str, seed: int):
    rng = random.Random(seed)
    m = Module()
    if memory == "spram":
        clk = 16e6
        m.submodules.mem = mem = SPRAMMemory(32, behavioural=True)
        mem_bytes = mem.depth * 4
        ready = None
    else:
        clk = 25e6
        m.submodules.mem = mem = SDRAMController(clk, burst_length=2, extra_read_latency=2)
        mem_bytes = 1 << 25
        ready = mem.init_done
    sig = mem.bus.signature.flip()
    link = BoardLink(clk_freq=clk, baud=int(clk // DIV), mem_signature=sig, board=memory,
                     mem_bytes=mem_bytes, version_hash=0x1234)
    m.submodules.link = link
    wiring.connect(m, link.bus, mem.bus)
    sim = Simulator(m)
    sim.add_clock(1 / clk)
    if memory == "sdram":
        attach(sim, mem.pins, SDRAMModel(clk, seed=seed), out_delay=1, in_delay=1)

    addr = rng.randrange(0, mem_bytes // 4 - 64) * 4
    payload = bytes(rng.getrandbits(8) for _ in range(rng.randrange(4, 96, 4)))
    requests = [req_write(1, addr, payload), req_read(2, addr, len(payload)), req_info(3),
                req_status(4)]
    replies = []

    async def host(ctx):
        ctx.set(link.mem_status, MEM_STATUS)
        if ready is not None:
            await ctx.tick().until(ready)
        deframer = Deframer()
        for req in requests:
            for bit in line_bytes(frame(req)):
                ctx.set(link.rx, bit)
                await ctx.tick().repeat(DIV)
            # receive until one reply frame is complete
            got = []
            prev = 1
            waited = 0
            while not got:
                waited += 1
                assert waited < 200_000, "no reply"
                _, _, tx = await ctx.tick().sample(link.tx)
                if prev == 1 and tx == 0:                  # start bit
                    await ctx.tick().repeat(DIV // 2)
                    byte = 0
                    for i in range(8):
                        await ctx.tick().repeat(DIV)
                        byte |= ctx.get(link.tx) << i
                    await ctx.tick().repeat(DIV)
                    got = deframer.feed(bytes([byte]))
                    tx = 1
                prev = tx
            body, err = got[0]
            assert err is None
            replies.append(Reply.parse(body))

    sim.add_testbench(host)
    sim.run()
    return replies, addr, payload, mem_bytes


@pytest.mark.parametrize("memory,seed", [("spram", 1), ("sdram", 2)])
def test_link_write_read_info(memory, seed):
    replies, addr, payload, mem_bytes = run_link(memory, seed)
    assert len(replies) == 4, replies
    w, r, i, st = replies
    assert (w.tag, w.status) == (1, Status.OK)
    assert (r.tag, r.status) == (2, Status.OK)
    assert r.payload == payload
    info = DeviceInfo.unpack(i.payload)
    assert info.board == memory and info.mem_bytes == mem_bytes and info.word_bytes == 4
    assert info.version_hash == 0x1234
    cal = parse_status(st.payload, info.n_perf)["sdram_cal"]
    assert cal == {"done": True, "ok": True, "position": 2, "passed": [1, 2]}
