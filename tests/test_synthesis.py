"""host.synthesis.undefined_collisions: memories marked ``no_rw_check`` lose yosys's
read-during-write emulation on iCE40, the others keep it."""
import re

import pytest
from amaranth.back import rtlil
from amaranth.hdl import Module
from amaranth.lib import wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from host.synthesis import undefined_collisions
from hw.memory.read_reg_ram import NO_RW_CHECK
from sim.yosys_cells import cell_counts


class _TwoMemories(wiring.Component):
    """Two 256 × 32-bit memories with one write and one synchronous read port each; ``marked``
    says which carry the attribute."""

    def __init__(self, marked):
        self.marked = marked
        ports = {}
        for i in range(2):
            ports |= {f"wa{i}": In(8), f"wd{i}": In(32), f"we{i}": In(1), f"ra{i}": In(8),
                      f"rd{i}": Out(32)}
        super().__init__(ports)

    def elaborate(self, platform):
        m = Module()
        for i in range(2):
            mem = Memory(shape=32, depth=256, init=[],
                         attrs={NO_RW_CHECK: 1} if i in self.marked else None)
            m.submodules[f"mem{i}"] = mem
            w, r = mem.write_port(), mem.read_port()
            m.d.comb += [w.addr.eq(getattr(self, f"wa{i}")), w.data.eq(getattr(self, f"wd{i}")),
                         w.en.eq(getattr(self, f"we{i}")), r.addr.eq(getattr(self, f"ra{i}")),
                         getattr(self, f"rd{i}").eq(r.data)]
        return m


def _ffs(text):
    cells = cell_counts(text, "ice40")
    assert cells.get("SB_RAM40_4K") == 4, cells           # both memories in block RAM
    return sum(n for c, n in cells.items() if c.startswith("SB_DFF"))


@pytest.mark.parametrize("marked", [(), (0,), (0, 1)])
def test_only_marked_memories_lose_the_emulation(marked):
    text = rtlil.convert(_TwoMemories(marked), name="top")
    out = undefined_collisions(text)
    masks = re.findall(r"COLLISION_X_MASK (\S+)", out)
    assert sorted(masks) == sorted(["1'1"] * len(marked) + ["1'0"] * (2 - len(marked)))
    before, after = _ffs(text), _ffs(out)
    assert before >= 2 * 32                  # the emulation: at least the written word, twice
    # each marked memory's emulation registers are gone, the unmarked one's stay
    assert after == before * (2 - len(marked)) // 2


def test_unmarked_text_is_unchanged():
    text = rtlil.convert(_TwoMemories(()), name="top")
    assert undefined_collisions(text) == text
