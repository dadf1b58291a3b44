"""Boot-time read calibration of the SDRAM PHY: sweep the capture position, keep the centre of the
window that reads a written pattern back.

:class:`ReadCalibrator` is a memory-port initiator.  After ``start`` it writes ``words`` pattern
words (distinct neighbours, so data taken one cycle early or late never match) from ``base``,
then for each capture position 0 … positions-1 sets ``capture``, lets the delay line settle,
reads the words back and records whether all matched (``result.passed``, one bit per
position).  It then sets ``capture`` to the centre of the longest run of passing positions (the
earlier of two centres) and raises ``done``; ``result.ok`` is low, and ``capture`` stays at
``fallback``, when no position passed.  The result goes to the host in the STATUS ``flags`` word
(``blockfuse device info``).
"""
from __future__ import annotations

import random

from amaranth.hdl import Array, Const, Module, Signal
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from hw.memory.memport import MemPortSignature

__all__ = ["ReadCalibrator", "cal_result_layout", "choose_position", "cal_patterns"]


#: The calibration result, as the host reads it (STATUS ``flags`` bits 16…29, see
#: ``host.runtime.protocol.parse_status``).
cal_result_layout = data.StructLayout({
    "position": 4,           #: capture position in use
    "passed": 8,             #: bit p: position p read the pattern back
    "ok": 1,                 #: some position passed
    "done": 1,               #: calibration finished
})


def choose_position(passed: int, positions: int, fallback: int = 0) -> tuple[int, bool]:
    """Centre of the longest run of set bits in ``passed`` (the earlier centre of an even run;
    the first of equally long runs); ``(fallback, False)`` when none is set."""
    best = (0, 0)                # (length, start)
    run = 0
    for p in range(positions + 1):
        if p < positions and (passed >> p) & 1:
            run += 1
        else:
            if run > best[0]:
                best = (run, p - run)
            run = 0
    if best[0] == 0:
        return fallback, False
    return best[1] + (best[0] - 1) // 2, True


def cal_patterns(words: int, width: int, seed: int = 0x5D) -> list[int]:
    """Pattern words: alternating bit patterns, then pseudo-random ones, no two neighbours
    equal."""
    mask = (1 << width) - 1
    fixed = [0xA5A5A5A5A5A5A5A5 & mask, 0x5A5A5A5A5A5A5A5A & mask,
             0xFFFF0000FFFF0000 & mask, 0x0000FFFF0000FFFF & mask]
    rng = random.Random(seed)
    out = fixed[:words]
    while len(out) < words:
        v = rng.getrandbits(width)
        if v != out[-1]:
            out.append(v)
    return out


class ReadCalibrator(wiring.Component):
    """Sweeps the PHY's capture position; see the module docstring.

    Ports: ``bus: Out(MemPortSignature(addr_width, data_width))``, ``start: In(1)``,
    ``capture: Out(range(positions))`` (to :class:`hw.memory.sdram_phy.SDRAMPHY`),
    ``result: Out(cal_result_layout)``, ``done: Out(1)``.
    """

    def __init__(self, addr_width: int, data_width: int, *, positions: int = 4,
                 words: int = 8, base: int = 0, fallback: int = 0, settle: int = 8):
        if not 1 <= positions <= 8 or not 2 <= words <= 64 or not 0 <= fallback < positions:
            raise ValueError("ReadCalibrator: 1-8 positions, 2-64 words, fallback a position")
        self.positions = positions
        self.words = words
        self.base = base
        self.fallback = fallback
        self.settle = settle
        self.patterns = cal_patterns(words, data_width)
        super().__init__({
            "bus": Out(MemPortSignature(addr_width, data_width)),
            "start": In(1),
            "capture": Out(range(positions), init=fallback),
            "result": Out(cal_result_layout),
            "done": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        n, P = self.words, self.positions
        req, resp = self.bus.req, self.bus.resp
        pattern = Array(Const(v, len(req.payload.data)) for v in self.patterns)
        table = [choose_position(v, P, self.fallback) for v in range(1 << P)]
        choice = Array(Const(pos, 4) for pos, _ in table)
        any_ok = Array(Const(int(ok), 1) for _, ok in table)

        issued = Signal(range(n + 1))
        got = Signal(range(n + 1))
        good = Signal()
        wait = Signal(range(self.settle + 1))
        passed = Signal(P)
        m.d.comb += [resp.ready.eq(1), self.result.passed.eq(passed)]

        with m.FSM(name="cal"):
            with m.State("IDLE"):
                with m.If(self.start):
                    m.next = "WRITE"
            with m.State("WRITE"):
                m.d.comb += [req.valid.eq(1), req.payload.write.eq(1),
                             req.payload.addr.eq(self.base + issued),
                             req.payload.data.eq(pattern[issued])]
                with m.If(req.ready):
                    m.d.sync += issued.eq(issued + 1)
                    with m.If(issued == n - 1):
                        m.d.sync += [self.capture.eq(0), wait.eq(self.settle)]
                        m.next = "SETTLE"
            with m.State("SETTLE"):
                m.d.sync += [issued.eq(0), got.eq(0), good.eq(1)]
                with m.If(wait == 0):
                    m.next = "READ"
                with m.Else():
                    m.d.sync += wait.eq(wait - 1)
            with m.State("READ"):
                m.d.comb += [req.valid.eq(issued != n), req.payload.write.eq(0),
                             req.payload.addr.eq(self.base + issued)]
                with m.If(req.valid & req.ready):
                    m.d.sync += issued.eq(issued + 1)
                with m.If(resp.valid):
                    m.d.sync += got.eq(got + 1)
                    with m.If(resp.payload != pattern[got]):
                        m.d.sync += good.eq(0)
                with m.If(got == n):
                    m.d.sync += passed.bit_select(self.capture, 1).eq(good)
                    with m.If(self.capture == P - 1):
                        m.next = "CHOOSE"
                    with m.Else():
                        m.d.sync += [self.capture.eq(self.capture + 1), wait.eq(self.settle)]
                        m.next = "SETTLE"
            with m.State("CHOOSE"):
                m.d.sync += [self.capture.eq(choice[passed]), self.result.position.eq(
                             choice[passed]), self.result.ok.eq(any_ok[passed]),
                             self.result.done.eq(1), self.done.eq(1)]
                m.next = "DONE"
            with m.State("DONE"):
                pass
        return m
