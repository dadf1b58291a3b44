"""Register slices: pipeline registers for ``lib.stream`` streams and memory ports.

A slice registers ``valid``/``payload`` forward and ``ready`` backward (a skid buffer holds the
one beat that arrives while the output stalls), so no combinational path crosses it and it
still moves one beat per cycle.  Put one between two blocks whose handshake logic would
otherwise chain into one long path (the link's stages, an initiator and the arbiter, the
arbiter and the memory controller).
"""
from __future__ import annotations

from amaranth.hdl import Module, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from hw.memory.memport import MemPortSignature, mem_request_layout

__all__ = ["StreamSlice", "MemPortSlice"]


class StreamSlice(wiring.Component):
    """Stream pipeline register with a skid buffer: registered ``valid``/``payload`` and
    ``ready``, full throughput; cuts combinational paths between stream stages.
    ``empty``: nothing held.

    ``full_rate=False``: no skid buffer (``ready`` is "the register is empty"), so a beat
    every second cycle — for byte streams that never come faster (the host link's stages:
    a byte is ten bit times of at least four clocks), a register of the payload's width less
    in a logic cell of its own per bit on the iCE40."""

    def __init__(self, shape, full_rate: bool = True):
        self.full_rate = full_rate
        super().__init__({"i": In(stream.Signature(shape)), "o": Out(stream.Signature(shape)),
                          "empty": Out(1)})

    def elaborate(self, platform):
        m = Module()
        if not self.full_rate:
            m.d.comb += [self.i.ready.eq(~self.o.valid), self.empty.eq(~self.o.valid)]
            with m.If(self.o.valid & self.o.ready):
                m.d.sync += self.o.valid.eq(0)
            with m.Elif(~self.o.valid):
                m.d.sync += [self.o.payload.eq(self.i.payload), self.o.valid.eq(self.i.valid)]
            return m
        skid_valid = Signal()
        skid = Signal.like(self.i.payload)
        m.d.comb += [self.i.ready.eq(~skid_valid),
                     self.empty.eq(~self.o.valid & ~skid_valid)]
        with m.If(~self.o.valid | self.o.ready):
            with m.If(skid_valid):
                m.d.sync += [self.o.payload.eq(skid), self.o.valid.eq(1), skid_valid.eq(0)]
            with m.Else():
                m.d.sync += [self.o.payload.eq(self.i.payload), self.o.valid.eq(self.i.valid)]
        with m.Elif(self.i.valid & ~skid_valid):
            m.d.sync += [skid.eq(self.i.payload), skid_valid.eq(1)]
        return m


class MemPortSlice(wiring.Component):
    """A :class:`hw.memory.memport.MemPortSignature` port through register slices: ``target`` (the
    initiator connects here) → ``initiator`` (to the memory or arbiter).  Requests and read
    responses each cross one :class:`StreamSlice`, so the port keeps its order and full
    throughput and adds one cycle each way."""

    def __init__(self, signature: MemPortSignature):
        self.port_signature = signature
        super().__init__({"target": In(signature), "initiator": Out(signature)})

    def elaborate(self, platform):
        m = Module()
        sig = self.port_signature
        m.submodules.req = req = StreamSlice(mem_request_layout(sig.addr_width, sig.data_width))
        wiring.connect(m, wiring.flipped(self.target.req), req.i)
        wiring.connect(m, req.o, wiring.flipped(self.initiator.req))
        m.submodules.resp = resp = StreamSlice(sig.data_width)
        wiring.connect(m, wiring.flipped(self.initiator.resp), resp.i)
        wiring.connect(m, resp.o, wiring.flipped(self.target.resp))
        return m
