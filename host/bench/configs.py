"""``blockfuse bench configs``: each accelerator configuration against its device — block RAM
tiles per memory (``hw.budget``), multipliers, logic where a synthesis report gives it — as
``docs/configs.md``, ``docs/configs.json`` and a stacked-bar plot."""
from __future__ import annotations

import json
from pathlib import Path

from hw.configs import BOARD_CONFIGS, CI_CONFIG, SIMULATION_ONLY, fit_report


def _all_configs():
    return list(BOARD_CONFIGS.values()) + [CI_CONFIG] + list(SIMULATION_ONLY.values())


def soc_synthesis(docs: Path) -> dict:
    """The whole-SoC yosys counts ``blockfuse bench soc-synth`` committed, by board."""
    path = Path(docs) / "soc_synth.json"
    if not path.exists():
        return {}
    return {r["board"]: r for r in json.loads(path.read_text())}


def _table(reports: list, socs: dict) -> str:
    rows = ["| configuration | device | PEs | clock | block RAM tiles (engine + activation buffer "
            "+ SoC) / device "
            "| multipliers | logic (LUT4 / LC) | whole SoC, yosys: LUT4 / FFs | on-chip data "
            "| fits |",
            "|---|---|---:|---:|---|---|---|---|---:|---|"]
    for r, cfg in reports:
        b, m, lut = r["bram_tiles"], r["multipliers"], r["luts"]
        soc = socs.get(cfg.name)
        # the engine's and the link SoC's own reports added up, where no synthesis of the whole
        # SoC (the figure that counts) exists
        logic = ("see whole SoC" if soc is not None else "no report" if lut["used"] is None
                 else f"{lut['used']:,} / {lut['available']:,}")
        whole = "—" if soc is None else (
            f"{soc['used']['luts']:,} / {soc['used']['ffs']:,} of {soc['available']['luts']:,}")
        # the whole SoC's synthesis decides the logic where it exists (the engine's and the
        # link SoC's own reports added up are only an estimate)
        fits = (r["fits"] if soc is None else
                r["multipliers"]["fits"] and r["bram_tiles"]["fits"] and all(soc["fits"].values()))
        fits = "yes" if fits else "**no**"
        label = cfg.name + ("" if cfg.board else " (" + (cfg.note or "not a board") + ")")
        rows.append(f"| {label} | {r['device']} | {r['pes']} | {r['clock_mhz']:.0f} MHz | "
                    f"{b['used']} ({b['engine']} + {b['act']} + {b['soc']}) / {b['available']} | "
                    f"{m['used']} / {m['available']} | {logic} | {whole} | "
                    f"{r['onchip_bytes'] / 1024:,.0f} KiB | {fits} |")
    return "\n".join(rows)


def _memories(reports: list) -> str:
    out = []
    for r, cfg in reports:
        if not cfg.board:
            continue
        out.append(f"\n**{cfg.name}** ({r['device']}):\n")
        out.append("| memory | word bits | depth | copies | tiles |")
        out.append("|---|---:|---:|---:|---:|")
        for mem in r["memories"]:
            out.append(f"| {mem['name']} | {mem['width']} | {mem['depth']} | {mem['copies']} "
                       f"| {mem['tiles']} |")
    return "\n".join(out)


def _plot(reports: list, path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    names = [cfg.name for _, cfg in reports]
    fig, ax = plt.subplots(figsize=(8, 3.6))
    kinds = {}
    for i, (r, cfg) in enumerate(reports):
        for mem in r["memories"]:
            kinds.setdefault(mem["name"], [0] * len(reports))[i] = (
                100 * mem["tiles"] / r["bram_tiles"]["available"])
        kinds.setdefault("link SoC", [0] * len(reports))[i] = (
            100 * r["bram_tiles"]["soc"] / r["bram_tiles"]["available"])
    bottom = [0.0] * len(reports)
    for name, vals in kinds.items():
        if any(vals):
            ax.bar(names, vals, bottom=bottom, label=name)
            bottom = [a + b for a, b in zip(bottom, vals)]
    ax.axhline(100, color="k", lw=1)
    ax.text(len(reports) - 0.5, 103, "device", ha="right", fontsize=8)
    ax.set_ylabel("% of the device's block RAM tiles")
    ax.set_title("Block RAM of each accelerator configuration (its own device)")
    ax.legend(fontsize=7, ncol=2)
    plt.setp(ax.get_xticklabels(), rotation=20, ha="right", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def bench(outdir) -> list:
    outdir = Path(outdir)
    reports = [(fit_report(cfg), cfg) for cfg in _all_configs()]
    (outdir / "configs.json").write_text(json.dumps(
        [dict(r, board=cfg.board, note=cfg.note, engine=cfg.engine.as_dict())
         for r, cfg in reports], indent=1) + "\n")
    _plot(reports, outdir / "configs.png")
    ice = BOARD_CONFIGS["icebreaker"]
    socs = soc_synthesis(outdir)
    ice_soc = socs.get("icebreaker")
    if ice_soc:
        u, a = ice_soc["used"], ice_soc["available"]
        ice_logic = (f"its whole SoC synthesises to {u['luts']:,} LUT4s and {u['ffs']:,} FFs "
                     f"(`docs/soc_synth.md`; the UP5K has {a['luts']:,} logic cells of one LUT4 "
                     f"and one FF each), though it has no vector unit (the digits CNN does not "
                     f"pool)")
        ice_fits = "logic_cells" in u and u["logic_cells"] <= a["luts"]
        if "logic_cells" in u:
            share = 100 * u["logic_cells"] / a["luts"]
            ice_logic += (f"; packed by nextpnr it needs {u['logic_cells']:,} logic cells, "
                          + (f"{share:.1f} % of the device" if ice_fits
                             else f"{share - 100:.0f} % over"))
    else:
        ice_fits = False
        ice_logic = (f"the engine ({ice.engine_luts:,} logic cells) and the link SoC "
                     f"({ice.soc_luts:,}) exceed the UP5K's {ice.device.luts:,}")
    if ice_fits:
        ice_line = (f"- **icebreaker** fits its block RAM, multipliers and logic: {ice_logic}. "
                    "Its digit-serial requantisation lane (one value every 16 cycles for the 4 "
                    "columns) is what made room; `docs/soc_synth.md` says where the logic goes. "
                    "At this density nextpnr does not place it yet (`docs/accelerator.md`).")
    else:
        ice_line = (f"- **icebreaker** fits its block RAM and multipliers but **not its logic**: "
                    f"{ice_logic}.\n  No iCEBreaker figure is that of a bitstream until that "
                    "changes.")
    text = f"""# Accelerator configurations and what they take of their boards

One configuration per board (`hw/configs.py`), used by synthesis, `--target sim`, the scheduler
and the demo. Block RAM tiles are counted from each memory's geometry by `hw/budget.py` (DP16KD:
18 Kbit; SB_RAM40_4K: 4 Kbit; one copy per read port), which equals yosys's count on these
engines (`tests/test_budget.py`), plus the link SoC's own tiles (`bitstreams/*/report.json`).
Logic is the engine's synthesis report (`docs/engine_synth_*.json`) plus the link SoC's, where
both exist; the whole SoC with the accelerator, synthesised by yosys (`docs/soc_synth.md`), where
that exists. "On-chip data" is the input map, weight and output memories' bytes.

Written by `blockfuse bench configs`.

{_table(reports, socs)}

![block RAM per configuration](configs.png)

## Where the block RAM goes
{_memories(reports)}

## What the table says

- **ulx3s-85f** takes 206 of 208 tiles for 352 KiB of data: a 64 KiB input map stored twice
  (its two read ports, shared by the nine rows), nine 16 KiB weight memories and a 16 KiB
  output map, each used as two halves so the DMA fills one while the engine works on the other
  (`docs/isa.md`), and the 128 KiB activation buffer where fused groups keep their
  intermediate maps (`docs/accelerator.md`). Layers larger than a half run as engine passes
  over tiles of the output map and output-channel chunks (`host.compiler.program`).
{ice_line}
- **sim-8x8** and **sim-8x8-line** are simulation-only: they need four to five times the 85F's
  block RAM and are labelled wherever they are used (`--engine sim-8x8`).
"""
    (outdir / "configs.md").write_text(text)
    return [outdir / "configs.md", outdir / "configs.json", outdir / "configs.png"]
