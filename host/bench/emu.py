"""``blockfuse bench emu``: whole networks at 224×224 compiled into network programs for the
ulx3s-85f configuration and executed by the program emulator (``--target emu``): cycles from
START to DONE (DMA included), PE utilisation, the engine's and the DMA's shares, off-chip
traffic by kind, bit-exactness with the golden model under the same plan, and how long
compiling and emulating take. Writes ``docs/emu_bench.md`` and ``docs/emu_bench.json``.

VGG16 runs up to pool5: its classifier does not fit the board (fc6–fc8 hold 124 MB of weights
against the ULX3S's 32 MB of SDRAM, and fc6's 25,088 inputs exceed the engine's input memory
without accumulation across runs).
"""
from __future__ import annotations

import json
import time
from pathlib import Path

#: (network, schedule, until, scheduler budget: None = the board model's, "act" = the
#: configuration's activation buffer, as ``blockfuse plan --budget``)
CASES = [("vgg16", "block", "pool5", None), ("vgg16", "layer", "pool5", None),
         ("vgg16", "fused", "pool5", "act"),
         ("mobilenet_v1", "fused", None, None), ("mobilenet_v1", "fused", None, "act"),
         ("mobilenet_v1", "layer", None, None)]
NOT_RUN = {"vgg16": "fc6–fc8 (124 MB of weights > 32 MB SDRAM; fc6's 25,088 inputs > the "
                    "input memory)"}


def one(name: str, schedule: str, until: str | None = None, board: str = "ulx3s-85f",
        resolution=None, budget=None) -> dict:
    """One network under the scheduler's plan for ``schedule`` on ``board`` (``budget``:
    "act" plans for the configuration's activation buffer), compiled and emulated (see the
    module doc)."""
    from host.cli.run import choose_plan
    from host.compiler.scheduler import plan_network
    from host.model import zoo
    from host.model.builder import smooth_input
    from host.runtime import golden
    from host.runtime.emulator import EmuTarget
    from hw.configs import get_config
    acfg = get_config(board)
    g = zoo.get(name, resolution) if resolution else zoo.get(name)
    x = smooth_input(g, seed=0)
    if budget == "act":
        plan, report = plan_network(g, board, schedule, budget=acfg.act_bytes)
    else:
        plan, _, report = choose_plan(g, schedule, None, board, None)
        if report is None:
            _, report = plan_network(g, board, schedule)
    t0 = time.perf_counter()
    target = EmuTarget(g, plan, acfg, until=until)
    compile_seconds = time.perf_counter() - t0
    t0 = time.perf_counter()
    got = target.run(x)
    seconds = time.perf_counter() - t0
    values = golden.run(g, x, plan=plan, keep=True)
    want = values[g.node(until).output if until else g.output]
    f = target.frames[0]
    p = target.program
    pes = acfg.engine.rows * acfg.engine.cols
    macs = sum(p.macs.values())
    ran = set(p.macs)
    return dict(network=name, schedule=schedule, board=board, until=until,
                resolution=list(g.input_tensor.shape[1:]),
                bit_exact=bool(got.shape == want.shape and (got == want).all()),
                cycles=f["cycles"], engine_cycles=f["busy"]["engine"],
                dma_cycles=f["busy"]["dma"], macs=macs,
                utilisation=macs / (pes * f["cycles"]),
                engine_utilisation=macs / (pes * f["busy"]["engine"]),
                read=f["read"], written=f["written"], traffic=f["traffic"], act=f["act"],
                budget=budget or "board model", groups_on_chip=p.counts["act_groups"],
                instructions=p.n_insns, program_bytes=p.size, consts_bytes=len(p.consts),
                predicted_cycles=sum(r["cycles"] for r in report["layers"] if r["name"] in ran),
                planned_offchip=report["offchip_bytes"],
                compile_seconds=round(compile_seconds, 1), seconds=round(seconds, 1))


def bench(outdir) -> list:
    outdir = Path(outdir)
    rows = [one(n, s, u, budget=b) for n, s, u, b in CASES]
    (outdir / "emu_bench.json").write_text(json.dumps(rows, indent=1) + "\n")
    lines = ["# Whole networks as programs on the ulx3s-85f configuration, emulated "
             "(`--target emu`)", "",
             __doc__.split("\n\n", 1)[1].strip().replace("\n", " "), "",
             "Written by `blockfuse bench emu`; the plan is the scheduler's for the schedule. "
             "The DMA's cycles are the model of `host/compiler/dma.py`, the engine's the RTL's.",
             "",
             "*plan*: the schedule, and *(act)* where the scheduler planned for the "
             "configuration's activation buffer (`blockfuse plan --budget 131072`) instead of "
             "its board model's budget. *on chip*: bytes the fused groups' maps moved through "
             "the activation buffer, and how many groups kept their maps there.", "",
             "| network (224×224) | plan | bit-exact | cycles START→DONE | PE utilisation | "
             "engine cycles (utilisation) | DMA cycles | off-chip bytes: maps / weights / "
             "tables | on chip (groups) | instructions | compile / emulate |",
             "|---|---|:---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        t = r["traffic"]
        net = r["network"] + (f" to {r['until']}" if r["until"] else "")
        lines.append(
            f"| {net} | {r['schedule']}{' (act)' if r['budget'] == 'act' else ''} | "
            f"{'yes' if r['bit_exact'] else '**no**'} | "
            f"{r['cycles']:,} | {100 * r['utilisation']:.1f} % | {r['engine_cycles']:,} "
            f"({100 * r['engine_utilisation']:.1f} %) | {r['dma_cycles']:,} | "
            f"{t['map']:,} / {t['weights']:,} / {t['tables']:,} | {r['act']:,} "
            f"({r['groups_on_chip']}) | {r['instructions']:,} | "
            f"{r['compile_seconds']} s / {r['seconds']} s |")
    by = {(r["network"], r["schedule"]): r for r in rows if r["budget"] != "act"}
    lines += ["", "Not run: " + "; ".join(f"{k}: {v}" for k, v in NOT_RUN.items()) + ".", ""]
    if ("vgg16", "block") in by and ("vgg16", "layer") in by:
        b, l_ = by["vgg16", "block"], by["vgg16", "layer"]
        lines += [f"Map traffic of VGG16 under `block` is {b['traffic']['map']:,} bytes against "
                  f"{l_['traffic']['map']:,} under `layer` "
                  f"({100 * b['traffic']['map'] / l_['traffic']['map']:.0f} %): block-wise "
                  f"groups run layer by layer with their maps off chip (their weights do not "
                  f"fit on chip beside the blocks, `docs/accelerator.md`), so the plan's "
                  f"{100 * b['planned_offchip']['activations_in'] / max(1, l_['planned_offchip']['activations_in']):.1f} % "
                  f"is not reached.", ""]
    lines += ["Where the cycles go: the DMA works beside the engine (input, weight and output "
              "memories double-buffered, each run's STORE after the next run's CONV; "
              "`docs/isa.md`), so START→DONE is about the larger of the two per layer plus the "
              "pools (DMA only) and the waits where tables change. Weights are loaded once per "
              "output-channel chunk and kept for its tiles, maps once per tile and chunk, "
              "tables once per distinct tile shape. MobileNetV1 is bound by the SDRAM: its "
              "maps and weights take more DMA cycles than its MACs take engine cycles, and "
              "depthwise layers run two taps per step on the two-port input memory. Planned for "
              "the activation buffer, its fused groups keep their maps on chip and its off-chip "
              "traffic falls, but the DMA still moves those maps (32 bits at a time, between "
              "the buffer and the engine's memories) and reloads the pointwise weights per "
              "block, so its cycles hardly move."]
    (outdir / "emu_bench.md").write_text("\n".join(lines) + "\n")
    return [outdir / "emu_bench.md", outdir / "emu_bench.json"]
