"""``blockfuse plan MODEL --board BOARD --schedule layer|fused|block [--json FILE] [--plot FILE.png]``.

Plans a network for a board (``host.compiler.scheduler.plan_network``) and prints a per-layer table of
MACs, off-chip bytes (weights, activations in/out), on-chip peak and cycles, then the totals and
the estimated frame rate.  ``--json`` writes the full report (the README's keys plus the plan's
groups and block sizes, which ``plan_from_json`` turns back into a :class:`host.compiler.plan.Plan`);
``--plot`` draws per-layer off-chip traffic and on-chip use under all three schedules.

MODEL is ``zoo:NAME[@RES]`` (RES = N or HxW; planned from shapes only, no weights drawn) or a
quantised ONNX file.
"""
from __future__ import annotations

import json
import os
import tempfile

from host.errors import UserError
from host.compiler.plan import SCHEDULES, Group, Plan


def register(sub):
    from host.compiler.boards import names as board_names
    from host.compiler.scheduler import DEFAULT_SLACK, DEFAULT_TRADE

    p = sub.add_parser("plan", help="choose fusion groups and block sizes for a board; report costs",
                       description="Plan MODEL for BOARD: fusion groups, block sizes, off-chip traffic, "
                                   "on-chip peak, cycles and estimated fps.")
    p.add_argument("model", metavar="MODEL", help="quantised ONNX file, or zoo:NAME[@RES]")
    p.add_argument("--board", default="ulx3s-85f", metavar="BOARD",
                   help=f"target board ({', '.join(board_names())}; default ulx3s-85f)")
    p.add_argument("--schedule", default="block", choices=SCHEDULES,
                   help="layer-by-layer, exact fusion with halos, or block convolution (default: block)")
    p.add_argument("--budget", type=int, metavar="BYTES",
                   help="override the board's on-chip byte budget")
    p.add_argument("--slack", type=float, default=DEFAULT_SLACK, metavar="S",
                   help="default objective: among the plans whose total off-chip traffic and time are "
                        "within S (a fraction) of the least-total-traffic plan's, the least activation "
                        f"bytes + weight bytes / R (default {DEFAULT_SLACK}; 0: least total traffic)")
    p.add_argument("--trade", type=float, default=DEFAULT_TRADE, metavar="R",
                   help="weight bytes worth re-reading to keep one feature-map byte on chip "
                        f"(default {DEFAULT_TRADE:g}; inf: least feature-map traffic within the slack)")
    p.add_argument("--weight-cost", type=float, default=None, metavar="F",
                   help="instead: minimise activation bytes + F x weight bytes (1: total off-chip "
                        "traffic; 0: keep feature maps on chip whatever the weight re-reads)")
    p.add_argument("--objective", default="traffic", choices=("traffic", "time"),
                   help="off-chip traffic (default, as above) or the estimated time per frame")
    p.add_argument("--json", metavar="FILE", help="write the plan and its costs as JSON")
    p.add_argument("--plot", metavar="FILE.png",
                   help="plot per-layer off-chip traffic and on-chip use for the three schedules")
    p.add_argument("--quiet", action="store_true", help="totals only, no per-layer table")
    p.add_argument("--program", action="store_true",
                   help="also compile the plan into the board configuration's network program "
                        "and print its cost, counted from its instructions: the cycles and "
                        "off-chip bytes `blockfuse run --target emu` counts")
    p.add_argument("--scheduler", action="store_true",
                   help="plan with the scheduler's board model (one on-chip budget) even for a "
                        "board with an accelerator configuration, whose plan is otherwise "
                        "searched on its compiled program's cost, as `blockfuse run` does; "
                        "implied by --budget, --slack, --trade, --weight-cost, --objective and "
                        "--plot")
    p.set_defaults(func=handler)


def load_graph(spec: str):
    """An IR graph for planning: zoo networks from shapes only (fast), ONNX files imported."""
    if spec.startswith("zoo:"):
        from host.model import zoo

        name, resolution = zoo.parse_spec(spec[4:])
        return zoo.shape_graph(name, resolution)
    if not os.path.exists(spec):
        raise UserError(f"model file {spec!r} not found (give an ONNX path or zoo:NAME)")
    from host.model.onnx_import import load_onnx

    return load_onnx(spec)


def plan_from_json(data, graph=None) -> Plan:
    """The :class:`Plan` of a ``blockfuse plan --json`` report (dict or file path)."""
    if isinstance(data, (str, os.PathLike)):
        try:
            with open(data) as f:
                data = json.load(f)
        except (OSError, ValueError) as e:
            raise UserError(f"cannot read plan {data}: {e}")
    try:
        plan = Plan(data["schedule"], [Group(list(g["nodes"]), tuple(g["block"]) if g.get("block") else None)
                                       for g in data["groups"]])
    except (KeyError, TypeError) as e:
        raise UserError(f"not a blockfuse plan (missing {e})")
    return plan.check(graph) if graph is not None else plan


def handler(args) -> int:
    from host.compiler.boards import get_board
    from host.compiler.scheduler import plan_network

    board = get_board(args.board)
    if args.budget is not None and args.budget < 1:
        raise UserError(f"--budget {args.budget}: must be a positive number of bytes")
    for path, what in ((args.json, "--json"), (args.plot, "--plot")):
        if path and os.path.dirname(os.path.abspath(path)) and not os.path.isdir(os.path.dirname(os.path.abspath(path))):
            raise UserError(f"{what} {path}: directory does not exist")
    graph = load_graph(args.model)
    if args.weight_cost is not None and args.weight_cost < 0:
        raise UserError(f"--weight-cost {args.weight_cost}: must be >= 0")
    if args.slack < 0:
        raise UserError(f"--slack {args.slack}: must be >= 0")
    if not args.trade >= 1:
        raise UserError(f"--trade {args.trade}: must be >= 1")
    opts = dict(budget=args.budget, weight_cost=args.weight_cost, objective=args.objective,
                slack=args.slack, trade=args.trade)
    from host.cli.run import board_config
    from host.compiler.scheduler import DEFAULT_SLACK, DEFAULT_TRADE
    modelled = (args.scheduler or args.budget is not None or args.weight_cost is not None
                or args.objective != "traffic" or args.slack != DEFAULT_SLACK
                or args.trade != DEFAULT_TRADE or args.plot)
    acfg = board_config(args.board)
    if acfg is not None and not modelled:
        done = program_handler(args, acfg, graph)
        if done is not None:
            return done
    plan, report = plan_network(graph, board, args.schedule, **opts)
    print(format_report(report, per_layer=not args.quiet))
    if args.program:
        report["program"] = program_cost(graph, plan, args.board)
        print(format_program_cost(report["program"]))
    if args.json:
        write_json_atomic(args.json, report)
        print(f"wrote {args.json}")
    if args.plot:
        reports = {s: (report if s == args.schedule else
                       plan_network(graph, board, s, **opts)[1])
                   for s in SCHEDULES}
        plot_schedules(reports, args.plot, title=f"{graph.name} on {board.name}")
        print(f"wrote {args.plot}")
    return 0


def program_handler(args, acfg, graph) -> int | None:
    """``blockfuse plan`` for a board with an accelerator configuration: the plan ``run``
    executes (``host.compiler.program_plan``), each group's cost and the whole program's, from
    its instructions.  None when the configuration's program cannot run the network (the
    caller then plans with the scheduler's board model, and says so).  ``graph``: the one
    ``load_graph`` read — a zoo network's is shapes only, so it is built with its weights."""
    from host.cli.run import load_model, program_plan
    from host.compiler.plan import PlanError
    from host.compiler.program import ProgramError
    if args.model.startswith("zoo:"):
        graph = load_model(args.model)
    try:
        plan, costs = program_plan(graph, acfg, args.schedule)
    except (PlanError, ProgramError) as e:
        print(f"the {acfg.name} configuration's program cannot run {graph.name}: {e}; "
              f"the scheduler's plan for the board model follows")
        return None
    report = dict(model=graph.name, board=args.board, configuration=acfg.name,
                  schedule=args.schedule, planner="program",
                  input_shape=list(graph.input_tensor.shape),
                  groups=[dict(g.to_json(), index=k) for k, g in enumerate(plan.groups)])
    by_first = {c.nodes[0]: c for c in costs}
    lines = []
    if not args.quiet:
        hdr = (f"{'grp':>3} {'layers':<28} {'block':>9} {'cycles':>13} {'map bytes':>12} "
               f"{'off-chip bytes':>15}")
        lines += [hdr, "-" * len(hdr)]
    for k, g in enumerate(plan.groups):
        c = by_first.get(g.nodes[0])
        if c is None:
            continue
        report["groups"][k].update(cycles=c.cycles, map_bytes=c.map_bytes,
                                   offchip_bytes=c.offchip_bytes)
        if not args.quiet:
            names = g.nodes[0] if len(g.nodes) == 1 else f"{g.nodes[0]} … {g.nodes[-1]}"
            blk = "x".join(map(str, g.block)) if g.block else "whole"
            lines.append(f"{k:>3} {names[:28]:<28} {blk:>9} {c.cycles:>13,} {c.map_bytes:>12,} "
                         f"{c.offchip_bytes:>15,}")
    fused = sum(len(g.nodes) > 1 for g in plan.groups)
    lines += ["" if lines else None,
              f"{graph.name} {'x'.join(map(str, graph.input_tensor.shape))} on the {acfg.name} "
              f"configuration, schedule {args.schedule}: {len(plan.groups)} groups ({fused} "
              f"fused), planned on the compiled program's cost"]
    if costs:
        lines.append(f"  layer groups   {sum(c.cycles for c in costs):,} cycles, "
                     f"{sum(c.map_bytes for c in costs):,} bytes of maps and "
                     f"{sum(c.offchip_bytes for c in costs):,} in all off chip (each group "
                     f"as it adds to the layer before it)")
    print("\n".join(x for x in lines if x is not None))
    try:
        report["program"] = program_cost(graph, plan, args.board)
        print(format_program_cost(report["program"]))
    except ProgramError as e:
        print(f"  program        the whole network does not compile: {e}")
        report["program"] = None
    if args.json:
        write_json_atomic(args.json, report)
        print(f"wrote {args.json}")
    return 0


def program_cost(graph, plan, board: str) -> dict:
    """The plan compiled into ``board``'s network program and its cost from the instructions
    (``host.runtime.emulator.predict``): what a run of the program counts."""
    from host.compiler.program import compile_program
    from host.runtime.emulator import predict
    from hw.configs import get_config
    try:
        acfg = get_config(board)
    except KeyError:
        raise UserError(f"--program: {board} has no accelerator configuration") from None
    prog = compile_program(graph, acfg, plan)
    st = predict(prog, acfg)
    pes = acfg.engine.rows * acfg.engine.cols
    macs = sum(prog.macs.values())
    return dict(configuration=acfg.name, instructions=prog.n_insns, cycles=st.cycles,
                engine_cycles=st.busy["engine"], dma_cycles=st.busy["dma"], macs=macs,
                utilisation=macs / (pes * st.cycles) if st.cycles else 0.0,
                offchip_bytes=dict(read=st.read, written=st.written, **st.traffic),
                fps=acfg.clock_mhz * 1e6 / st.cycles if st.cycles else 0.0)


def format_program_cost(c: dict) -> str:
    t = c["offchip_bytes"]
    return (f"  program        {c['instructions']:,} instructions on the {c['configuration']} "
            f"configuration: {c['cycles']:,} cycles START to DONE ({c['engine_cycles']:,} "
            f"engine, {c['dma_cycles']:,} DMA beside it), PE utilisation "
            f"{100 * c['utilisation']:.1f} %, {t['read'] / 1e6:.2f} MB read / "
            f"{t['written'] / 1e6:.2f} MB written (maps {t['map'] / 1e6:.2f}, weights "
            f"{t['weights'] / 1e6:.2f}, tables {t['tables'] / 1e6:.2f}) → {c['fps']:.2f} fps; "
            f"what `blockfuse run --target emu` counts")


def write_json_atomic(path: str, obj) -> None:
    d = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=".plan-", suffix=".json", dir=d)
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(obj, f, indent=1)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def _b(n: float) -> str:
    """Bytes, human-readable."""
    for unit, k in (("GB", 1e9), ("MB", 1e6), ("KB", 1e3)):
        if abs(n) >= k:
            return f"{n / k:.2f} {unit}"
    return f"{int(n)} B"


def format_report(r: dict, per_layer: bool = True) -> str:
    lines = []
    if per_layer:
        hdr = (f"{'layer':<18} {'op':<8} {'grp':>3} {'block':>9} {'MMACs':>9} {'weights':>10} "
               f"{'act in':>10} {'act out':>10} {'on-chip':>10} {'kcycles':>9} {'util':>5}")
        lines += [hdr, "-" * len(hdr)]
        blocks = {g["index"]: g for g in r["groups"]}
        for lay in r["layers"]:
            g = blocks[lay["group"]]
            blk = ("x".join(str(v) for v in g["tile"]) if g["tile"] else
                   ("stream" if g["mode"] == "streamed" else "whole"))
            o = lay["offchip_bytes"]
            lines.append(f"{lay['name'][:18]:<18} {lay['op'][:8]:<8} {lay['group']:>3} {blk:>9} "
                         f"{lay['macs'] / 1e6:>9.2f} {_b(o['weights']):>10} {_b(o['activations_in']):>10} "
                         f"{_b(o['activations_out']):>10} {_b(lay['onchip_peak_bytes']):>10} "
                         f"{lay['cycles'] / 1e3:>9.1f} {lay['utilisation']:>5.2f}")
        lines.append("")
    o = r["offchip_bytes"]
    fused = sum(1 for g in r["groups"] if len(g["nodes"]) > 1)
    lines += [
        f"{r['model']} {'x'.join(str(v) for v in r['input_shape'])} on {r['board']}, schedule {r['schedule']}: "
        f"{len(r['groups'])} groups ({fused} fused)",
        f"  MACs           {r['total_macs'] / 1e6:.1f} M executed ({r['network_macs'] / 1e6:.1f} M in the network)",
        f"  off-chip       {_b(o['total'])}: weights {_b(o['weights'])} (model weights {_b(r['weights_bytes'])}), "
        f"activations {_b(o['activations'])} (in {_b(o['activations_in'])}, out {_b(o['activations_out'])})",
        f"  on-chip peak   {_b(r['onchip_peak_bytes'])} of {_b(r['onchip_budget_bytes'])}",
        f"  cycles         {r['cycles'] / 1e6:.2f} M (array utilisation {r['utilisation']:.2f})",
        f"  time           {r['seconds'] * 1e3:.1f} ms/frame (compute {r['compute_seconds'] * 1e3:.1f} ms, "
        f"memory {r['memory_seconds'] * 1e3:.1f} ms) → {r['fps']:.2f} fps (estimate)",
    ]
    for w in r["warnings"]:
        lines.append(f"  warning: {w}")
    return "\n".join(lines)


def plot_schedules(reports: dict, path: str, title: str = "") -> None:
    """Per-layer off-chip traffic (weights hatched over activations) and on-chip use, one
    series per schedule."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    scheds = list(reports)
    names = [lay["name"] for lay in reports[scheds[0]]["layers"]]
    x = np.arange(len(names))
    width = 0.8 / len(scheds)
    colors = {"layer": "tab:gray", "fused": "tab:blue", "block": "tab:orange"}
    fig, (ax1, ax2) = plt.subplots(2, 1, figsize=(max(8, 0.22 * len(names) + 3), 7), sharex=True)
    for k, s in enumerate(scheds):
        lays = {lay["name"]: lay for lay in reports[s]["layers"]}
        act = np.array([lays[n]["offchip_bytes"]["activations"] for n in names]) / 1e6
        wts = np.array([lays[n]["offchip_bytes"]["weights"] for n in names]) / 1e6
        tot = reports[s]["offchip_bytes"]
        label = f"{s}: {tot['total'] / 1e6:.1f} MB ({tot['activations'] / 1e6:.1f} MB act.)"
        pos = x - 0.4 + width * (k + 0.5)
        ax1.bar(pos, act, width, color=colors.get(s), label=label)
        ax1.bar(pos, wts, width, bottom=act, color=colors.get(s), alpha=0.45, hatch="//")
        on = np.array([lays[n]["onchip_peak_bytes"] for n in names]) / 1e3
        ax2.step(x, on, where="mid", color=colors.get(s), label=s)
    budget = reports[scheds[0]]["onchip_budget_bytes"] / 1e3
    ax2.axhline(budget, color="red", ls="--", lw=1, label=f"budget {budget:.0f} KB")
    ax1.set_ylabel("off-chip MB (hatched: weights)")
    ax1.set_yscale("symlog", linthresh=0.01)
    ax1.legend(fontsize=8)
    ax2.set_ylabel("on-chip peak KB")
    ax2.legend(fontsize=8)
    ax2.set_xticks(x)
    ax2.set_xticklabels(names, rotation=90, fontsize=6)
    if title:
        ax1.set_title(title)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
