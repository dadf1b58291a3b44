"""The accelerator core a SoC plugs in as its engine: the controller and the engine it drives.

``ctrl`` is the link's ``EngineControlSignature`` (START with the program's byte address,
busy/done/error, the counters of ``hw.soc.controller.PERF``); ``mem`` is the SoC's memory port
(``hw.memory.memport``), which the link SoC shares between the host link and this core.
"""
from amaranth.hdl import Module
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from hw.engine.engine import Engine
from hw.link.command import EngineControlSignature
from hw.memory.memport import MemPortSignature
from hw.soc.controller import PERF, Controller

__all__ = ["Accelerator"]


class Accelerator(wiring.Component):
    """Controller + engine for the accelerator configuration ``acfg``
    (``hw.configs.AcceleratorConfig``) on a memory port of ``mem_addr_width``-bit word
    addresses and ``mem_width``-bit words."""

    def __init__(self, acfg, mem_addr_width: int, mem_width: int = 32):
        self.acfg = acfg
        self.engine = Engine(acfg.engine)
        e = self.engine
        self.controller = Controller(acfg.engine, mem_addr_width, mem_width, e.ld_width,
                                     e.desc_layout, acfg.engine.cols * 8,
                                     act_bytes=acfg.act_bytes, vector=acfg.vector,
                                     desc_buffers=acfg.desc_buffers)
        super().__init__({"ctrl": In(EngineControlSignature(len(PERF),
                                                            self.controller.perf_inc_bits)),
                          "mem": Out(MemPortSignature(mem_addr_width, mem_width))})

    def elaborate(self, platform):
        m = Module()
        m.submodules.engine = e = self.engine
        m.submodules.controller = c = self.controller
        wiring.connect(m, wiring.flipped(self.ctrl), c.ctrl)
        wiring.connect(m, c.mem, wiring.flipped(self.mem))
        m.d.comb += [e.ld_en.eq(c.ld_en), e.ld_sel.eq(c.ld_sel), e.ld_addr.eq(c.ld_addr),
                     e.ld_data.eq(c.ld_data), e.desc.eq(c.desc), e.start.eq(c.start),
                     c.busy.eq(e.busy), e.rd_addr.eq(c.rd_addr), c.rd_data.eq(e.rd_data)]
        return m
