"""Cycle model of the controller: its instruction fetches and its DMA unit's transfers between
the memories and the chip.

A transfer of ``rows`` rows of ``row_bytes`` contiguous bytes in whole target words of
``word_bytes`` takes ``setup`` cycles, then per row ``row`` cycles (a new burst: on SDRAM a
precharge and activate when the row changes) and the row's bytes at ``bytes_per_cycle``, and
``per_word`` cycles per target word (a STORE reads each word of the engine's output memory
before it writes it out: two cycles where the memory takes a word per cycle).  Each
instruction first costs ``fetch`` cycles: its 32 bytes read from off-chip memory, decode and
dispatch.

The figures are measured on the whole simulated SoC of each board configuration (the board's
SDRAM controller with the timing-checking chip model, the iCEBreaker's SPRAM target, the
activation buffer): 16 copies of one LOAD or STORE shape per program, the controller's
``dma_cycles`` per instruction, and its ``cycles`` beyond them (``docs/memory.md``,
"The DMA's rates").
"""
from __future__ import annotations

from dataclasses import dataclass

from hw.engine.requant import RequantSerial

__all__ = ["Rate", "Word", "DmaTiming", "TIMINGS", "WIDE_SETUP", "transfer_cycles", "fetch_cycles",
           "pool_cycles", "gap_cycles"]


@dataclass(frozen=True)
class Rate:
    bytes_per_cycle: float       #: sustained rate within a row
    row: int                     #: cycles per row (burst start)
    setup: int                   #: cycles per instruction (first request, last response)
    per_word: int = 0            #: cycles per target word (a STORE's read of the output memory)


@dataclass(frozen=True)
class Word:
    """The vector unit's accesses of map words: GAP reads one map word (its memory words back
    to back), waits for the last and only then asks for the next; POOL asks for all the taps of
    an output pixel back to back and waits once per pixel."""
    latency: int                 #: cycles from the first request to the first response
    per_word: float              #: cycles per memory word read back to back
    write_latency: int           #: cycles a map word's write costs besides its memory words
    write_per_word: int


@dataclass(frozen=True)
class DmaTiming:
    load: Rate                   #: memory → chip (LOAD)
    store: Rate                  #: chip → memory (STORE)
    fetch: int                   #: cycles per instruction fetched, decoded and dispatched
    word: Word                   #: the vector unit's accesses (POOL, GAP)


_SDRAM = DmaTiming(load=Rate(1.955, 4, 17), store=Rate(1.952, 3, 4), fetch=41,
                   word=Word(13, 2, 8, 2))

TIMINGS = {
    # the ULX3S's SDRAM (16 bits at the system clock, bursts of 2) behind the board's controller
    "sdram": _SDRAM,
    # the UP5K's SPRAM target (32-bit words; a read every 1.25 cycles through its FIFO credits)
    "spram": DmaTiming(load=Rate(3.2, 0, 5), store=Rate(4.0, 0, 0, per_word=2), fetch=18,
                       word=Word(4, 1.25, 0, 1)),
    # the activation buffer (block RAM in the controller's address space, a word per cycle);
    # instructions are never fetched from it
    "act": DmaTiming(load=Rate(4.0, 0, 4), store=Rate(4.0, 0, 0, per_word=2), fetch=0,
                     word=Word(5, 1, 0, 1)),
    # simulation-only engines (no SoC): assume the ULX3S's SDRAM
    "none": _SDRAM,
}


#: the activation buffer's wide port (``hw.soc.activation_buffer``): a map word per cycle
#: after these cycles (a LOAD's last word reaches the engine three cycles after its read:
#: the buffer's registered read data, then the engine's load register; a STORE reads the
#: output memory's first word a cycle ahead)
WIDE_SETUP = {False: 4, True: 1}


def transfer_cycles(memory: str, rows: int, row_bytes: int, *, store: bool = False,
                    word_bytes: int = 0, wide: bool = False) -> int:
    """Cycles to move ``rows`` rows of ``row_bytes`` bytes (target words of ``word_bytes``)
    to (``store``) or from ``memory`` (a configuration's ``memory``: "sdram", "spram" or
    "none"; or "act", the activation buffer; ``wide``: through its wide port, a target word
    per cycle, ``hw.soc.isa.wide_transfer``)."""
    if wide:
        return WIDE_SETUP[store] + rows * -(-row_bytes // word_bytes)
    t = TIMINGS[memory].store if store else TIMINGS[memory].load
    if rows <= 0 or row_bytes <= 0:
        return t.setup
    words = rows * -(-row_bytes // word_bytes) if word_bytes else 0
    return (t.setup + rows * (t.row + -(-row_bytes * 1000 // int(t.bytes_per_cycle * 1000)))
            + words * t.per_word)


def fetch_cycles(memory: str) -> int:
    """Cycles the controller spends on each instruction before it executes (fetch, decode,
    dispatch) with its program in ``memory``."""
    return TIMINGS[memory].fetch


#: bytes of the SoC's memory words (the controller's memory port and the activation buffer)
MEMORY_WORD_BYTES = 4
# the vector unit's state machine (hw/soc/vector_unit.py): cycles besides its memory accesses
POOL_SETUP, POOL_OUT = 19, 4
GAP_SETUP, GAP_READ, GAP_OUT = 1, 1, 2
#: cycles per lane of GAP's requantisation (the engine's lane: LUT multiplier / digit-serial):
#: the lane's latency and a cycle
REQUANT_LANE = {False: 13, True: RequantSerial.LATENCY + 1}


def _read(memory: str, words: int) -> int:
    w = TIMINGS[memory].word
    return w.latency + round(w.per_word * words)


def _write(memory: str, words: int) -> int:
    w = TIMINGS[memory].word
    return w.write_latency + w.write_per_word * words


def pool_cycles(src: str, dst: str, taps: int, outs: int, lanes: int) -> int:
    """POOL: ``taps`` map words (of ``lanes`` bytes) read from ``src``, ``outs`` written to
    ``dst``.  Per output pixel one read latency (its taps' requests go out back to back), then
    the taps' memory words, then the write."""
    r = TIMINGS[src].word
    words = lanes // MEMORY_WORD_BYTES
    return (POOL_SETUP + round(taps * r.per_word * words)
            + outs * (POOL_OUT + r.latency + _write(dst, words)))


def gap_cycles(src: str, dst: str, reads: int, outs: int, lanes: int, serial: bool) -> int:
    """GAP: ``reads`` map words (of ``lanes`` bytes) from ``src``, ``outs`` requantised words
    to ``dst``, each lane through the requantisation lane (``serial``: digit-serial)."""
    words = lanes // MEMORY_WORD_BYTES
    return (GAP_SETUP + reads * (GAP_READ + _read(src, words))
            + outs * (GAP_OUT + lanes * REQUANT_LANE[serial] + _write(dst, words)))
