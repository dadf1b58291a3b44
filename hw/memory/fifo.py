"""A ``lib.fifo.SyncFIFOBuffered`` whose memory is marked as never reading the word it writes.

The FIFO reads its memory only when it holds a word and writes it only when it is not full, so
its read and write addresses differ whenever both are active.  Marking its memory
:data:`hw.memory.read_reg_ram.NO_RW_CHECK` lets the iCE40 build (``host.synthesis.prepare``)
leave out yosys's read-during-write emulation behind the block RAM (~40 logic cells per FIFO on
the UP5K).  Behaviour is Amaranth's.
"""
from amaranth.lib import fifo

from hw.memory.read_reg_ram import NO_RW_CHECK

__all__ = ["BufferedFIFO"]


class BufferedFIFO(fifo.SyncFIFOBuffered):
    """``SyncFIFOBuffered(width=, depth=)`` with its storage marked; after elaboration
    ``storage`` is that memory (None for depths without one)."""

    storage = None

    def elaborate(self, platform):
        m = super().elaborate(platform)
        if self.depth > 1:
            self.storage = m.submodules.storage
            self.storage.attrs[NO_RW_CHECK] = 1
        return m
