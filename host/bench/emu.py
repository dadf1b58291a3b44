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

#: (network, schedule, until, planner: "program" = the plan searched on the configuration's
#: compiled program, as ``blockfuse run`` executes; "scheduler" = the board model's)
CASES = [("vgg16", "block", "pool5", "program"), ("vgg16", "block", "pool5", "scheduler"),
         ("vgg16", "layer", "pool5", None), ("vgg16", "fused", "pool5", "program"),
         ("mobilenet_v1", "fused", None, "program"), ("mobilenet_v1", "fused", None, "scheduler"),
         ("mobilenet_v1", "layer", None, None)]
NOT_RUN = {"vgg16": "fc6–fc8 (124 MB of weights > 32 MB SDRAM; fc6's 25,088 inputs > the "
                    "input memory)"}


def one(name: str, schedule: str, until: str | None = None, board: str = "ulx3s-85f",
        resolution=None, planner="program") -> dict:
    """One network under ``planner``'s plan for ``schedule`` on ``board`` ("program": the
    configuration's own, as ``blockfuse run`` executes it; "scheduler": the board model's),
    compiled and emulated (see the module doc)."""
    from host.cli.run import program_plan
    from host.compiler.plan import default_plan
    from host.compiler.scheduler import plan_network
    from host.model import zoo
    from host.model.builder import smooth_input
    from host.runtime import golden
    from host.runtime.emulator import EmuTarget
    from hw.configs import get_config
    acfg = get_config(board)
    g = zoo.get(name, resolution) if resolution else zoo.get(name)
    x = smooth_input(g, seed=0)
    t0 = time.perf_counter()
    if schedule == "layer":
        plan = default_plan(g, "layer")
    elif planner == "program":
        plan, _ = program_plan(g, acfg, schedule)
    else:
        plan, _ = plan_network(g, board, schedule)
    plan_seconds = time.perf_counter() - t0
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
    return dict(network=name, schedule=schedule, board=board, until=until,
                resolution=list(g.input_tensor.shape[1:]),
                bit_exact=bool(got.shape == want.shape and (got == want).all()),
                cycles=f["cycles"], engine_cycles=f["busy"]["engine"],
                dma_cycles=f["busy"]["dma"], macs=macs,
                utilisation=macs / (pes * f["cycles"]),
                engine_utilisation=macs / (pes * f["busy"]["engine"]),
                read=f["read"], written=f["written"], traffic=f["traffic"], act=f["act"],
                planner=planner if schedule != "layer" else "-",
                groups=[dict(nodes=[grp.nodes[0], grp.nodes[-1]], block=grp.block)
                        for grp in plan.groups if len(grp.nodes) > 1],
                groups_on_chip=p.counts["act_groups"],
                instructions=p.n_insns, program_bytes=p.size, consts_bytes=len(p.consts),
                plan_seconds=round(plan_seconds, 1), compile_seconds=round(compile_seconds, 1),
                seconds=round(seconds, 1))


def bench(outdir) -> list:
    outdir = Path(outdir)
    rows = [one(n, s, u, planner=pl) for n, s, u, pl in CASES]
    (outdir / "emu_bench.json").write_text(json.dumps(rows, indent=1) + "\n")
    lines = ["# Whole networks as programs on the ulx3s-85f configuration, emulated "
             "(`--target emu`)", "",
             __doc__.split("\n\n", 1)[1].strip().replace("\n", " "), "",
             "Written by `blockfuse bench emu`. The DMA's cycles are the model of "
             "`host/compiler/dma.py`, the engine's the RTL's.", "",
             "*planner*: *program* — the plan searched on the configuration's compiled program "
             "(`host/compiler/program_plan.py`), the one `blockfuse run` executes and "
             "`blockfuse plan` prints; *scheduler* — the board model's "
             "(`blockfuse plan --scheduler`), for comparison. *on chip*: bytes moved through the "
             "activation buffer, and how many groups kept their maps there. *plan / compile / "
             "emulate*: seconds (a plan is searched once, then read from its cache).", "",
             "| network (224×224) | schedule | planner | bit-exact | cycles START→DONE | "
             "PE utilisation | engine cycles (utilisation) | DMA cycles | off-chip bytes: maps / "
             "weights / tables | on chip (groups) | instructions | plan / compile / emulate |",
             "|---|---|---|:---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        t = r["traffic"]
        net = r["network"] + (f" to {r['until']}" if r["until"] else "")
        lines.append(
            f"| {net} | {r['schedule']} | {r['planner']} | "
            f"{'yes' if r['bit_exact'] else '**no**'} | "
            f"{r['cycles']:,} | {100 * r['utilisation']:.1f} % | {r['engine_cycles']:,} "
            f"({100 * r['engine_utilisation']:.1f} %) | {r['dma_cycles']:,} | "
            f"{t['map']:,} / {t['weights']:,} / {t['tables']:,} | {r['act']:,} "
            f"({r['groups_on_chip']}) | {r['instructions']:,} | "
            f"{r['plan_seconds']} s / {r['compile_seconds']} s / {r['seconds']} s |")
    by = {(r["network"], r["schedule"], r["planner"]): r for r in rows}
    lines += ["", "Not run: " + "; ".join(f"{k}: {v}" for k, v in NOT_RUN.items()) + ".", ""]
    b, l_ = by.get(("vgg16", "block", "program")), by.get(("vgg16", "layer", "-"))
    if b and l_:
        groups = ", ".join(f"{g['nodes'][0]}…{g['nodes'][1]} in "
                           f"{'×'.join(map(str, g['block'])) if g['block'] else 'whole maps'}"
                           for g in b["groups"])
        lines += [f"VGG16 under `block`: the plan's fused groups ({groups}) run block by block "
                  f"with their intermediate maps in the activation buffer, so their maps move "
                  f"off chip only at the groups' borders: {b['traffic']['map']:,} bytes of "
                  f"maps against {l_['traffic']['map']:,} under `layer` "
                  f"({100 * b['traffic']['map'] / l_['traffic']['map']:.1f} %). Every block "
                  f"reloads the weights its group's layers cannot keep side by side "
                  f"({b['traffic']['weights']:,} bytes against "
                  f"{l_['traffic']['weights']:,}); the blocks are chosen so that those loads "
                  f"stay under the engine's runs.", ""]
    lines += ["Where the cycles go: the DMA works beside the engine (input, weight and output "
              "memories double-buffered, each run's STORE after the next run's CONV, the next "
              "chunk's weights in pieces beside the runs of the current one; `docs/isa.md`), so "
              "START→DONE is about the larger of the two per layer plus the pools (the vector "
              "unit, while the engine waits) and the waits where tables change. MobileNetV1 is "
              "bound by its transfers where its layers change and at its end: its depthwise "
              "layers take few engine cycles (two taps per step on the two-port input memory) "
              "against their maps' loads from the SDRAM, the first layer of each block group "
              "waits for its block's map, and its last two pointwise layers and its classifier "
              "(2.5 MB of weights at about 2 bytes a cycle) are bound by the SDRAM. A pointwise "
              "layer's first weights stream beside the last output chunk of the pointwise layer "
              "before it; depthwise weights and the 3-channel image travel `dense` (their used "
              "4-byte words only); maps move between the activation buffer and the engine a map "
              "word per cycle (its wide port)."]
    (outdir / "emu_bench.md").write_text("\n".join(lines) + "\n")
    return [outdir / "emu_bench.md", outdir / "emu_bench.json"]
