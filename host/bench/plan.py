"""``blockfuse bench plan``: scheduler figures → ``docs/scheduler.md`` + plots.

``bench(outdir)`` plans the zoo networks at their published input size for the ULX3S boards under
the three schedules, sweeps VGG16's on-chip budget and the default objective's slack and trade,
compares with the published fused-layer (MICRO 2016) and block-convolution (DATE 2018) figures,
times the planner, tabulates the cycle-model calibration recorded in
``scheduler_calibration.json`` (by :func:`calibrate`, which runs the RTL and takes minutes), and
writes ``scheduler.md``, ``scheduler_vgg16_85f.png``, ``scheduler_front.png``,
``scheduler_budget_sweep.png`` and ``scheduler.json`` into ``outdir``.  Everything but the
calibration is computed from the cost model of :mod:`host.compiler.cost` (estimates, not measurements on
a board).
"""
from __future__ import annotations

import json
import time
from pathlib import Path

from host.model import zoo
from host.compiler.boards import get_board, names as board_names, with_budget
from host.compiler.plan import SCHEDULES
from host.compiler.scheduler import plan_network

NETWORKS = ["vgg16", "mobilenet_v1", "shufflenet_v1", "squeezenet1_1", "resnet18"]
TABLE_BOARDS = ["ulx3s-85f", "ulx3s-25f"]
WEIGHT_COSTS = [1.0, 0.5, 0.3, 0.1, 0.03, 0.01, 0.0]
SLACKS = [0.0, 0.02, 0.05, 0.1, 0.2, 0.3, 0.5]
TRADES = [1.0, 2.0, 4.0, 8.0, float("inf")]
SWEEP_KB = [32, 48, 64, 96, 128, 192, 256, 368, 512, 768, 1024, 1536, 2048, 3072, 4096, 8192]

PUBLISHED = {
    "micro2016": "Fused-layer CNN accelerators, MICRO 2016 (Virtex-7): first 5 conv layers of VGGNet-E "
                 "fused with 362 KB on chip: off-chip feature-map traffic 77 MB → 3.6 MB per image (−95%), "
                 "32-bit values",
    "date2018": "Block convolution, DATE 2018 (ZC706, 150 MHz): VGG16 12.19 fps with all intermediate "
                "feature maps kept on chip",
    "fpga2016": "Qiu et al., FPGA 2016 (ZC706, 150 MHz): VGG16-SVD 16-bit, 4.45 fps",
}


def _mb(n):
    return n / 1e6


def _conv_part(report: dict) -> dict:
    """Traffic of VGG16's 13 conv layers and 5 pools (the feature extractor), not the FC head."""
    lays = [lay for lay in report["layers"] if lay["name"].startswith(("conv", "pool"))]
    w = sum(lay["offchip_bytes"]["weights"] for lay in lays)
    a = sum(lay["offchip_bytes"]["activations"] for lay in lays)
    return {"weights": w, "activations": a, "total": w + a}


def first5_graph(resolution=224):
    """VGGNet's first five conv layers (conv1_1 … conv3_1 with the two pools), shapes only."""
    b = zoo.ShapeBuilder("vgg_first5", (3, resolution, resolution), seed=0)
    x = b.conv(b.input, 64, 3, name="conv1_1")
    x = b.conv(x, 64, 3, name="conv1_2")
    x = b.maxpool(x, 2, name="pool1")
    x = b.conv(x, 128, 3, name="conv2_1")
    x = b.conv(x, 128, 3, name="conv2_2")
    x = b.maxpool(x, 2, name="pool2")
    b.conv(x, 256, 3, name="conv3_1")
    return b.build(calibrate=False)


def bench(outdir) -> list:
    from host.cli.plan import plot_schedules

    out = Path(outdir)
    out.mkdir(parents=True, exist_ok=True)
    data = {"tables": [], "vgg16": {}, "micro2016": {}, "sweep": [], "timing": []}
    graphs = {n: zoo.shape_graph(n) for n in zoo.names()}

    # ---- main table ------------------------------------------------------------------------
    rows = []
    for name in NETWORKS:
        for bname in TABLE_BOARDS:
            for s in SCHEDULES:
                _, r = plan_network(graphs[name], bname, s)
                _, rt = plan_network(graphs[name], bname, s, objective="time")
                _, r0 = plan_network(graphs[name], bname, s, slack=0.0)
                o = r["offchip_bytes"]
                row = dict(network=name, board=bname, schedule=s, weights=o["weights"],
                           activations=o["activations"], total=o["total"],
                           model_weights=r["weights_bytes"], onchip=r["onchip_peak_bytes"],
                           budget=r["onchip_budget_bytes"], fps=r["fps"],
                           bound="memory" if r["memory_seconds"] > r["compute_seconds"] else "compute",
                           groups=len(r["groups"]),
                           fused=sum(1 for g in r["groups"] if len(g["nodes"]) > 1),
                           macs=r["total_macs"], network_macs=r["network_macs"], fits=r["fits"],
                           warnings=r["warnings"], fps_time=rt["fps"],
                           total_time=rt["offchip_bytes"]["total"],
                           act_least=r0["offchip_bytes"]["activations"],
                           total_least=r0["offchip_bytes"]["total"], fps_least=r0["fps"])
                rows.append(row)
    data["tables"] = rows

    # ---- VGG16 targets ------------------------------------------------------------------------
    vgg = {}
    for bname in ("ulx3s-85f", "ulx3s-45f", "ulx3s-25f"):
        reps = {s: plan_network(graphs["vgg16"], bname, s)[1] for s in SCHEDULES}
        least = {s: plan_network(graphs["vgg16"], bname, s, slack=0.0)[1] for s in ("fused", "block")}
        conv = {s: _conv_part(reps[s]) for s in SCHEDULES}
        conv_least = {s: _conv_part(least[s]) for s in least}
        conv_w = sum(ni.weight.size + 8 * ni.weight.shape[0] for ni in graphs["vgg16"].nodes
                     if ni.op == "conv")
        ideal = sum(r["in_bytes"] + r["out_bytes"] for r in graphs["vgg16"].layer_stats()
                    if r["name"].startswith(("conv", "pool")))
        vgg[bname] = dict(
            conv=conv, conv_weights=conv_w, ideal_layer_act=ideal,
            least={s: dict(act_ratio=conv_least[s]["activations"] / conv["layer"]["activations"],
                           total_over_weights_all=least[s]["offchip_bytes"]["total"] / least[s]["weights_bytes"],
                           total_over_weights_conv=conv_least[s]["total"] / conv_w, fps=least[s]["fps"],
                           total=least[s]["offchip_bytes"]["total"])
                   for s in least},
            front={s: reps[s].get("pareto_front") for s in ("fused", "block")},
            act_ratio_block={s: conv[s]["activations"] / conv["layer"]["activations"] for s in SCHEDULES},
            total_over_weights_conv={s: conv[s]["total"] / conv_w for s in SCHEDULES},
            total_over_weights_all={s: reps[s]["offchip_bytes"]["total"] / reps[s]["weights_bytes"]
                                    for s in SCHEDULES},
            fps={s: reps[s]["fps"] for s in SCHEDULES},
            total=reps["block"]["offchip_bytes"]["total"],
            onchip={s: reps[s]["onchip_peak_bytes"] for s in SCHEDULES},
            budget=reps["block"]["onchip_budget_bytes"],
            groups={s: [(g["nodes"][0], g["nodes"][-1], g["block"], g["mode"]) for g in reps[s]["groups"]]
                    for s in ("fused", "block")})
        if bname == "ulx3s-85f":
            plot_schedules(reps, str(out / "scheduler_vgg16_85f.png"), title="VGG16 224×224 on ulx3s-85f")
            _plot_front(reps, least, out / "scheduler_front.png")
    data["vgg16"] = vgg

    # ---- the activation / weight trade-off (objective weight), the default rule's slack and trade
    lay85 = vgg["ulx3s-85f"]["conv"]["layer"]["activations"]
    conv_w85 = vgg["ulx3s-85f"]["conv_weights"]

    def row(r, **key):
        """One VGG16 plan's figures (conv part and whole network) under the options in ``key``."""
        c = _conv_part(r)
        total = r["offchip_bytes"]["total"]
        return dict(key, act=c["activations"], weights=c["weights"], conv_total=c["total"],
                    total=total, act_ratio=c["activations"] / lay85,
                    conv_total_over_w=c["total"] / conv_w85, total_over_w=total / r["weights_bytes"],
                    fps=r["fps"], onchip=r["onchip_peak_bytes"],
                    groups=[(g["nodes"][0], g["nodes"][-1], g["block"]) for g in r["groups"]
                            if g["nodes"][0].startswith(("conv", "pool"))])

    v16 = graphs["vgg16"]
    data["pareto"] = [row(plan_network(v16, "ulx3s-85f", s, weight_cost=wc)[1], weight_cost=wc,
                          schedule=s)
                      for wc in WEIGHT_COSTS for s in ("fused", "block")]
    data["slack"] = [row(plan_network(v16, "ulx3s-85f", s, slack=sl)[1], slack=sl, schedule=s)
                     for sl in SLACKS for s in ("fused", "block")]
    data["trade"] = [row(plan_network(v16, "ulx3s-85f", s, trade=tr, budget=kb * 1024)[1],
                         trade=tr, schedule=s, kb=kb)
                     for tr in TRADES for s in ("fused", "block") for kb in (368, 3072)]

    # ---- MICRO 2016: first five conv layers ----------------------------------------------------
    g5 = first5_graph()
    micro = {}
    for label, budget in (("362 KB", 362 * 1024), ("362 KB / 4 (same number of values as 32-bit)",
                                                   362 * 1024 // 4)):
        board = with_budget(get_board("ulx3s-85f"), budget)
        reps = {s: plan_network(g5, board, s)[1] for s in SCHEDULES}
        micro[label] = {s: dict(activations=reps[s]["offchip_bytes"]["activations"],
                                weights=reps[s]["offchip_bytes"]["weights"],
                                onchip=reps[s]["onchip_peak_bytes"],
                                groups=[(g["nodes"][0], g["nodes"][-1], g["block"]) for g in reps[s]["groups"]])
                        for s in SCHEDULES}
    data["micro2016"] = micro

    # ---- budget sweep (VGG16, 85F array and SDRAM, varying on-chip bytes) ----------------------
    base = get_board("ulx3s-85f")
    lay_conv = _conv_part(plan_network(graphs["vgg16"], base, "layer", budget=base.onchip_bytes)[1])
    conv_w = vgg["ulx3s-85f"]["conv_weights"]
    for kb in SWEEP_KB:
        budget = kb * 1024
        entry = {"kb": kb}
        for s in SCHEDULES:
            _, r = plan_network(graphs["vgg16"], base, s, budget=budget)
            c = _conv_part(r)
            entry[s] = dict(act=c["activations"], weights=c["weights"], total=c["total"],
                            fps=r["fps"], onchip=r["onchip_peak_bytes"])
        entry["block_act_ratio"] = entry["block"]["act"] / lay_conv["activations"]
        entry["block_total_over_w"] = entry["block"]["total"] / conv_w
        data["sweep"].append(entry)
    _plot_sweep(data["sweep"], lay_conv, conv_w, out / "scheduler_budget_sweep.png")

    # ---- iCEBreaker: what fits without off-chip memory -----------------------------------------
    ice = []
    for name in zoo.names():
        for res in (None, 32):
            if res is not None and name in ("igcv", "digits"):
                continue
            g = graphs[name] if res is None else zoo.shape_graph(name, res)
            _, r = plan_network(g, "icebreaker", "block")
            ice.append(dict(network=name, input=r["input_shape"], weights=r["weights_bytes"],
                            peak=r["onchip_peak_bytes"], fits=r["fits"], fps=r["fps"],
                            budget=r["onchip_budget_bytes"]))
    data["icebreaker"] = ice

    # ---- planning time -------------------------------------------------------------------------
    data["timing"], data["timing_load"] = planning_times(graphs)

    # ---- calibration (recorded by `calibrate`, compared with the current model) ---------------
    data["calibration"] = calibration_table(out / "scheduler_calibration.json")

    (out / "scheduler.json").write_text(json.dumps(data, indent=1, default=str))
    (out / "scheduler.md").write_text(render_markdown(data))
    return [out / "scheduler.md", out / "scheduler_vgg16_85f.png", out / "scheduler_budget_sweep.png",
            out / "scheduler_front.png", out / "scheduler.json"]


def planning_times(graphs) -> tuple:
    """Worst CPU (``time.process_time``) and wall time of ``plan_network`` per network over every
    board and schedule (default objective), after one warm-up plan (imports, caches)."""
    import os

    plan_network(graphs["digits"], "ulx3s-85f", "block")
    load0 = os.getloadavg()[0]
    rows = []
    for name in zoo.names():
        worst = worst_cpu = 0.0
        per = {}
        for s in SCHEDULES:
            for bname in board_names():
                t, c = time.perf_counter(), time.process_time()
                plan_network(graphs[name], bname, s)
                wall, cpu = time.perf_counter() - t, time.process_time() - c
                worst, worst_cpu = max(worst, wall), max(worst_cpu, cpu)
                per[s] = max(per.get(s, 0.0), cpu)
        rows.append({"network": name, "nodes": len(graphs[name].nodes), "worst_seconds": worst,
                     "worst_cpu_seconds": worst_cpu, "worst_cpu_by_schedule": per})
    return rows, (load0, os.getloadavg()[0])


def calibration_table(path) -> list:
    """The recorded RTL cycles beside the model's cycles for the same engines now."""
    path = Path(path)
    if not path.exists():
        return []
    from host.compiler.cost import NetInfo

    rec = json.loads(path.read_text())
    g = calibration_graph()
    out = []
    for key in dict.fromkeys(e["engine"] for e in rec):
        net = NetInfo(g, None, engine=calibration_engine(key))
        for e in (e for e in rec if e["engine"] == key):
            ni = net.nodes[net.index[e["name"]]]
            out.append(dict(e, model_now=ni.cycles + ni.latency))
    return out


def _plot_front(reps, least, path):
    """VGG16 on ulx3s-85f: the (activation, weight) front of fused and block, the least-total
    plan and the default choice."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    for s, c in (("fused", "tab:blue"), ("block", "tab:orange")):
        f = reps[s].get("pareto_front") or []
        ax.plot([p["weights"] / 1e6 for p in f], [p["activations"] / 1e6 for p in f], "o-", ms=3, color=c,
                lw=0.8, label=f"{s}: Pareto front")
        o = reps[s]["offchip_bytes"]
        ax.plot([o["weights"] / 1e6], [o["activations"] / 1e6], "*", ms=14, color=c,
                markeredgecolor="k", label=f"{s}: default plan (slack {reps[s]['slack']:.0%}, trade {reps[s]['trade']:g})")
        o0 = least[s]["offchip_bytes"]
        ax.plot([o0["weights"] / 1e6], [o0["activations"] / 1e6], "s", ms=8, mfc="none", color=c,
                label=f"{s}: least total traffic")
    w = reps["block"]["weights_bytes"] / 1e6
    ax.axvline(w, color="k", ls=":", lw=0.8)
    ax.text(w, ax.get_ylim()[1], " model weights", fontsize=7, va="top")
    ax.set_xlabel("weight bytes read per frame (MB)")
    ax.set_ylabel("activation bytes moved per frame (MB)")
    ax.set_yscale("log")
    ax.set_xscale("log")
    ax.set_title("VGG16 224×224 on ulx3s-85f: off-chip traffic trade-off (whole network)")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _plot_sweep(sweep, lay_conv, conv_w, path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    kb = [e["kb"] for e in sweep]
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(11, 4))
    for s, c in (("layer", "tab:gray"), ("fused", "tab:blue"), ("block", "tab:orange")):
        a1.plot(kb, [e[s]["act"] / lay_conv["activations"] * 100 for e in sweep], "o-", color=c, label=s)
        a2.plot(kb, [e[s]["total"] / conv_w for e in sweep], "o-", color=c, label=s)
    a1.axhline(5, color="red", ls="--", lw=1, label="target 5%")
    a2.axhline(1.3, color="red", ls="--", lw=1, label="target 1.3×")
    for name in ("ulx3s-25f", "ulx3s-45f", "ulx3s-85f"):
        kbb = get_board(name).onchip_bytes / 1024
        for a in (a1, a2):
            a.axvline(kbb, color="k", ls=":", lw=0.8)
            a.text(kbb, a.get_ylim()[1] if a is a2 else 100, name.replace("ulx3s-", ""), fontsize=7,
                   rotation=90, va="top")
    a1.axvline(19.1e6 / 8 / 1024, color="green", ls=":", lw=0.8)
    a1.text(19.1e6 / 8 / 1024, 50, "ZC706 BRAM", fontsize=7, rotation=90, color="green")
    for a in (a1, a2):
        a.set_xscale("log")
        a.set_xlabel("on-chip budget (KB)")
        a.legend(fontsize=8)
    a1.set_ylabel("conv activation traffic, % of layer schedule at 368 KB")
    a1.set_yscale("log")
    a2.set_ylabel("conv off-chip traffic / conv weights")
    a2.set_yscale("log")
    e = get_board("ulx3s-85f").engine
    fig.suptitle(f"VGG16 224×224, 13 conv layers: off-chip traffic vs on-chip budget ({e.rows}×{e.cols} "
                 f"array, SDRAM, default objective)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


# ---------------------------------------------------------------------------------------------
# Markdown
# ---------------------------------------------------------------------------------------------

def render_markdown(d: dict) -> str:
    L = []
    w = L.append
    w("# Block-fusion scheduler: algorithm, cost model, figures\n")
    w("*Generated by `blockfuse bench plan` (`host/bench/plan.py`); every project number below is an "
      "estimate of the cost model in `host/compiler/cost.py`, not a measurement on a board. Published figures "
      "are marked **published** and come from `docs/published.md`.*\n")
    w(ALGORITHM)
    w("## Boards (`host/compiler/boards.py`)\n")
    w("| board | on-chip budget | reserve | PE array | engine (requant lanes, run latency) | clock | off-chip | effective bandwidth |")
    w("|---|---|---|---|---|---|---|---|")
    from hw.engine.synth import CONFIGS
    for n in board_names():
        b = get_board(n)
        e = b.engine
        src = "`hw.engine.synth.CONFIGS`" if n in CONFIGS else "assumed"
        off = f"{b.offchip_bytes // 2**20} MB SDRAM x{8 * b.offchip_width_bytes}" if b.has_offchip else "none"
        w(f"| {n} | {b.onchip_bytes / 1024:.0f} KiB | {b.reserved_blocks} of {b.bram_blocks} blocks | "
          f"{b.pe_rows}×{b.pe_cols} | {src}: {e.post_lanes} lanes, {e.latency} cycles | {b.clock_hz / 1e6:.0f} MHz | {off} | "
          f"{b.offchip_bytes_per_s / 1e6:.1f} MB/s{'' if b.has_offchip else ' (host link)'} |")
    w("")
    w("Assumptions (named fields in `host/compiler/boards.py`): ECP5 DP16KD blocks hold 2048 int8 bytes each "
      "(9-bit wide, 9th bit unused); the reserve covers UART and SDRAM FIFOs, the per-channel "
      "requantisation tables, descriptors and accumulator spill. The SDRAM (`hw/memory/sdram.py`: x16, "
      "open-row, one word per cycle within a 1 KB row) runs at the system clock; 70% of its 200 MB/s "
      "peak is assumed for interleaved read/write streams (row switches, refresh, turnaround). Clocks and "
      "link rates are the board SoCs' defaults (`hw.soc.top.BOARDS`: 100 MHz ULX3S, as the committed "
      "ULX3S-85F bitstream is built, `bitstreams/ulx3s-85f/report.json`; 42 MHz iCEBreaker); the "
      "engine's own Fmax is not yet at 100 MHz (`docs/engine.md`), so ECP5 figures are for the "
      "design target. The engine configuration is read from "
      "`hw.engine.synth.CONFIGS` where the RTL has one (array shape, requantisation lanes, logic "
      "requant), so the cost model follows it; the ulx3s-25f/12f engine (4×6, 3 lanes) is an "
      "assumption until the RTL has one.\n")

    # VGG16 targets
    v = d["vgg16"]["ulx3s-85f"]
    w("## VGG16 224×224 — issue 4 targets\n")
    w(f"13 conv layers + 5 pools (the FC head is excluded from these columns; it adds {_mb(123.6e6):.0f} MB of "
      f"weights read once in every schedule). Conv weights incl. per-channel parameters: "
      f"{_mb(v['conv_weights']):.2f} MB. Default objective (below); `total / weights` is the whole "
      f"network's off-chip traffic over its weights (FC head included), `conv total / conv W` the same "
      f"for the 13 conv layers alone.\n")
    w("| board | schedule | weights MB | activations MB | total MB | act. vs layer | total / weights | conv total / conv W | on-chip peak KiB (budget) | est. fps |")
    w("|---|---|---|---|---|---|---|---|---|---|")
    for bname, vb in d["vgg16"].items():
        for s in SCHEDULES:
            c = vb["conv"][s]
            w(f"| {bname} | {s} | {_mb(c['weights']):.2f} | {_mb(c['activations']):.2f} | {_mb(c['total']):.2f} | "
              f"{vb['act_ratio_block'][s] * 100:.1f}% | {vb['total_over_weights_all'][s]:.2f}× | "
              f"{vb['total_over_weights_conv'][s]:.2f}× | "
              f"{vb['onchip'][s] / 1024:.0f} ({vb['budget'] / 1024:.0f}) | {vb['fps'][s]:.2f} |")
    w("")
    ideal = v["ideal_layer_act"]
    w(f"`act. vs layer` compares with the `layer` schedule on the same budget. A layer-by-layer "
      f"accelerator with unlimited on-chip memory would still read every input map and write every "
      f"output map once: {_mb(ideal):.2f} MB for these layers (the `layer` schedule needs more at small "
      f"budgets because a layer's weights or line buffers do not fit in one pass).\n")
    ok_act = v["act_ratio_block"]["block"] <= 0.05
    ok_tot = v["total_over_weights_all"]["block"] <= 1.3
    lb = v["least"]["block"]
    w(f"**Against the targets on ulx3s-85f ({v['budget'] / 1024:.0f} KiB), default plan** (`blockfuse plan "
      f"zoo:vgg16 --board ulx3s-85f --schedule block`, asserted by "
      f"`tests/test_scheduler.py::test_vgg16_default_block_plan_meets_issue_targets`): `block` activation "
      f"traffic over the 13 conv layers is {v['act_ratio_block']['block'] * 100:.1f}% of `layer`'s "
      f"(≤ 5%: **{'met' if ok_act else 'not met'}**); total off-chip traffic is "
      f"{v['total_over_weights_all']['block']:.2f}× the network's weights (≤ 1.3×: "
      f"**{'met' if ok_tot else 'not met'}**), within the on-chip budget "
      f"({v['onchip']['block'] / 1024:.0f} of {v['budget'] / 1024:.0f} KiB), at "
      f"{v['fps']['block']:.2f} fps (estimate). Counting the 13 conv layers alone, total traffic is "
      f"{v['total_over_weights_conv']['block']:.2f}× their weights: the 1.3× figure holds for the whole "
      f"network only because VGG16's 124 MB of FC weights, read once, dominate it; for the conv layers "
      f"alone both targets together cannot be met in {v['budget'] / 1024:.0f} KiB (budget sweep below). "
      f"The least-total-traffic plan (`--slack 0`) would move {lb['act_ratio'] * 100:.1f}% of `layer`'s "
      f"activation traffic at {lb['total_over_weights_all']:.2f}× the weights ({lb['total_over_weights_conv']:.2f}× "
      f"for the conv layers), {lb['fps']:.2f} fps.\n")
    lbt = lb["total"]
    w(f"**Why this default.** Block convolution exists to keep feature maps on chip (DATE 2018); "
      f"re-reading weights per block is its price. Least total traffic treats a weight byte and a "
      f"feature-map byte as the same thing, and on the 85F it then streams conv3/conv4 through SDRAM: "
      f"re-reading their weights per block would cost a few more bytes than moving their maps. The "
      f"default plan moves {lbt and (v['total'] / lbt - 1) * 100:.1f}% more bytes in total than that plan "
      f"and cuts the conv layers' feature-map traffic from {lb['act_ratio'] * 100:.1f}% to "
      f"{v['act_ratio_block']['block'] * 100:.1f}% of `layer`'s, at the same estimated fps. So the DP does "
      f"not collapse the two into one number: `front[j]` keeps, for every prefix of the network, the "
      f"Pareto front of (activation bytes, weight bytes) over all plans of that prefix (a group whose "
      f"lower bound — weights once, outputs once — is dominated on the front is not costed), and the "
      f"network's plan is picked from the final front by a stated rule:\n")
    w("> among the plans whose **total off-chip traffic and estimated time are both within `slack` "
      "(default 10%) of the least-total-traffic plan's**, the one with the least **activation bytes + "
      "weight bytes / `trade`** (default 4; ties: less total traffic, then less time).\n")
    w("The slack is the DATE 2018 view — minimise feature-map traffic subject to a bound on total "
      "traffic — with the bound relative to the best achievable (SDRAM bytes are energy, and memory "
      "time when memory-bound; the time bound keeps the frame rate within the same margin). The trade "
      "is the exchange rate: a feature-map byte kept on chip may cost up to 4 weight bytes re-read. "
      "Feature-map bytes are dearer than weight bytes on this design: maps are written and read back "
      "in block-shaped pieces (row switches and read/write turnaround in the x16 SDRAM), weights are "
      "read-only streams in layer order; 4 is a chosen round number, not a measurement — the tables "
      "below show what other values give. Without the trade (`--trade inf`) the rule would, for "
      "example with 3 MiB on chip, re-read 14 MB more VGG16 weights to save 0.2 MB of maps. "
      "`--slack 0` or `--trade 1` is least total traffic; `--weight-cost F` (scalar objective "
      "activations + F × weights, no bound) and `--objective time` are still available. On the other "
      "zoo networks and boards the rule never moves more feature-map bytes than the least-total plan "
      "and stays within the slack (`test_default_objective_elsewhere`; the zoo table below gives both "
      "plans).\n")
    w("![VGG16 front on ulx3s-85f](scheduler_front.png)\n")
    w("Effect of the slack (VGG16 on ulx3s-85f; `act vs layer` over the conv layers):\n")
    w("| slack | schedule | conv act MB | act vs layer | network total / W | conv total / conv W | on-chip KiB | est. fps | groups (conv part) |")
    w("|---|---|---|---|---|---|---|---|---|")
    for p in d["slack"]:
        grp = "; ".join(f"{a}…{b}{(' ' + 'x'.join(map(str, blk))) if blk else ''}" for a, b, blk in p["groups"])
        w(f"| {p['slack']:.2f} | {p['schedule']} | {_mb(p['act']):.2f} | {p['act_ratio'] * 100:.1f}% | "
          f"{p['total_over_w']:.2f}× | {p['conv_total_over_w']:.2f}× | {p['onchip'] / 1024:.0f} | {p['fps']:.2f} | {grp} |")
    w("")
    w("Effect of the trade (VGG16, ulx3s-85f array and SDRAM, default slack; the 85F's 368 KiB and a "
      "3 MiB budget):\n")
    w("| trade | schedule | on-chip budget KiB | conv act MB | act vs layer@368K | network total / W | conv total / conv W | est. fps |")
    w("|---|---|---|---|---|---|---|---|")
    for p in d["trade"]:
        w(f"| {p['trade']:g} | {p['schedule']} | {p['kb']} | {_mb(p['act']):.2f} | {p['act_ratio'] * 100:.1f}% | "
          f"{p['total_over_w']:.2f}× | {p['conv_total_over_w']:.2f}× | {p['fps']:.2f} |")
    w("")
    w("The scalar objective for comparison (`--weight-cost F`: activation bytes + F × weight bytes; "
      "F = 1 is least total traffic):\n")
    w("| weight cost | schedule | conv act MB | act vs layer | conv weights read MB | conv total / conv W | network total / W | on-chip KiB | est. fps | groups (conv part) |")
    w("|---|---|---|---|---|---|---|---|---|---|")
    for p in d["pareto"]:
        grp = "; ".join(f"{a}…{b}{(' ' + 'x'.join(map(str, blk))) if blk else ''}" for a, b, blk in p["groups"])
        w(f"| {p['weight_cost']} | {p['schedule']} | {_mb(p['act']):.2f} | {p['act_ratio'] * 100:.1f}% | "
          f"{_mb(p['weights']):.2f} | {p['conv_total_over_w']:.2f}× | {p['total_over_w']:.2f}× | "
          f"{p['onchip'] / 1024:.0f} | {p['fps']:.2f} | {grp} |")
    w("")
    # the budget at which targets are met
    hit_act = next((e["kb"] for e in d["sweep"] if e["block_act_ratio"] <= 0.05), None)
    hit_tot = next((e["kb"] for e in d["sweep"] if e["block_total_over_w"] <= 1.3), None)
    w("Why the conv layers alone cannot meet both in the 85F's budget: the 56×56×256 and 28×28×512 maps "
      "of conv3/conv4 (802 KB and 401 KB) do not fit, and neither do those stages' weights (1.5 MB and "
      "5.9 MB). Keeping their maps on chip means blocks, and every block re-reads the group's weights; "
      "keeping weight traffic at one read means streaming the maps through SDRAM in output-channel "
      "passes (each pass re-reads the input). The default plan fuses conv1_1…pool2 in blocks with their "
      "weights resident (no activation traffic there), conv3 and conv4 in blocks re-reading their "
      "weights, and runs conv5_1…pool5 as one whole-map group.\n")
    hit_both = next((e["kb"] for e in d["sweep"]
                     if e["block_act_ratio"] <= 0.05 and e["block_total_over_w"] <= 1.3), None)
    e85 = get_board("ulx3s-85f").engine
    w(f"Budget sweep (`scheduler_budget_sweep.png`, same {e85.rows}×{e85.cols} array and SDRAM, default "
      f"objective; the rule picks per budget, so activation traffic need not fall monotonically): for "
      f"the 13 conv layers alone the 5% activation target is first met at {hit_act} KiB, the 1.3× total "
      f"target (conv weights) at {hit_tot} KiB, and both together from {hit_both} KiB — against the "
      f"85F's {v['budget'] / 1024:.0f} KiB; for comparison the ZC706 of DATE 2018 has 19.1 Mbit ≈ 2.3 MiB "
      f"of BRAM.\n")
    w("| on-chip KiB | layer act MB | fused act MB | block act MB | block act % of layer@budget | block conv total / conv W | block fps |")
    w("|---|---|---|---|---|---|---|")
    for e in d["sweep"]:
        w(f"| {e['kb']} | {_mb(e['layer']['act']):.2f} | {_mb(e['fused']['act']):.2f} | {_mb(e['block']['act']):.2f} | "
          f"{e['block_act_ratio'] * 100:.1f}% | {e['block_total_over_w']:.2f}× | {e['block']['fps']:.2f} |")
    w("")
    w("Chosen groups on ulx3s-85f (`block`): " + "; ".join(
        f"{a}…{b} {('block ' + 'x'.join(map(str, blk))) if blk else mode}" for a, b, blk, mode in v["groups"]["block"]) + ".\n")
    w("![VGG16 on ulx3s-85f](scheduler_vgg16_85f.png)\n")
    w("![budget sweep](scheduler_budget_sweep.png)\n")

    # published comparison
    w("## Beside the published systems\n")
    w("| system | setting | feature-map traffic | on-chip | fps | source |")
    w("|---|---|---|---|---|---|")
    w("| Fused-layer (MICRO 2016) | VGGNet-E (VGG19) first 5 conv layers — the same shapes as VGG16's conv1_1…conv3_1 — layer-by-layer → fused | 77 MB → 3.6 MB (32-bit values, −95%) | 362 KB | — | **published** |")
    for label, m in d["micro2016"].items():
        la, fu, bl = m["layer"]["activations"], m["fused"]["activations"], m["block"]["activations"]
        w(f"| blockfuse `fused` / `block` | same 5 layers, int8, budget {label} | {_mb(la):.2f} MB → "
          f"{_mb(fu):.2f} MB ({(fu / la - 1) * 100:+.0f}%) / {_mb(bl):.2f} MB ({(bl / la - 1) * 100:+.0f}%) | "
          f"{m['fused']['onchip'] / 1024:.0f} / {m['block']['onchip'] / 1024:.0f} KiB | — | estimate |")
    for bname in ("ulx3s-85f", "ulx3s-25f"):
        vb = d["vgg16"][bname]
        w(f"| blockfuse `block` on {bname} | VGG16 224×224, 13 conv | {_mb(vb['conv']['block']['activations']):.2f} MB "
          f"(layer: {_mb(vb['conv']['layer']['activations']):.2f} MB) | {vb['budget'] / 1024:.0f} KiB | "
          f"{vb['fps']['block']:.2f} (whole net) | estimate |")
    w("| Block convolution (DATE 2018) | VGG16 on ZC706, 150 MHz | all intermediate maps on chip | 19.1 Mbit BRAM | 12.19 | **published** |")
    w("| Qiu et al. (FPGA 2016) | VGG16-SVD 16-bit on ZC706 | — | — | 4.45 | **published** |")
    w("")
    w("The MICRO 2016 layers are fused in one group by blockfuse too (int8 values, so 362 KB hold four "
      "times as many values as the published 32-bit design; the second row gives the same number of "
      "values). The ZC706 has about 780-900 DSP slices at 150 MHz against the 85F's 144 multipliers at "
      "100 MHz: its peak is ≈ 9× ours, which is the gap in fps.\n")

    # all networks
    w("## Zoo networks at 224×224, all three schedules\n")
    w("Whole networks (FC heads included). `act` = activations; `fits`: within the on-chip budget and the "
      "32 MB SDRAM (VGG16's 138 MB of FC weights do not fit in it).\n")
    w("Default objective. `least-total` columns: the plan with the least total traffic (`--slack 0`) — "
      "its activation and total traffic and fps; last two columns: the plan under `--objective time` "
      "(least estimated time per frame, traffic breaking ties) — its fps and total traffic.\n")
    w("| network | board | schedule | weights MB | act MB | total MB | model weights MB | on-chip KiB | groups (fused) | MACs vs network | est. fps | bound | fits | act MB (least-total) | total MB (least-total) | fps (least-total) | fps (time obj.) | total MB (time obj.) |")
    w("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for r in d["tables"]:
        w(f"| {r['network']} | {r['board']} | {r['schedule']} | {_mb(r['weights']):.2f} | {_mb(r['activations']):.2f} | "
          f"{_mb(r['total']):.2f} | {_mb(r['model_weights']):.2f} | {r['onchip'] / 1024:.0f} / {r['budget'] / 1024:.0f} | "
          f"{r['groups']} ({r['fused']}) | {r['macs'] / r['network_macs']:.3f} | {r['fps']:.2f} | {r['bound']} | "
          f"{'yes' if r['fits'] else 'no'} | {_mb(r['act_least']):.2f} | {_mb(r['total_least']):.2f} | "
          f"{r['fps_least']:.2f} | {r['fps_time']:.2f} | {_mb(r['total_time']):.2f} |")
    w("")
    w("SqueezeNet's `block` schedule moves more than `fused`: its unpadded 3×3/s2 convolution and "
      "pools (224→111→55→27→13) leave almost no block size that tiles every map exactly, so block "
      "convolution can only fuse short stretches; `fused` (halos) has no such constraint.\n")

    w("## iCEBreaker (no off-chip memory)\n")
    w("Weights stay on chip for good (loaded once over the host link); the maps passed between groups "
      "are held in SPRAM beside the running group's buffers. `block` schedule. Where the weights "
      "alone exceed the budget, the on-chip need shown is that of the maps and buffers only (the "
      "weights would come on top).\n")
    w("| network | input | weights KB | on-chip need KB (budget) | fits | est. fps (incl. 12 Mbaud link for input/output) |")
    w("|---|---|---|---|---|---|")
    for e in d["icebreaker"]:
        w(f"| {e['network']} | {'x'.join(map(str, e['input']))} | {e['weights'] / 1e3:.0f} | "
          f"{e['peak'] / 1e3:.0f} ({e['budget'] / 1e3:.0f}) | {'yes' if e['fits'] else 'no'} | "
          f"{e['fps']:.2f}{'' if e['fits'] else ' (if it fitted)'} |")
    w("")
    w("## Planning time\n")
    l0, l1 = d.get("timing_load") or (float("nan"), float("nan"))
    w(f"`plan_network` on every zoo network × the five boards × the three schedules (default objective), "
      f"after one warm-up plan (imports); worst case per network, CPU time (`time.process_time`) and "
      f"wall clock, on the shared 2-core build machine (1-minute load average {l0:.1f} at the start, "
      f"{l1:.1f} at the end; other engineers' simulations and synthesis run beside it). Target: under "
      f"2 s wall per plan. A benchmark, not asserted in tests; regenerate with `blockfuse bench plan`.\n")
    w("| network | nodes | worst CPU `layer` | worst CPU `fused` | worst CPU `block` | worst CPU (any) | worst wall (any) |")
    w("|---|---|---|---|---|---|---|")
    for t in d["timing"]:
        per = t.get("worst_cpu_by_schedule", {})
        w(f"| {t['network']} | {t['nodes']} | " + " | ".join(f"{per.get(s, float('nan')):.2f} s" for s in SCHEDULES)
          + f" | {t['worst_cpu_seconds']:.2f} s | {t['worst_seconds']:.2f} s |")
    w("")
    w("What made it fast: under `block` every tensor's block is the tensor scaled by one factor, so one "
      "whole-map accumulator gives every grid's buffers, traffic and cycles (grids differ only in "
      "whether they tile and in weight residency) and a grid is offered only if it reads fewer weight "
      "bytes than every coarser grid; groups whose lower bound is dominated on the front are grown but "
      "not costed; the per-step buffer profile is a plain list (short ranges) and the plan block is "
      "computed only for the chosen groups. ShuffleNet (88 nodes) was the worst at 0.86 s CPU before.\n")

    # calibration
    cal = d.get("calibration") or []
    w("## Cycle model calibration\n")
    if cal:
        exact = sum(1 for e in cal if e["model_now"] == e["rtl"])
        worst = max(abs(e["model_now"] - e["rtl"]) for e in cal)
        engines = list(dict.fromkeys(e["engine"] for e in cal))
        w(f"`host.bench.plan.calibrate` runs six layer types (3×3, 3×3/s2, depthwise 3×3, grouped 1×1, "
          f"1×1, FC; `calibration_graph`) on the RTL engine under Verilator for {len(engines)} engine "
          f"configurations ({', '.join(engines)}: the 8×8 simulation default, the ECP5-85F 9×16 and the "
          f"iCE40 2×4 (digit-serial requant) of `hw.engine.synth.CONFIGS`, memories deepened so each "
          f"layer is one run; RTL of commit {', '.join(sorted({str(e.get('source', '?')) for e in cal}))}) and "
          f"records the measured cycles in `scheduler_calibration.json`. The cost model, reading latency "
          f"and drain from the same `EngineConfig`, reproduces **{exact} of {len(cal)}** measurements "
          f"exactly (largest difference {worst} cycles); `tests/test_scheduler.py` checks the recorded "
          f"cycles (within 2 per run, so a later RTL pipeline change does not break main before "
          f"recalibration) and that the model equals `host.runtime.engine_model.emulate`'s prediction on every "
          f"board engine.\n")
        w("| engine | rows×cols | requant lanes | layer | MACs | RTL cycles (measured) | model cycles | utilisation |")
        w("|---|---|---|---|---|---|---|---|")
        for e in cal:
            lanes = f"{e['post_lanes']}{' serial' if e.get('serial_requant') else ''}"
            w(f"| {e['engine']} | {e['rows']}×{e['cols']} | {lanes} | {e['name']} | {e['macs']} | "
              f"{e['rtl']} | {e['model_now']} | {e['macs'] / (e['rtl'] * e['rows'] * e['cols']):.2f} |")
        w("")
    return "\n".join(L)


ALGORITHM = """
## Use

```
blockfuse plan zoo:vgg16 --board ulx3s-85f --schedule block --json plan.json --plot plan.png
blockfuse plan model.onnx --board ulx3s-25f --schedule fused            # table on stdout
blockfuse plan zoo:vgg16 --schedule block --slack 0                     # least total traffic
blockfuse plan zoo:vgg16 --schedule block --slack 0.2 --trade inf       # maps off SDRAM harder
blockfuse plan zoo:vgg16 --schedule block --weight-cost 0.3             # scalar objective
blockfuse plan zoo:mobilenet_v1@112 --board icebreaker --objective time --budget 100000
blockfuse bench plan                                                     # regenerates this page
```
```python
from host.compiler.scheduler import plan_network
plan, report = plan_network(graph, "ulx3s-85f", "block")     # host.compiler.plan.Plan, dict as the JSON
y = host.runtime.golden.run(graph, x, plan=plan)                      # executes exactly that plan
```

**Which plan runs.** This scheduler plans for a *board model*: one on-chip budget that holds
blocks and weights alike, and a bandwidth. The accelerator configurations (`hw/configs.py`) are
not built that way (engine memories that take one run at a time, an activation buffer for a
group's intermediate blocks, weights reloaded per block), so for a board with a configuration
`blockfuse plan`, `run`, `eval` and `demo` use plans searched on the compiled program's own cost
(`host/compiler/program_plan.py`: each candidate group compiled and costed by the program
emulator's `predict`, the cycles and bytes the RTL then counts; under `block` a group costs its
cycles plus one per feature-map byte it moves off chip, under `fused` its cycles). This page's
scheduler plans the other boards, and any board with `blockfuse plan --scheduler` (or its
tuning options).

## What the scheduler decides

`plan_network(graph, board, schedule) -> (Plan, report)` (`host/compiler/scheduler.py`) cuts the network's
nodes (topological order) into groups of consecutive nodes and gives each group a block size on
its input map. The `Plan` is what `host.runtime.golden.run(graph, x, plan=plan)` executes exactly (and what
`blockfuse plan --json` writes; `host.cli.plan.plan_from_json` reads it back):

* `layer` — one group per node, no blocks: every layer reads its input and weights and writes its
  output off-chip (each layer still picks its cheapest way to do so, below);
* `fused` — groups run block by block with halos (overlapping input regions, recomputed at seams),
  bit-identical to `layer` (tested on every zoo network);
* `block` — block convolution (DATE 2018): each block is its own image, padded with the zero point at
  its borders; no halo, no recomputation; the blocks must tile every map of the group exactly.

## Algorithm: dynamic programming over cut points × block grids

Default objective: `front[j]` = the Pareto front, in (activation bytes, weight bytes), of the
plans of nodes `[0, j)` (equal points keep the shorter estimated time);
`front[j] = Pareto(∪ over i, choice of front[i] + cost(group [i, j), choice))`. The network's plan
is taken from `front[n]`: among the points whose total traffic and estimated time are within
`slack` (`--slack`, default 0.10) of the least-total-traffic point's, the least activation bytes +
weight bytes / `trade` (`--trade`, default 4) — why: "VGG16 … targets" below. The fronts stay
small (1-20 points on the zoo networks at their budgets, up to a few hundred at tight ones).
Scalar objectives: `best[j] = min over i, choice of best[i] + cost(group [i, j), choice)` with
cost = activation bytes + F × weight bytes (`--weight-cost F`; ties: fewest cycles) or the
estimated time (`--objective time`; ties: that traffic).
For each end `j` the groups `[i, j)` are grown from the back, `i = j−1, j−2, …`, and for each
candidate grid (`k × k` output blocks and full-width bands of `k` rows, `k ∈ {1…8, 10, 12, 14, 16,
20, 24, 28, 32}`, block = the group output size / k mapped back to the group input) the per-block extent of every tensor is
propagated one node at a time (`host.compiler.cost.AxisExtents`): under `fused` back-to-front exactly as
the golden model computes its regions (so the MACs with halo recomputation match the golden model's
count — tested), under `block` as exact proportional tiling with each node's window checked
(`(l + p0 + p1 − k) // s + 1` must map every input block onto its output block). Regions are
separable in y and x, so a grid costs O(nodes × blocks per axis), not per block, and the per-axis
extents are shared between grids (and between y and x when every map is square). A grid is dropped
for all longer groups once its buffers overflow (they only grow towards the front); when the
whole-map grid fits, finer grids are not costed (one block is never worse); a lower bound (weights
once + outputs once) skips groups that cannot reach the front (or beat `best[j]`) — they are still
grown for longer groups. Under `block` every tensor's block is the whole tensor scaled by the same
factor `ob_y·ob_x / (Ho·Wo)`, so one whole-map accumulator serves all grids, and a grid is offered
only if it reads fewer weight bytes than every grid with fewer blocks (inputs and outputs are the
same; fewer blocks means fewer cycles). Non-spatial nodes (global pooling, flatten, FC) are
groups of their own. Residual and concat branches need nothing special: a tensor consumed outside
its group (a cut branch) is written off-chip once and read by every group that consumes it; a
branch inside a group stays in the on-chip buffers for as long as it is live.

## Cost model (`host/compiler/cost.py`)

*Blocked group* with `nb` blocks:
* **MACs / cycles**: per node, its per-pixel MACs/cycles × the output area it computes over all
  blocks (with halos under `fused`).
* **Activations in**: every external input tensor's per-block region summed over blocks (halos
  read twice under `fused`); **out**: each tensor consumed outside the group (or the network
  output), once.
* **On-chip**: per step of the group, the per-block size (largest block) of every tensor live at
  that step (inputs from their first to last use, produced tensors from their node to their last
  use); peak over steps. Plus weights: with one block every weight streams once through a
  double-buffered tile (`2 × cols × Cin·kh·kw`); with several blocks the largest weights that fit
  beside the buffers stay resident (read once) and the others are re-read once per block — the
  trade-off the DP weighs against cutting the group.
* **Weights** include 8 bytes per output channel (int32 folded bias, int32 multiplier/shift).

*Streamed layer* (weight-outer): output channels are split into passes whose weights fit
beside a line buffer of `kh + sh` padded input rows and two output rows; each pass reads the whole
input (grouped/depthwise passes read only their own groups' channels). Pooling and clamp nodes
right after the convolution may join it: they consume its output rows on the fly (a line buffer per
pass channel), so only the pooled map is written. If not even one `cols`-wide
tile fits, a fine-grained variant tiles input channels too (`rows × cols` weight tiles, int32
partial sums for one output row, the input re-read `ceil(kh/sh)` times per pass).

*Cycles* follow the RTL engine (`hw/engine/engine.py`, `docs/engine.md` "Cycles per layer"): the (tap ×
input channel) reduction of a group packed densely on the `rows`, output channels on the `cols`;
one engine run (a layer on one block, or one pass of output channels) takes
`n_ob · Ho·Wo · slot − (slot − steps) + latency` with `n_ob = groups · ceil(Cout_g/cols)`,
`steps = ceil(kh·kw·Cin_g/rows)` (depthwise: taps on the rows, channels on the columns,
`n_ob = ceil(C/cols)`, `steps = ceil(kh·kw/rows)`), `slot = max(steps, drain)`,
`drain = ceil(cols/post_lanes)`; FC as a 1×1 conv. `latency`, `drain`, `rows`, `cols` come from the
board's `hw.engine.engine.EngineConfig` (`host.compiler.boards.Board.engine`: the RTL configuration of
`hw.engine.synth.CONFIGS` where there is one), never restated in the cost model, so the model
follows the RTL when its pipeline or requantisation lanes change. Measured agreement: "Cycle model
calibration" below. Pooling,
add, concat, permute and clamp: a `cols`-lane vector unit, one window tap per lane per cycle.
*Time* per group = `max(cycles / f_clk, off-chip bytes / bandwidth)` (double-buffered DMA overlaps
compute); fps = 1 / Σ groups. Boards without off-chip memory (iCEBreaker) keep all weights on chip
(loaded once, not per frame) and hold the maps passed between groups in SPRAM; the plan says
"does not fit" when that exceeds 138 KiB. The host link (3 Mbaud UART on the ULX3S: 0.5 s for a
224×224×3 image) is not included in the ULX3S fps.
"""


# ---------------------------------------------------------------------------------------------
# Calibration of the cycle model against the RTL engine
# ---------------------------------------------------------------------------------------------

def calibration_graph():
    """Six layer types the engine runs (3×3, 3×3/s2, depthwise, grouped 1×1, 1×1, FC)."""
    from host.model.builder import GraphBuilder

    b = GraphBuilder("cal", (16, 12, 12), seed=1)
    x = b.conv(b.input, 24, 3, name="c3x3")
    x = b.conv(x, 24, 3, stride=2, name="c3s2")
    x = b.conv(x, 24, 3, groups=24, name="dw")
    x = b.conv(x, 30, 1, groups=3, name="g1x1")
    x = b.conv(x, 20, 1, name="pw")
    x = b.flatten(x, name="fl")
    b.fc(x, 10, name="fc")
    return b.build()


#: engines the calibration runs: the 8×8 simulation default (``host.compiler.layer.DEFAULT_CONFIG``,
#: one requant lane per column) and the board configurations of ``hw.engine.synth.CONFIGS`` whose
#: shapes differ most (ECP5-85F 9×16; iCE40 2×4 with one digit-serial requant lane: drain-bound)
CALIBRATION_ENGINES = ("sim-default", "ulx3s-85f", "icebreaker")


def calibration_engine(key: str):
    """The engine configuration ``key`` names, with memories deep enough that every calibration
    layer is one engine run (memory depths do not change the cycle formula)."""
    from hw.engine.engine import EngineConfig
    from host.compiler.layer import DEFAULT_CONFIG

    if key == "sim-default":
        return DEFAULT_CONFIG
    from hw.engine.synth import CONFIGS

    d = CONFIGS[key].as_dict()            # array, requant lanes and kind as the board's engine
    d.update(in_depth=2048, w_depth=2048, step_depth=512, ob_depth=16, out_depth=2048)
    return EngineConfig(**d)


def calibration_rows(cfg, measure) -> list:
    """Model vs ``measure(node, x, zx, zy, cfg) -> cycles`` for the calibration layers on ``cfg``."""
    from host.runtime import golden
    from host.model.builder import smooth_input
    from host.compiler.cost import NetInfo

    g = calibration_graph()
    vals = golden.run(g, smooth_input(g), keep=True)
    net = NetInfo(g, None, engine=cfg)
    rows = []
    for n, ni in zip(g.nodes, net.nodes):
        if n.op not in ("conv", "fc"):
            continue
        zx, zy = g.tensors[n.inputs[0]].zero_point, g.tensors[n.output].zero_point
        cyc = measure(n, vals[n.inputs[0]], zx, zy, cfg)
        rows.append(dict(name=n.name, rows=cfg.rows, cols=cfg.cols, post_lanes=cfg.post_lanes,
                         lut_requant=cfg.lut_requant,
                         serial_requant=bool(getattr(cfg, "serial_requant", False)),
                         latency=cfg.latency, model=ni.cycles + ni.latency,
                         rtl=int(cyc), macs=ni.macs))
    return rows


def rtl_cycles(node, x, zx, zy, cfg) -> int:
    """Cycles the RTL engine (Verilator) takes for one layer, as one run."""
    from sim.engine_layers import run_conv, run_fc

    run = run_conv if node.op == "conv" else run_fc
    return run(node, x, zx, zy, config=cfg)[1]


def calibrate(outdir, engines=CALIBRATION_ENGINES, source: str | None = None) -> list:
    """Run :func:`calibration_graph`'s layers on the RTL engine (Verilator; minutes on a cold
    build cache) for each engine of ``engines`` and record measured vs modelled cycles in
    ``scheduler_calibration.json`` (a list of rows, one per engine and layer; ``source`` names
    the RTL measured, e.g. a commit, default ``git describe`` of this checkout if it is one)."""
    if source is None:
        import subprocess
        try:
            source = subprocess.run(["git", "describe", "--always", "--dirty"], capture_output=True,
                                    text=True, cwd=Path(__file__).resolve().parent, timeout=10).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            source = ""
    rows = []
    for key in engines:
        for r in calibration_rows(calibration_engine(key), rtl_cycles):
            rows.append(dict(engine=key, source=source or "?", **r))
    path = Path(outdir) / "scheduler_calibration.json"
    path.write_text(json.dumps(rows, indent=1))
    return [path]


bench_plan = bench          # the name the brief gave the `blockfuse bench plan` entry point
