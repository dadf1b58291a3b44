"""cocotb benches for the link SoC (``hw.soc.link_soc.SimLinkTop``) under Verilator.

* ``serve``: the simulated device behind ``sim.link_sim.SimDevice``.  Connects to the host's
  socket (``BLOCKFUSE_LINK_PORT``) and moves bytes between it and the host-side UART of the top.
  While nothing is in flight and the host sends nothing, simulated time stands still.
* ``wire``: offline run for tests: sends the bytes of ``wire.bin`` in ``BLOCKFUSE_LINK_DIR``
  (with idle gaps listed in ``gaps.json``), records every byte the SoC sends and the simulated
  time, and writes ``out.bin`` and ``stats.json``.  ``BLOCKFUSE_LINK_WAIT=1`` makes it
  stop-and-wait: each chunk is sent only after the reply to the previous one arrived.

The simulated top makes its own clock (``sim.runner.self_clocked_top``); the benches only wait
for its edges.
"""
from __future__ import annotations

import json
import os
import select
import socket
from pathlib import Path

import cocotb
from cocotb.simtime import get_sim_time
from cocotb.triggers import ClockCycles, ReadOnly, RisingEdge, Timer

PERIOD_NS = 10


class Port:
    """Byte exchange with the top's ``h_in``/``h_out`` streams."""

    def __init__(self, dut):
        self.dut = dut
        self.divisor = int(os.environ.get("BLOCKFUSE_LINK_DIVISOR", "4"))
        self.byte_cycles = 10 * self.divisor

    async def reset(self):
        d = self.dut
        d.rst.value = 1
        d.h_in__valid.value = 0
        d.h_out__ready.value = 0
        await ClockCycles(d.clk, 3)
        d.rst.value = 0
        await RisingEdge(d.clk)

    async def exchange(self, pending: bytearray, out: bytearray, limit: int | None = None):
        """Cycle by cycle: push bytes of ``pending`` (while the host FIFO takes them) and pull
        every byte the host UART received into ``out``.  Returns when neither can move."""
        d = self.dut
        d.h_out__ready.value = 1
        pushed = 0
        while True:
            push = bool(pending) and (limit is None or pushed < limit)
            if push:
                d.h_in__payload.value = pending[0]
            d.h_in__valid.value = int(push)
            await ReadOnly()
            took = push and bool(d.h_in__ready.value)
            got = bool(d.h_out__valid.value)
            byte = int(d.h_out__payload.value) if got else None
            await RisingEdge(d.clk)
            if took:
                del pending[0]
                pushed += 1
            if got:
                out.append(byte)
                self.t_last_out = get_sim_time("ns")
            if not took and not got:
                # never leave ready high: bytes must not be consumed outside this loop
                d.h_in__valid.value = 0
                d.h_out__ready.value = 0
                return

    async def quiet(self) -> bool:
        await ReadOnly()
        q = bool(self.dut.quiet.value)
        await RisingEdge(self.dut.clk)
        return q

    async def run(self, byte_times: int):
        await Timer(byte_times * self.byte_cycles * PERIOD_NS, unit="ns")
        await RisingEdge(self.dut.clk)


@cocotb.test()
async def serve(dut):
    port = Port(dut)
    await port.reset()
    sock = socket.create_connection(("127.0.0.1", int(os.environ["BLOCKFUSE_LINK_PORT"])))
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.setblocking(False)
    stop_after = int(os.environ.get("BLOCKFUSE_LINK_STOP_AFTER", "-1"))
    sent = 0
    pending, out = bytearray(), bytearray()
    closed = False
    while not closed:
        try:
            data = sock.recv(1 << 16)
            if not data:
                closed = True
            pending += data
        except BlockingIOError:
            pass
        await port.exchange(pending, out)
        if out:
            if stop_after >= 0:
                room = max(0, stop_after - sent)
                del out[room:]
            try:
                sock.setblocking(True)
                sock.sendall(out)
                sock.setblocking(False)
            except OSError:
                closed = True
            sent += len(out)
            out.clear()
        if closed:
            break
        if not pending and await port.quiet():
            # nothing in flight: wait for the host without advancing simulated time
            r, _, _ = select.select([sock], [], [], 0.5)
            continue
        await port.run(16)
    sock.close()


@cocotb.test()
async def wire(dut):
    """Offline traffic run; see the module docstring."""
    port = Port(dut)
    await port.reset()
    wdir = Path(os.environ["BLOCKFUSE_LINK_DIR"])
    chunks = [bytes.fromhex(c) for c in json.loads((wdir / "chunks.json").read_text())]
    expect_replies = json.loads((wdir / "expect.json").read_text())  # replies per chunk
    wait = os.environ.get("BLOCKFUSE_LINK_WAIT") == "1"
    budget_ns = float(os.environ.get("BLOCKFUSE_LINK_BUDGET_NS", "inf"))
    out = bytearray()
    t_start = get_sim_time("ns")
    port.t_last_out = t_start
    pending = bytearray()
    replies_seen = 0
    want = 0
    idle_rounds = 0
    for k, chunk in enumerate(chunks):
        pending += chunk
        want += expect_replies[k]
        if not wait and k + 1 < len(chunks):
            # keep the host FIFO topped up; never wait for replies
            while len(pending) > 128:
                await port.exchange(pending, out)
                await port.run(8)
            continue
        idle_rounds = 0
        while pending or out.count(0) < want:
            assert get_sim_time("ns") - t_start < budget_ns, \
                f"link hung: chunk {k}, {out.count(0)} of {want} replies"
            await port.exchange(pending, out)
            if not pending and await port.quiet():
                idle_rounds += 1
                if idle_rounds > 3:
                    break        # nothing more is coming
            await port.run(1 if wait else 4)
    # drain whatever is still in flight
    for _ in range(50):
        await port.exchange(pending, out)
        if await port.quiet():
            break
        await port.run(4)
    t_end = port.t_last_out
    (wdir / "out.bin").write_bytes(bytes(out))
    (wdir / "stats.json").write_text(json.dumps({
        "sim_ns": t_end - t_start, "period_ns": PERIOD_NS, "divisor": port.divisor,
        "bit_times": (t_end - t_start) / (PERIOD_NS * port.divisor)}))
