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
import subprocess
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
BOARDS = ("icebreaker", "ulx3s-85f")


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
    return acfg, BoardTop(board, link_factory=link_factory, extra_initiators=[CoreMemory])


def synth(board: str, build_root: Path | None = None) -> dict:
    """Elaborate and run yosys on ``board``'s SoC with the accelerator; returns its cells."""
    from host.synthesis import _yosys_cells, tool_env
    from hw.soc.top import make_platform
    acfg, top = _top(board)
    platform = make_platform(board)
    opts = {"synth_opts": "-dsp"} if acfg.device.family == "ice40" else {}
    plan = platform.prepare(top, name="top", **opts)
    bdir = Path(build_root or ROOT / "build" / "soc-synth") / board
    plan.extract(str(bdir))
    script = (bdir / "build_top.sh").read_text().splitlines()
    line = next(ln for ln in script if ln.startswith('"$YOSYS"'))
    t0 = time.monotonic()
    proc = subprocess.run(["sh", "-c", 'set -e\n: ${YOSYS:=yosys}\n' + line], cwd=bdir,
                          env=tool_env(), capture_output=True, text=True)
    if proc.returncode != 0:
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
                    spram=cells.get("SB_SPRAM256KA", 0))
        avail = dict(luts=dev.luts, ffs=dev.luts, multipliers=dev.multipliers,
                     bram=dev.bram_tiles, spram=dev.spram_tiles)
    return dict(board=board, device=dev.name, pes=acfg.engine.rows * acfg.engine.cols,
                used=used, available=avail,
                fits={k: used[k] <= avail[k] for k in avail},
                cells=cells, yosys_seconds=round(time.monotonic() - t0, 1))


def bench(outdir, boards=BOARDS) -> list:
    outdir = Path(outdir)
    rows = [synth(b) for b in boards]
    (outdir / "soc_synth.json").write_text(json.dumps(rows, indent=1) + "\n")
    lines = ["# Whole SoCs with the accelerator, synthesised (yosys only)", "",
             __doc__.split("\n\n", 1)[1].strip().replace("\n", " "), "",
             "Written by `blockfuse bench soc-synth`. LUTs count ECP5 carry cells as two LUT4s "
             "(iCE40: SB_LUT4 only; carries apart); one FF per LUT is available on both families. "
             "Yosys's counts before placement: nextpnr packs LUTs and FFs into cells "
             "differently.", "",
             "| board | PEs | LUT4 | FFs | multipliers | block RAM | SPRAM | fits | yosys |",
             "|---|---:|---:|---:|---:|---:|---:|---|---:|"]
    for r in rows:
        u, a = r["used"], r["available"]
        fits = ", ".join(f"{k} {'yes' if v else '**no**'}" for k, v in r["fits"].items())
        lines.append(
            f"| {r['board']} ({r['device']}) | {r['pes']} | {u['luts']:,} / {a['luts']:,} | "
            f"{u['ffs']:,} / {a['ffs']:,} | {u['multipliers']} / {a['multipliers']} | {u['bram']} / "
            f"{a['bram']} | {u.get('spram', 0)} / {a.get('spram', 0)} | {fits} | "
            f"{r['yosys_seconds']} s |")
    lines += ["", "A trap found on the way: yosys 0.70's ABC9 (the only mapping flow of "
              "`synth_ecp5` now) stopped with `Assert GetSize(conn.first) == "
              "GetSize(conn.second)` in `ABC_OPS_REINTEGRATE` when the engine picked a read "
              "port's word and validity bit by dynamic selection (`Cat(...).word_select(port, "
              "…)`, `.bit_select(port, 1)`); explicit multiplexer chains over the two ports "
              "(`hw/engine/array_feed.py`, `hw/engine/issue.py`) synthesise."]
    (outdir / "soc_synth.md").write_text("\n".join(lines) + "\n")
    return [outdir / "soc_synth.md", outdir / "soc_synth.json"]
