"""``blockfuse bench soc``: networks as programs on the whole simulated SoC of the ulx3s-85f
configuration (link, controller, engine, and the board's SDRAM controller driving a
timing-checking model of the SDRAM chip; the image through the simulation back door, input,
START, STATUS and output over the protocol): the controller's counters beside the program
emulator's cost model, bit-exactness with the golden model, and the simulation's speed. Writes ``docs/soc_bench.md`` and ``docs/soc_bench.json``.

VGG16 runs up to pool5 (its classifier does not fit the ULX3S's 32 MB). The VGG16 224×224 run
takes about 14 minutes here (12 of them simulating START to DONE), MobileNetV1 224×224 (whole,
classifier included) about two.
"""
from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np

CASES = [("digits", None, "fused", None), ("vgg16", 32, "fused", "pool5"),
         ("mobilenet_v1", None, "fused", None), ("vgg16", 224, "block", "pool5")]


def one(name: str, resolution, schedule: str, until: str | None, board: str = "ulx3s-85f") -> dict:
    from host.cli.run import choose_plan
    from host.compiler.program import compile_program
    from host.model import zoo
    from host.model.builder import smooth_input
    from host.runtime import golden
    from host.runtime.program_device import SimulatedAccelerator
    from hw.configs import get_config
    acfg = get_config(board)
    g = zoo.get(name, resolution) if resolution else zoo.get(name)
    x = smooth_input(g, seed=0)
    plan, _, _ = choose_plan(g, schedule, None, board, None)
    program = compile_program(g, acfg, plan, until=until)
    t0 = time.perf_counter()
    sa = SimulatedAccelerator(acfg, program)
    t_up = time.perf_counter() - t0
    try:
        t0 = time.perf_counter()
        got = sa.run(x)              # also checks the output against the program emulator
        seconds = time.perf_counter() - t0
    finally:
        sa.close()
    values = golden.run(g, x, plan=plan, keep=bool(until))
    want = values[g.node(until).output] if until else values
    f, e = sa.frames[-1], sa.emu.frames[-1]
    pes = acfg.engine.rows * acfg.engine.cols
    macs = sum(program.macs.values())
    return dict(network=name, resolution=list(g.input_tensor.shape[1:]), schedule=schedule,
                until=until, board=board, bit_exact=bool(np.array_equal(got, want)),
                cycles=f["cycles"], engine_cycles=f["busy"]["engine"], dma_cycles=f["busy"]["dma"],
                read=f["read"], written=f["written"], macs=macs,
                utilisation=macs / (pes * f["cycles"]),
                emu=dict(cycles=e["cycles"], engine_cycles=e["busy"]["engine"],
                         read=e["read"], written=e["written"]),
                fps=acfg.clock_mhz * 1e6 / f["cycles"], seconds=round(seconds, 1),
                start_seconds=round(t_up, 1), run_seconds=round(f["seconds"], 1),
                cycles_per_second=round(f["cycles"] / f["seconds"]))


def bench(outdir, cases=CASES) -> list:
    outdir = Path(outdir)
    rows = [one(*c) for c in cases]
    (outdir / "soc_bench.json").write_text(json.dumps(rows, indent=1) + "\n")
    lines = ["# Networks on the whole simulated SoC of the ulx3s-85f configuration", "",
             __doc__.split("\n\n", 1)[1].strip().replace("\n", " "), "",
             "Written by `blockfuse bench soc`. *RTL* columns are the controller's counters read "
             "over STATUS; *emulator* the program emulator on the same program, whose cycles "
             "are the cost model's (`host.runtime.emulator.predict`: engine runs from the "
             "engine's model, transfers from the DMA model `host/compiler/dma.py`). "
             "*Simulated cycles/s*: the RTL's cycles over the wall time from START until a "
             "STATUS poll found the SoC idle (not the input and output transfers, nor the "
             "emulator's check), with the simulator running free.", "",
             "| network | plan | bit-exact | cycles START→DONE (RTL) | emulator cycles (RTL − "
             "emulator) | engine (RTL = emulator) | "
             "DMA (RTL) | PE utilisation | bytes read / written (RTL = emulator) | frames/s at "
             "100 MHz | simulated cycles/s |",
             "|---|---|:---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        same = (r["engine_cycles"] == r["emu"]["engine_cycles"]
                and (r["read"], r["written"]) == (r["emu"]["read"], r["emu"]["written"]))
        net = f"{r['network']} {r['resolution'][0]}×{r['resolution'][1]}" + (
            f" to {r['until']}" if r["until"] else "")
        lines.append(
            f"| {net} | {r['schedule']} | {'yes' if r['bit_exact'] else '**no**'} | "
            f"{r['cycles']:,} | {r['emu']['cycles']:,} "
            f"({100 * (r['cycles'] / r['emu']['cycles'] - 1):+.2f} %) | "
            f"{r['engine_cycles']:,} ({'=' if same else '≠'}) | "
            f"{r['dma_cycles']:,} | {100 * r['utilisation']:.1f} % | {r['read']:,} / "
            f"{r['written']:,} | {r['fps']:,.2f} | {r['cycles_per_second']:,} |")
    (outdir / "soc_bench.md").write_text("\n".join(lines) + "\n")
    return [outdir / "soc_bench.md", outdir / "soc_bench.json"]
