"""``blockfuse bench emu``: whole networks at full size on a board's engine, through ``--target
emu`` (the engine runs ``sim`` would make, through the engine's NumPy model): cycles,
utilisation, the cost model's prediction, memory traffic, bit-exactness with the golden model
under the same plan, and how long the emulation takes. Writes ``docs/emu_bench.md`` and
``docs/emu_bench.json``.

Layers the engine cannot hold run on the golden model and are listed (VGG16's fully connected
layers: fc6's 25,088 inputs exceed the input memory). The figures are engine runs only: the host
still loads every run and pools between layers.
"""
from __future__ import annotations

import json
import time
from pathlib import Path

CASES = [("vgg16", "block"), ("vgg16", "layer"), ("mobilenet_v1", "fused")]


def one(name: str, schedule: str, board: str = "ulx3s-85f", resolution=None) -> dict:
    """One network under one schedule on ``board``'s engine, emulated (see the module doc)."""
    from host.cli.run import choose_plan
    from host.compiler.scheduler import plan_network
    from host.model import zoo
    from host.model.builder import smooth_input
    from host.runtime import golden
    from hw.configs import get_config
    from sim.engine_layers import EngineSim
    cfg = get_config(board)
    g = zoo.get(name, resolution) if resolution else zoo.get(name)
    x = smooth_input(g, seed=0)
    plan, _, report = choose_plan(g, schedule, None, board, None)
    if report is None:                       # the layer schedule: the scheduler's cost of it
        _, report = plan_network(g, board, schedule)
    eng = EngineSim(cfg.engine, emulated=True)
    on_host = []

    def fc_fn(node, xv, zx, zy):            # an FC the engine cannot hold runs on the golden model
        try:
            return eng.fc_fn(node, xv, zx, zy)
        except ValueError:
            on_host.append(node.name)
            return golden.fc_layer(node, xv, zx, zy)
    t0 = time.perf_counter()
    got = golden.run(g, x, plan=plan, conv_fn=eng.conv_fn, fc_fn=fc_fn,
                     conv_pool_fn=eng.conv_pool_fn)
    seconds = time.perf_counter() - t0
    t0 = time.perf_counter()
    want = golden.run(g, x, plan=plan)
    golden_seconds = time.perf_counter() - t0
    ran = {s["name"].split("+")[0] for s in eng.stats}
    cycles = sum(s["cycles"] for s in eng.stats)
    macs = sum(s["macs"] for s in eng.stats)
    pes = cfg.engine.rows * cfg.engine.cols
    predicted = sum(r["cycles"] for r in report["layers"] if r["name"] in ran)
    return dict(network=name, schedule=schedule, board=board, bit_exact=bool((got == want).all()),
                engine_cycles=cycles, engine_macs=macs, utilisation=macs / (pes * cycles),
                predicted_cycles=predicted,
                bytes_read=sum(s["offchip_bytes"]["read"] for s in eng.stats),
                bytes_written=sum(s["offchip_bytes"]["written"] for s in eng.stats),
                planned_offchip=report["offchip_bytes"], on_host=on_host,
                seconds=round(seconds, 1), golden_seconds=round(golden_seconds, 1))


def bench(outdir) -> list:
    outdir = Path(outdir)
    rows = [one(n, s) for n, s in CASES]
    (outdir / "emu_bench.json").write_text(json.dumps(rows, indent=1) + "\n")
    lines = ["# Whole networks on the ulx3s-85f engine, emulated (`--target emu`)", "",
             __doc__.split("\n\n", 1)[1].strip().replace("\n", " "), "",
             "Written by `blockfuse bench emu`.", "",
             "| network (224×224) | plan | bit-exact | engine cycles | PE utilisation | cost model | "
             "engine-memory bytes read | planned off-chip bytes | on the host | emulation |",
             "|---|---|:---:|---:|---:|---:|---:|---:|---|---:|"]
    for r in rows:
        dev = 100 * (r["predicted_cycles"] - r["engine_cycles"]) / r["engine_cycles"]
        lines.append(
            f"| {r['network']} | {r['schedule']} | {'yes' if r['bit_exact'] else '**no**'} | "
            f"{r['engine_cycles']:,} | {100 * r['utilisation']:.1f} % | "
            f"{r['predicted_cycles']:,} ({dev:+.1f} %) | {r['bytes_read']:,} | "
            f"{r['planned_offchip']['total']:,} | {', '.join(r['on_host']) or '—'} | "
            f"{r['seconds']} s (golden {r['golden_seconds']} s) |")
    lines += ["", "The cost model's cycles are those of the layers the engine ran. "
              "*Engine-memory bytes read* is what the host loads into the engine's memories for "
              "all its runs (weights again for every output tile): the interim's traffic, "
              "against the scheduler's plan for fused execution in the next column."]
    (outdir / "emu_bench.md").write_text("\n".join(lines) + "\n")
    return [outdir / "emu_bench.md", outdir / "emu_bench.json"]
