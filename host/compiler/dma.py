"""Cycle model of the DMA unit's transfers between off-chip memory and the chip.

A transfer of ``rows`` rows of ``row_bytes`` contiguous bytes takes ``setup`` cycles, then per
row ``row`` cycles (a new burst: on SDRAM a precharge and activate when the row changes) and
the row's bytes at ``bytes_per_cycle``.  The rates are the memory system's measured ones
(``docs/memory.md``: the SDRAM controller streams 0.974 16-bit words per cycle, a random word
costs about 5.5 cycles; the UP5K's SPRAM moves 16 bits every cycle).  Until the RTL DMA unit
exists this is a model, used by the program emulator and the cost model alike; the DMA's own
counters will replace it where they disagree.
"""
from __future__ import annotations

from dataclasses import dataclass

__all__ = ["DmaTiming", "TIMINGS", "transfer_cycles"]


@dataclass(frozen=True)
class DmaTiming:
    bytes_per_cycle: float       #: sustained rate within a row
    row: int                     #: cycles per row (burst start)
    setup: int                   #: cycles per instruction (fetch of its arguments, first request)


TIMINGS = {
    "sdram": DmaTiming(bytes_per_cycle=2 * 0.974, row=5, setup=8),
    "spram": DmaTiming(bytes_per_cycle=2.0, row=1, setup=4),
    # simulation-only engines (no SoC): assume the ULX3S's SDRAM
    "none": DmaTiming(bytes_per_cycle=2 * 0.974, row=5, setup=8),
}


def transfer_cycles(memory: str, rows: int, row_bytes: int) -> int:
    """Cycles to move ``rows`` rows of ``row_bytes`` bytes on ``memory`` (a configuration's
    ``memory``: "sdram", "spram" or "none")."""
    t = TIMINGS[memory]
    if rows <= 0 or row_bytes <= 0:
        return t.setup
    return t.setup + rows * (t.row + -(-row_bytes * 1000 // int(t.bytes_per_cycle * 1000)))
