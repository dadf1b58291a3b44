"""``blockfuse demo``: a zoo network on the accelerator RTL (Verilator), checked against the golden
model, with cycles, utilisation and what that means in frames per second on a board.

On a board configuration the network is compiled into a program and run on the whole simulated
SoC (link, controller, engine; the program's image through the simulation back door, the input,
START, STATUS and the output over the protocol): the totals are the controller's counters.  A
simulation-only engine (``--engine``, ``--line-mode``) runs the engine layer by layer instead."""
from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import numpy as np

from host.cli.run import add_engine_option, engine_config
from host.errors import UserError


def register(sub):
    p = sub.add_parser("demo", help="simulate a zoo network on the engine RTL and compare with the golden model")
    p.add_argument("--model", default="zoo:digits", help="zoo network (default: zoo:digits)")
    p.add_argument("--resolution", type=int, default=None, metavar="N",
                   help="run the network at N×N input (default: the network's own)")
    p.add_argument("--schedule", default="fused", choices=["layer", "fused", "block"])
    p.add_argument("--board", default="ulx3s-85f",
                   help="board whose accelerator configuration is simulated (default: ulx3s-85f)")
    p.add_argument("--until", metavar="LAYER",
                   help="run the network up to this layer (e.g. pool5: VGG16's classifier does not "
                        "fit the ULX3S's 32 MB)")
    add_engine_option(p)
    p.set_defaults(func=run)


def run(args) -> int:
    from host.runtime import golden
    from host.model import zoo
    from host.compiler.boards import get_board
    from host.model.builder import smooth_input
    from host.cli.run import choose_plan

    from sim.engine_layers import EngineSim

    config = engine_config(args)
    name = args.model.removeprefix("zoo:")
    graph = zoo.get(name, resolution=args.resolution) if args.resolution else zoo.get(name)
    board = get_board(args.board)
    x = smooth_input(graph, seed=0)
    plan, how, _ = choose_plan(graph, args.schedule, None, board.name, None)   # as `blockfuse run`
    print(f"blockfuse demo: {name} {graph.input_tensor.shape} — {graph.total_macs / 1e6:.2f} M MACs, "
          f"schedule {args.schedule} ({how})")
    t0 = time.perf_counter()
    want = golden.run(graph, x, plan=plan)
    t_golden = time.perf_counter() - t0
    print(f"engine: {config.name} — {config.engine.rows}×{config.engine.cols} PEs"
          + (f" at {config.clock_mhz:.0f} MHz, the {config.name} board's configuration"
             if config.board else f" ({config.note})"))
    if config.board:
        return _whole_soc(args, graph, plan, x, config)
    if args.until:
        raise UserError("--until applies to board configurations (the whole SoC) only")
    engine = EngineSim(config.engine)
    t0 = time.perf_counter()
    from tqdm import tqdm
    with tqdm(total=len(graph.nodes), desc="RTL simulation", unit="node", file=sys.stderr,
              leave=False) as bar:
        got = golden.run(graph, x, plan=plan, conv_fn=engine.conv_fn, fc_fn=engine.fc_fn,
                         conv_pool_fn=engine.conv_pool_fn, progress=bar.update)
    t_sim = time.perf_counter() - t0
    exact = np.array_equal(got, want)
    pes = engine.stats[0]["pes"] if engine.stats else 0
    wn = max([16] + [len(s["name"]) + 2 for s in engine.stats])
    line = bool(config.engine.line_rows)
    print(f"{'layer':<{wn}}{'MACs':>12}{'cycles':>12}{'utilisation':>13}"
          + (f"{'map words read':>16}" if line else ""))
    for s in engine.stats:
        print(f"{s['name']:<{wn}}{s['macs']:>12,}{s['cycles']:>12,}{s['utilisation']:>12.1%}"
              + (f"{s.get('fetched', 0):>16,}" if line else ""))
    macs = sum(s["macs"] for s in engine.stats)
    cycles = sum(s["cycles"] for s in engine.stats)
    util = macs / (pes * cycles) if cycles else 0.0
    print(f"{'total':<{wn}}{macs:>12,}{cycles:>12,}{util:>12.1%}"
          + (f"{sum(s.get('fetched', 0) for s in engine.stats):>16,}" if line else ""))
    if line:
        print("(line mode: each input row is read once from the map memory into the line "
              "memories; cycles include waiting for it)")
    if any("+" in s["name"] for s in engine.stats):
        print("(conv+pool: the 2×2 max-pool ran in the engine's output stage)")
    print(f"engine RTL: {pes} PEs; golden model {t_golden:.2f} s; RTL simulation {t_sim:.1f} s of "
          f"wall time (one Verilator run per layer; the first run also builds the model)")
    if config.board:
        fps = config.clock_mhz * 1e6 / cycles if cycles else float("inf")
        print(f"on {config.name} at {config.clock_mhz:.0f} MHz, engine cycles only (the host "
              f"loads every layer; transfers not counted): {cycles:,} cycles/frame → "
              f"{fps:,.1f} frames/s")
        engine_mhz = _engine_fmax(config.name)
        if engine_mhz is not None and engine_mhz < config.clock_mhz:
            print(f"  (the engine alone synthesised for {config.name} reaches {engine_mhz:.1f} "
                  f"MHz so far → {fps * engine_mhz / config.clock_mhz:,.1f} frames/s: "
                  f"docs/engine.md)")
    else:
        print(f"({config.name} is a simulation-only engine that fits no board: no frame rate "
              f"is given for it)")
    print("bit-exact with the golden model: " + ("YES" if exact else "NO"))
    return 0 if exact else 1


def _engine_fmax(board: str):
    """The engine-alone Fmax of ``docs/engine_synth_BOARD.json`` (``hw.engine.synth``), if any."""
    f = Path(__file__).resolve().parents[2] / "docs" / f"engine_synth_{board}.json"
    try:
        rep = json.loads(f.read_text())
        return min(v["achieved_mhz"] for v in rep["fmax"].values())
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _whole_soc(args, graph, plan, x, config) -> int:
    """The network as a program on the whole simulated SoC of ``config``."""
    from host.compiler.program import compile_program
    from host.runtime import golden
    from host.runtime.program_device import SimulatedAccelerator
    t0 = time.perf_counter()
    program = compile_program(graph, config, plan, until=args.until)
    t_compile = time.perf_counter() - t0
    values = golden.run(graph, x, plan=plan, keep=bool(args.until))
    want = values[graph.node(args.until).output] if args.until else values
    print(f"program: {program.n_insns:,} instructions, {len(program.consts) / 1e6:.2f} MB of "
          f"weights and tables, {program.size / 1e6:.2f} MB of off-chip memory"
          + (f", up to {args.until}" if args.until else "") + f" (compiled in {t_compile:.1f} s)")
    from host.runtime.program_device import soc_config
    soc = soc_config(config)
    print("whole SoC under Verilator (link, controller, engine; memory: "
          f"{soc.memory_description}); the program image enters "
          + ("through the simulation back door" if soc.has_backdoor else "over the protocol")
          + ", the input, START, STATUS and the output cross the protocol")
    t0 = time.perf_counter()
    sa = SimulatedAccelerator(config, program)
    t_up = time.perf_counter() - t0
    try:
        t0 = time.perf_counter()
        got = sa.run(x)
        t_run = time.perf_counter() - t0
    finally:
        sa.close()
    f = sa.frames[-1]
    exact = bool(got.shape == want.shape and np.array_equal(got, want))
    pes = config.engine.rows * config.engine.cols
    macs = sum(program.macs.values())
    wn = max([16] + [len(s["name"]) + 2 for s in sa.stats])
    print(f"{'layer':<{wn}}{'MACs':>14}{'cycles':>13}{'engine':>13}{'utilisation':>13}")
    for s in sa.stats:
        print(f"{s['name']:<{wn}}{s['macs']:>14,}{s['cycles']:>13,}{s['engine_cycles']:>13,}"
              f"{s['utilisation']:>12.1%}")
    print("(per layer: the program emulator's split of the same program; totals below: the "
          "controller's counters read over STATUS)")
    util = macs / (pes * f["cycles"]) if f["cycles"] else 0.0
    print(f"total: {f['cycles']:,} cycles START to DONE ({f['busy']['engine']:,} engine, "
          f"{f['busy']['dma']:,} DMA), {macs:,} MACs, PE utilisation {util:.1%}")
    print(f"off-chip bytes: {f['read']:,} read, {f['written']:,} written "
          f"(+ {f['fetched']:,} of instructions); {f.get('act', 0):,} bytes of the fused groups' "
          f"maps moved through the activation buffer, on chip")
    fps = config.clock_mhz * 1e6 / f["cycles"] if f["cycles"] else float("inf")
    print(f"on {config.name} at {config.clock_mhz:.0f} MHz: {fps:,.1f} frames/s"
          + (" (with this simulation's one-cycle memory)" if soc.memory == "ram" else ""))
    print(f"simulation: start {t_up:.1f} s (build cached per configuration), run {t_run:.1f} s "
          f"({f['seconds']:.1f} s START to DONE → {f['cycles'] / f['seconds']:,.0f} cycles/s)")
    print("bit-exact with the golden model: " + ("YES" if exact else "NO"))
    return 0 if exact else 1
