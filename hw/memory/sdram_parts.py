"""The SDRAM parts fitted to ULX3S boards, with their datasheet timings, and their worst case.

The ULX3S manual lists boards with the Micron MT48LC16M16A2-6A, the ISSI IS42S16160G-7 (most
boards), the ESMT M12L2561616A and the Alliance AS4C32M16SB-7.  Nobody can tell from the host
which one a board carries, so the board top drives the controller with :data:`WORST_CASE`
(:func:`worst_case` of all of them: every time the longest, every hold the shortest) unless the
build names a part (``blockfuse build --sdram PART``).

The timing-checking model (``sim/sdram_model.py``) is configured from one of these parts
directly, never from the controller's constants, so a controller that is shorter than the fitted
part fails its tests.  ``SOURCES`` says where each value comes from and which ones could not be
found in a datasheet (those are marked as assumptions; see ``docs/memory.md``).
"""
from __future__ import annotations

import dataclasses

from hw.memory.sdram import MT48LC16M16A2_6A, SDRAMChip

__all__ = ["PARTS", "SOURCES", "WORST_CASE", "worst_case", "part"]

#: ISSI IS42S16160G-7 (4 M × 16 × 4 banks, 32 MB).  The G-die AC table was not found; the values
#: are ISSI's -7 grade (IS42S16800A data sheet, AC electrical characteristics), tAC(CL2) taken
#: as the larger 6.5 ns of ISSI's IS42S32160C; tRFC = tRC (ISSI gives one "REF to REF / ACT to
#: ACT" period); tWR = tDPL = 2 CLK at the grade's 7 ns.
IS42S16160G_7 = SDRAMChip(
    name="IS42S16160G-7", bank_bits=2, row_bits=13, col_bits=9, dq_bits=16,
    tCK_cl2=10.0, tCK_cl3=7.0, tRCD=15, tRP=15, tRAS=37, tRAS_max=120_000, tRC=63, tRFC=63,
    tWR=14, tRRD=14, tMRD_ck=2, tREF_ms=64, refresh_rows=8192, init_us=100,
    tAC_cl2=6.5, tAC_cl3=5.4, tOH=2.5, tIS=1.5, tIH=0.8)

#: Alliance AS4C32M16SB-7 (8 M × 16 × 4 banks, 64 MB: 1024 columns; the controller's 512-column
#: map uses half of it).  Alliance data sheet, table 16 (A.C. operating conditions), -7 column.
AS4C32M16SB_7 = SDRAMChip(
    name="AS4C32M16SB-7", bank_bits=2, row_bits=13, col_bits=10, dq_bits=16,
    tCK_cl2=10.0, tCK_cl3=7.0, tRCD=21, tRP=21, tRAS=42, tRAS_max=120_000, tRC=63, tRFC=63,
    tWR=14, tRRD=14, tMRD_ck=2, tMRD=14, tREF_ms=64, refresh_rows=8192, init_us=200,
    tAC_cl2=6.0, tAC_cl3=5.4, tOH=2.5, tIS=1.5, tIH=0.8)

#: ESMT M12L2561616A (4 M × 16 × 4 banks, 32 MB).  The speed grade fitted to ULX3S boards was
#: not found; the slowest grade ESMT sells (-7, 143 MHz) is used.  Its AC table was not found:
#: tRRD/tRCD/tRP/tRAS/tRC are ESMT's -7 values of the M12S16161A; tAC, tOH, tRFC and tWR are
#: assumptions (tAC 5.4 ns as ESMT's listing of the -6 part, JEDEC-typical 6 ns at CL2 and
#: 2.5 ns hold; tRFC = tRC; tWR = tRDL = 2 CLK at 7 ns); tRAS(max) is ESMT's 100 µs.
M12L2561616A_7 = SDRAMChip(
    name="M12L2561616A", bank_bits=2, row_bits=13, col_bits=9, dq_bits=16,
    tCK_cl2=10.0, tCK_cl3=7.0, tRCD=20, tRP=20, tRAS=42, tRAS_max=100_000, tRC=63, tRFC=63,
    tWR=14, tRRD=14, tMRD_ck=2, tREF_ms=64, refresh_rows=8192, init_us=100,
    tAC_cl2=6.0, tAC_cl3=5.4, tOH=2.5, tIS=1.5, tIH=0.8)

#: Parts by name (``blockfuse build --sdram NAME``).
PARTS = {c.name: c for c in (MT48LC16M16A2_6A, IS42S16160G_7, M12L2561616A_7, AS4C32M16SB_7)}

#: Where the values come from ("datasheet" = read in the part's own data sheet).
SOURCES = {
    "MT48LC16M16A2-6A": "Micron 256Mb SDRAM data sheet, AC operating conditions, -6A column "
                        "(tCK(2) = 10 ns, tAC(2) = 7.5 ns: CL2 needs a 10 ns clock)",
    "IS42S16160G-7": "not found for the G die: ISSI -7 grade values (IS42S16800A data sheet), "
                     "tAC(2) 6.5 ns from IS42S32160C; tRFC = tRC, tWR = 2 CLK",
    "AS4C32M16SB-7": "Alliance AS4C32M16SB data sheet, table 16, -7 column",
    "M12L2561616A": "grade on the boards not found (-7 assumed); tRRD/tRCD/tRP/tRAS/tRC from "
                    "ESMT's -7 M12S16161A table; tAC/tOH/tRFC/tWR assumed",
}

_LONGEST = ("tCK_cl2", "tCK_cl3", "tRCD", "tRP", "tRAS", "tRC", "tRFC", "tWR", "tRRD",
            "tMRD_ck", "tMRD", "init_us", "tAC_cl2", "tAC_cl3", "tIS", "tIH")
_SHORTEST = ("tRAS_max", "tOH", "tREF_ms", "col_bits", "row_bits", "bank_bits")


def worst_case(chips, name: str = "worst case") -> SDRAMChip:
    """One chip that every part in ``chips`` accepts: the longest of each minimum time, the
    shortest of each maximum time and hold, the smallest geometry (a word address then means the
    same cell on every part) and the most refreshes per period."""
    chips = list(chips)
    if not chips or len({c.dq_bits for c in chips}) != 1:
        raise ValueError("worst_case needs parts of one data width")
    fields = {f: max(getattr(c, f) for c in chips) for f in _LONGEST}
    fields.update({f: min(getattr(c, f) for c in chips) for f in _SHORTEST})
    fields["refresh_rows"] = max(c.refresh_rows for c in chips)
    return dataclasses.replace(chips[0], name=name, **fields)


#: What the ULX3S top drives by default: any of :data:`PARTS`.
WORST_CASE = worst_case(PARTS.values(), name="ULX3S (any fitted part)")


def part(name: str | None) -> SDRAMChip:
    """The part called ``name`` (``None``: :data:`WORST_CASE`); one-line error otherwise."""
    if name is None:
        return WORST_CASE
    if name not in PARTS:
        raise ValueError(f"unknown SDRAM part {name!r} (choose one of {', '.join(PARTS)})")
    return PARTS[name]
