"""``blockfuse demo``: a zoo network on the accelerator RTL (Verilator), checked against the golden
model, with cycles, utilisation and what that means in frames per second on a board."""
from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import numpy as np

from host.errors import UserError


def register(sub):
    p = sub.add_parser("demo", help="simulate a zoo network on the engine RTL and compare with the golden model")
    p.add_argument("--model", default="zoo:digits", help="zoo network (default: zoo:digits)")
    p.add_argument("--resolution", type=int, default=None, metavar="N",
                   help="run the network at N×N input (default: the network's own)")
    p.add_argument("--schedule", default="fused", choices=["layer", "fused", "block"])
    p.add_argument("--board", default="ulx3s-85f", help="board for the frames-per-second estimate")
    p.add_argument("--line-mode", action="store_true",
                   help="run the engine in line mode: the row feeder streams each input row "
                        "once from the map memory into a ring of line memories (docs/engine.md)")
    p.set_defaults(func=run)


def run(args) -> int:
    from host.runtime import golden
    from host.model import zoo
    from host.compiler.boards import get_board
    from host.model.builder import smooth_input
    from host.cli.run import choose_plan

    try:
        from sim.engine_sim import LINE_CONFIG, EngineSim
    except ImportError as e:                       # pragma: no cover - engine not built yet
        raise UserError(f"the RTL engine simulation is not available ({e})")
    name = args.model.removeprefix("zoo:")
    graph = zoo.get(name, resolution=args.resolution) if args.resolution else zoo.get(name)
    board = get_board(args.board)
    x = smooth_input(graph, seed=0)
    plan, how = choose_plan(graph, args.schedule, None, board.name, None)   # as `blockfuse run`
    print(f"blockfuse demo: {name} {graph.input_tensor.shape} — {graph.total_macs / 1e6:.2f} M MACs, "
          f"schedule {args.schedule} ({how})")
    t0 = time.perf_counter()
    want = golden.run(graph, x, plan=plan)
    t_golden = time.perf_counter() - t0
    engine = EngineSim(LINE_CONFIG if args.line_mode else None)
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
    line = args.line_mode
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
    # On the board the array has board.pes PEs; at the same utilisation the layer cycles scale by
    # the PE ratio (compute only: transfers overlap with compute in the fused schedule).
    board_cycles = cycles * pes / board.pes
    fps = board.clock_hz / board_cycles if board_cycles else float("inf")
    print(f"on {board.name} ({board.pes} PEs at {board.clock_hz / 1e6:.0f} MHz), compute-bound: "
          f"{board_cycles:,.0f} cycles/frame → {fps:,.0f} frames/s")
    engine_mhz = _engine_fmax(board.name)
    if engine_mhz is not None and engine_mhz < board.clock_hz / 1e6:
        print(f"  (that assumes the engine at the board clock; the engine alone synthesised for "
              f"{board.name} reaches {engine_mhz:.1f} MHz so far → "
              f"{fps * engine_mhz * 1e6 / board.clock_hz:,.0f} frames/s: docs/engine.md)")
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
