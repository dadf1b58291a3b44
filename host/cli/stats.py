"""``blockfuse run … --stats FILE.json``: what a run cost, beside what the cost model predicted.

Keys (per frame: a batch of N images reports the mean of its N runs):

``board``, ``engine``, ``clock_mhz``, ``pe_count``, ``target``, ``schedule``, ``frames``
    where it ran;
``cycles``, ``macs``, ``utilisation``
    on a board configuration (a network program): its cycles from START to DONE, DMA
    included — ``emu`` the emulator's, ``sim`` and ``serial`` the controller's counters; with a
    simulation-only engine (``--engine sim-8x8``, ``sim``): the engine's cycles (each engine run
    from ``start`` to ``done``); the MACs of the layers the accelerator ran, MACs / (PEs ×
    cycles);
``offchip_bytes`` {``read``, ``written``}
    a network program: the data bytes its DMA read from and wrote to off-chip memory
    (instruction fetches apart, in ``instruction_bytes``); a simulation-only engine: bytes moved
    into and out of the engine's memories (input map, weights, tables; outputs);
``offchip_map_bytes``, ``offchip_map_bytes_per_mac`` (network programs)
    the feature-map bytes the program moves off chip (read and written; weights, tables and
    instructions apart), in all and per MAC;
``onchip_buffer_bytes``
    the configuration's map, weight and output memories;
``layers``
    per layer ``name``, ``cycles``, ``macs``, ``offchip_bytes`` (``emu``: also
    ``engine_cycles``, the engine runs' share);
``busy`` (``emu``)
    cycles each unit (``dma``, ``engine``) worked;
``predicted``
    ``cycles``, ``offchip_bytes``: for a network program (``emu``, ``sim`` on a board
    configuration, ``serial``) the program's cost counted from its instructions before it ran
    (``host.runtime.emulator.predict``), with the scheduler's estimate under ``scheduler``;
    otherwise the scheduler's cost model for the same plan and board;
``source``, ``note``
    what measured the figures and what they leave out.

With ``--target golden`` nothing is measured: the figures are the cost model's (``source``
says so). With a simulation-only engine the host loads every engine run and computes pooling,
additions and concatenations itself between runs: ``sim``'s ``cycles`` are engine cycles only.
"""
from __future__ import annotations


def _predicted(report: dict) -> dict:
    off = report["offchip_bytes"]
    return dict(cycles=int(report["cycles"]),
                offchip_bytes=dict(read=int(off["weights"] + off["activations_in"]),
                                   written=int(off["activations_out"]), total=int(off["total"])),
                layers=[dict(name=r["name"], cycles=int(r["cycles"]), macs=int(r["macs"]))
                        for r in report["layers"]])


def run_stats(graph, plan, report, args, target: tuple, engine, record, frames: int,
              counters: list | None = None) -> dict:
    """The ``--stats`` document of one ``blockfuse run``; ``report`` is the scheduler's report of
    the plan run executed (``choose_plan``), None when the plan did not come from the scheduler:
    then the prediction is that of the scheduler's own plan for the schedule, and says so."""
    from hw.configs import fit_report, get_config
    cfg = engine or get_config(args.board)
    pes = cfg.engine.rows * cfg.engine.cols
    own = report is not None
    if not own:
        from host.compiler.scheduler import plan_network
        _, report = plan_network(graph, args.board, plan.schedule)
    predicted = _predicted(report)
    out = dict(board=args.board, engine=cfg.name, clock_mhz=cfg.clock_mhz, pe_count=pes,
               target=args.target, schedule=plan.schedule, frames=frames,
               onchip_buffer_bytes=fit_report(cfg)["onchip_bytes"])
    if target[0] == "golden" or not record:
        layers = [dict(name=r["name"], cycles=r["cycles"], macs=r["macs"],
                       offchip_bytes=None) for r in predicted["layers"]]
        cycles = predicted["cycles"]
        macs = sum(r["macs"] for r in layers)
        off = dict(read=predicted["offchip_bytes"]["read"],
                   written=predicted["offchip_bytes"]["written"])
        out["source"] = "cost model (the golden target measures nothing)"
    else:
        merged: dict = {}
        for r in record:                 # N images: the same layers N times
            m = merged.setdefault(r["name"], dict(name=r["name"], cycles=0, macs=0,
                                                  offchip_bytes=dict(read=0, written=0)))
            m["cycles"] += r["cycles"]
            m["macs"] += r["macs"]
            m["offchip_bytes"]["read"] += r["offchip_bytes"]["read"]
            m["offchip_bytes"]["written"] += r["offchip_bytes"]["written"]
            if "engine_cycles" in r:
                m["engine_cycles"] = m.get("engine_cycles", 0) + r["engine_cycles"]
        layers = []
        for m in merged.values():
            layers.append(dict(name=m["name"], cycles=m["cycles"] // frames,
                               macs=m["macs"] // frames,
                               offchip_bytes={k: v // frames for k, v in m["offchip_bytes"].items()})
                          | ({"engine_cycles": m["engine_cycles"] // frames}
                             if "engine_cycles" in m else {}))
        macs = sum(r["macs"] for r in layers)
        if counters:                     # emu: the program's counters, START to DONE
            cycles = sum(f["cycles"] for f in counters) // frames
            off = dict(read=sum(f["read"] for f in counters) // frames,
                       written=sum(f["written"] for f in counters) // frames)
            out["instruction_bytes"] = sum(f["fetched"] for f in counters) // frames
            # feature-map bytes off chip (read and written; weights and tables apart), and per
            # MAC: what row reuse and fusion leave of the maps' traffic
            maps = sum(f["traffic"]["map"] for f in counters) // frames
            out["offchip_map_bytes"] = maps
            out["offchip_map_bytes_per_mac"] = maps / macs if macs else 0.0
            # maps a fused group kept on chip, moved between the activation buffer and the
            # engine's memories (never off chip)
            out["activation_buffer_traffic_bytes"] = sum(f.get("act", 0)
                                                         for f in counters) // frames
            out["busy"] = {u: sum(f["busy"][u] for f in counters) // frames
                           for u in ("dma", "engine")}
            # cycles the controller stalled waiting for the engine (a CONV behind the run before
            # it, a sync bit, HALT)
            out["stalled"] = {"controller_waiting_for_engine":
                              sum(f.get("wait", 0) for f in counters) // frames}
            if target[0] == "serial":
                out["source"] = ("serial: the board's controller counters read over STATUS; the "
                                 "per-layer split is the program emulator's")
            elif target[0] == "sim":
                from host.runtime.program_device import soc_config
                out["source"] = ("sim: the whole SoC under Verilator (link, controller, engine; "
                                 f"memory: {soc_config(cfg).memory_description}), driven over "
                                 "the protocol; totals are the controller's counters read over "
                                 "STATUS, the per-layer split is the program emulator's")
            else:
                out["source"] = ("emu: the network program executed by the program emulator; "
                                 "engine runs take the RTL's cycles, transfers the DMA model's "
                                 "(host/compiler/dma.py)")
            out["note"] = ("the DMA works beside the engine (double-buffered engine "
                           "memories); a group of several layers runs block by block with its "
                           "intermediate maps in the activation buffer when they fit it; "
                           "'predicted' is the compiled program's cost (the scheduler's own "
                           "estimate beside it)")
        else:
            cycles = sum(r["cycles"] for r in layers)
            off = dict(read=sum(r["offchip_bytes"]["read"] for r in layers),
                       written=sum(r["offchip_bytes"]["written"] for r in layers))
            out["source"] = "sim: cycles counted by the engine RTL"
            out["note"] = ("engine runs only: the host loads every engine run and computes "
                           "pooling, additions and concatenations between them (no on-chip "
                           "controller yet)")
        if not cfg.board:
            out["note"] += f"; {cfg.name} is a simulation-only engine that fits no board"
    out.update(cycles=int(cycles), macs=int(macs),
               utilisation=macs / (pes * cycles) if cycles else 0.0,
               offchip_bytes=off, layers=layers,
               predicted=dict(cycles=predicted["cycles"],
                              offchip_bytes=predicted["offchip_bytes"]))
    if not own and (args.block or args.plan):
        out["predicted"]["plan"] = ("the scheduler's own plan for this schedule, not the "
                                    "--block/--plan one the run executed")
    progs = [f["predicted"] for f in counters or [] if "predicted" in f]
    if progs:
        # the compiled program's own cost (its instructions and descriptors, before it ran):
        # the prediction the run is held to; the scheduler's estimate stays beside it
        out["predicted"] = dict(
            cycles=progs[0]["cycles"],
            offchip_bytes=dict(read=progs[0]["read"], written=progs[0]["written"]),
            source="the compiled program's instructions and descriptors "
                   "(host.runtime.emulator.predict); transfers from the controller's cycle "
                   "model (host/compiler/dma.py)",
            scheduler=out["predicted"])
    return out
