"""``blockfuse run … --stats FILE.json``: what a run cost, beside what the cost model predicted.

Keys (per frame: a batch of N images reports the mean of its N runs):

``board``, ``engine``, ``clock_mhz``, ``pe_count``, ``target``, ``schedule``, ``frames``
    where it ran;
``cycles``, ``macs``, ``utilisation``
    the engine's cycles (``sim``: counted by the RTL, each engine run from ``start`` to
    ``done``), the MACs of the layers the engine ran, MACs / (PEs × cycles);
``offchip_bytes`` {``read``, ``written``}
    bytes moved into and out of the engine's memories (input map, weights, tables; outputs);
``onchip_buffer_bytes``
    the configuration's map, weight and output memories;
``layers``
    per layer ``name``, ``cycles``, ``macs``, ``offchip_bytes``;
``predicted``
    the scheduler's cost model for the same plan and board: ``cycles``, ``offchip_bytes``;
``source``, ``note``
    what measured the figures and what they leave out.

With ``--target golden`` nothing is measured: the figures are the cost model's (``source``
says so). Until the on-chip controller exists, the host loads every engine run and computes
pooling, additions and concatenations itself between runs: ``cycles`` are engine cycles only.
"""
from __future__ import annotations


def _predicted(report: dict) -> dict:
    off = report["offchip_bytes"]
    return dict(cycles=int(report["cycles"]),
                offchip_bytes=dict(read=int(off["weights"] + off["activations_in"]),
                                   written=int(off["activations_out"]), total=int(off["total"])),
                layers=[dict(name=r["name"], cycles=int(r["cycles"]), macs=int(r["macs"]))
                        for r in report["layers"]])


def run_stats(graph, plan, report, args, target: tuple, engine, record, frames: int) -> dict:
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
        layers = []
        for m in merged.values():
            layers.append(dict(name=m["name"], cycles=m["cycles"] // frames,
                               macs=m["macs"] // frames,
                               offchip_bytes={k: v // frames for k, v in m["offchip_bytes"].items()}))
        cycles = sum(r["cycles"] for r in layers)
        macs = sum(r["macs"] for r in layers)
        off = dict(read=sum(r["offchip_bytes"]["read"] for r in layers),
                   written=sum(r["offchip_bytes"]["written"] for r in layers))
        out["source"] = ("sim: cycles counted by the engine RTL" if target[0] == "sim" else
                         "emu: the engine runs sim makes, cycles of the engine's model (equal "
                         "to the RTL's)")
        out["note"] = ("engine runs only: the host loads every engine run and computes pooling, "
                       "additions and concatenations between them (no on-chip controller yet)")
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
    return out
