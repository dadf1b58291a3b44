"""Benchmark the RTL engine: cycles measured in Verilator per layer, PE utilisation
(MACs / (PEs × cycles)), bit-exactness against the golden model, and simulation speed.

Layers: the 13 VGG16 conv layers with their real channel counts at reduced height/width,
MobileNetV1 depthwise and pointwise layers, ShuffleNetV1 (g=3) grouped 1×1 and depthwise layers.
Writes ``docs/engine_bench.md``, ``docs/engine_bench.json`` and the plot ``docs/engine_bench.png``.

    python -m sim.bench_engine [--board ulx3s-85f] [--size 8] [--quick]
    python -m sim.bench_engine --line-rows 4 --line-words 512     # line mode → engine_bench_line

The engine is the board's configuration (``hw.configs``); a layer larger than its memories runs
as several engine runs over tiles of the output map (``host.compiler.tiling.conv_parts``), all in one
simulator process, and its cycles are the runs' sum. Line mode needs whole-row line memories
the board configurations do not have: it runs the board's array with simulation-only memories,
and says so.

Line mode (``EngineConfig(line_rows=…)``: the row feeder streams each input row once from the
map memory into a ring of line memories) adds, per layer, the map
words the feeder read (counted by the RTL), the words the array read from the lines, their
ratio (the reuse the line memories give) and the cycles the same layer takes with the whole map
preloaded (the feeder's stalls are the difference).
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from host.runtime.golden import conv_acc_padded
from host.model.quant import quantize_multipliers, requantize
from hw.engine.engine import EngineConfig
from hw.configs import get_config
from host.compiler.tiling import conv_parts
from host.runtime.engine_model import array_reads, preloaded_cycles
from sim.engine_rtl import simulate_many

DOCS = Path(__file__).resolve().parent.parent / "docs"

VGG16 = [  # (name, cin, cout)
    ("conv1_1", 3, 64), ("conv1_2", 64, 64), ("conv2_1", 64, 128), ("conv2_2", 128, 128),
    ("conv3_1", 128, 256), ("conv3_2", 256, 256), ("conv3_3", 256, 256),
    ("conv4_1", 256, 512), ("conv4_2", 512, 512), ("conv4_3", 512, 512),
    ("conv5_1", 512, 512), ("conv5_2", 512, 512), ("conv5_3", 512, 512),
]


def layers(size: int, quick: bool):
    """(name, cin, cout, h, w, k, stride, pads, groups)"""
    out = []
    vgg = VGG16[:4] if quick else VGG16
    for name, ci, co in vgg:
        out.append((f"vgg16.{name}", ci, co, size, size, 3, 1, 1, 1))
    mb_dw = [(32, 1), (64, 2), (128, 1), (256, 2), (512, 1), (1024, 1)]
    mb_pw = [(32, 64), (128, 128), (512, 512), (1024, 1024)]
    if quick:
        mb_dw, mb_pw = mb_dw[:2], mb_pw[:1]
    for ch, s in mb_dw:
        out.append((f"mobilenet.dw{ch}s{s}", ch, ch, size, size, 3, s, 1, ch))
    for ci, co in mb_pw:
        out.append((f"mobilenet.pw{ci}-{co}", ci, co, size, size, 1, 1, 0, 1))
    out.append(("shufflenet.gconv240 g3", 240, 240, size, size, 1, 1, 0, 3))
    out.append(("shufflenet.dw240", 240, 240, size, size, 3, 1, 1, 240))
    return out


def one_layer(rng, cfg, name, ci, co, h, w, k, stride, pad, groups):
    weight = rng.integers(-128, 128, (co, ci // groups, k, k), dtype=np.int8)
    x = rng.integers(-128, 128, (ci, h, w), dtype=np.int8)
    zx, zy = int(rng.integers(-128, 128)), int(rng.integers(-10, 10))
    bias_f = rng.integers(-5000, 5000, co) - zx * weight.reshape(co, -1).astype(np.int64).sum(1)
    mult, shift = quantize_multipliers(np.full(co, 60.0 / (128 * 74 * np.sqrt(weight[0].size))))
    t0 = time.perf_counter()
    xp = np.pad(x, ((0, 0), (pad, pad), (pad, pad)), constant_values=zx)
    parts = conv_parts(weight, bias_f, mult, shift, xp, zx, zy, -128, 127, (stride, stride),
                       groups, cfg)
    runs = simulate_many([p[3] for p in parts], cfg)
    wall = time.perf_counter() - t0
    acc = conv_acc_padded(weight, xp, (stride, stride), groups) + bias_f[:, None, None]
    want = requantize(acc, mult[:, None, None], shift[:, None, None], zy, -128, 127)
    y = np.zeros_like(want, dtype=np.int8)
    for (o0, o1, (y0, y1, x0, x1), _), (yp, _, _) in zip(parts, runs):
        y[o0:o1, y0:y1, x0:x1] = yp
    cycles = sum(r[1] for r in runs)
    sim_s = sum(r[2]["sim_seconds"] for r in runs)
    cpu_s = sum(r[2]["cpu_seconds"] for r in runs)
    macs = sum(p[3].macs for p in parts)
    pes = cfg.rows * cfg.cols
    extra = {}
    if cfg.line_rows:
        extra = dict(fetched=sum(r[2]["fetched"] for r in runs),
                     array_reads=sum(array_reads(p[3]) for p in parts),
                     map_words=sum(len(p[3].in_words) for p in parts),
                     preloaded_cycles=sum(preloaded_cycles(p[3].desc, cfg) for p in parts))
    return extra | dict(layer=name, shape=f"{ci}x{h}x{w} -> {co}x{y.shape[1]}x{y.shape[2]}, k{k} s{stride} g{groups}",
                macs=macs, runs=len(parts), cycles=cycles, utilisation=macs / (pes * cycles),
                bit_exact=bool(np.array_equal(y, want)), sim_seconds=sim_s,
                sim_cycles_per_s=cycles / sim_s if sim_s else 0.0,
                sim_cycles_per_cpu_s=cycles / cpu_s if cpu_s else 0.0,
                wall_seconds=wall)


GROUPS = [("VGG16 3×3", "vgg16.", "tab:blue"), ("MobileNet depthwise", "mobilenet.dw", "tab:orange"),
          ("MobileNet pointwise", "mobilenet.pw", "tab:green"), ("ShuffleNet", "shufflenet.", "tab:purple")]


def plot(rows, cfg, path, board):
    """Per-layer PE utilisation bars, grouped by network/layer kind, with the 90 % (VGG16) and
    50 % (depthwise) target lines."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(12, 4.8))
    x, ticks, labels = 0, [], []
    for name, prefix, color in GROUPS:
        grp = [r for r in rows if r["layer"].startswith(prefix)]
        if not grp:
            continue
        xs = list(range(x, x + len(grp)))
        ax.bar(xs, [100 * r["utilisation"] for r in grp], color=color, label=name)
        if "preloaded_cycles" in grp[0]:
            pes = cfg.rows * cfg.cols
            ax.bar(xs, [100 * r["macs"] / (pes * r["preloaded_cycles"]) for r in grp], fill=False,
                   edgecolor="black", lw=0.7,
                   label="the same, map preloaded" if x == 0 else None)
        ticks += xs
        labels += [r["layer"].split(".", 1)[1] for r in grp]
        x += len(grp) + 1
    ax.axhline(90, color="black", ls="--", lw=1, label="target ≥ 90 % (VGG16, ≥ 64 input channels)")
    ax.axhline(50, color="tab:red", ls=":", lw=1.2, label="target ≥ 50 % (depthwise)")
    ax.set_xticks(ticks)
    ax.set_xticklabels(labels, rotation=60, ha="right", fontsize=8)
    ax.set_ylim(0, 125)
    ax.set_ylabel("PE utilisation (%)")
    mode = (f", line mode ({cfg.line_rows} lines × {cfg.line_words} words)"
            if cfg.line_rows else "")
    ax.set_title(f"RTL engine ({board}), {cfg.rows}×{cfg.cols} PEs{mode}: "
                 "utilisation per layer (cycles measured in Verilator)", fontsize=10)
    ax.legend(loc="upper center", ncol=3, fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--board", default="ulx3s-85f",
                    help="accelerator configuration (hw.configs; default ulx3s-85f)")
    ap.add_argument("--size", type=int, default=8, help="input height = width of every layer")
    ap.add_argument("--quick", action="store_true", help="a few layers only")
    ap.add_argument("--line-rows", type=int, default=0,
                    help="line mode: lines in the ring (a power of two; 0 = map preloaded)")
    ap.add_argument("--line-words", type=int, default=512, help="line mode: words per line")
    ap.add_argument("--out", default=None,
                    help="output stem (default docs/engine_bench, or docs/engine_bench_line)")
    a = ap.parse_args(argv)
    a.out = a.out or str(DOCS / ("engine_bench_line" if a.line_rows else "engine_bench"))
    board = get_config(a.board)
    if a.line_rows:
        # line mode: the board's array with simulation-only memories (whole rows in the lines)
        cfg = EngineConfig(**(board.engine.as_dict() | dict(
            in_depth=4096, w_depth=32768, step_depth=1024, ob_depth=256, out_depth=8192,
            line_rows=a.line_rows, line_words=a.line_words)))
        what = (f"the {board.name} array ({cfg.rows}×{cfg.cols} PEs, {cfg.post_lanes} requant "
                "lanes) with **simulation-only memories** (a line mode that fits no board yet)")
    else:
        cfg = board.engine
        what = (f"the **{board.name} configuration** (`hw/configs.py`: {cfg.rows}×{cfg.cols} PEs, "
                f"{cfg.post_lanes} requant lanes, {cfg.in_depth}-word map, {cfg.w_depth}-word "
                f"weight and {cfg.out_depth}-word output memories, {cfg.step_depth}-entry step "
                "table); a layer larger than its memories runs as several engine runs over tiles "
                "of the output map and output-channel chunks, and its cycles are their sum "
                "(each run's pipeline fill included; the host's loads between runs are not)")
    rng = np.random.default_rng(2018)
    rows = []
    for spec in layers(a.size, a.quick):
        r = one_layer(rng, cfg, *spec)
        rows.append(r)
        line_info = (f"  fetched {r['fetched']}/{r['map_words']} map words, array read "
                     f"{r['array_reads']} ({r['array_reads'] / max(1, r['fetched']):.1f}×)"
                     if cfg.line_rows else "")
        print(f"{r['layer']:28s} {r['cycles']:>9d} cycles  util {100 * r['utilisation']:5.1f}%  "
              f"{'bit-exact' if r['bit_exact'] else 'MISMATCH'}  {r['sim_cycles_per_s'] / 1e3:6.0f}k cyc/s wall "
              f"{r['sim_cycles_per_cpu_s'] / 1e3:6.0f}k cyc/s cpu" + line_info,
              flush=True)
    out = Path(a.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    meta = dict(board=board.name, config=cfg.as_dict(), pes=cfg.rows * cfg.cols, size=a.size)
    out.with_suffix(".json").write_text(json.dumps(dict(meta=meta, layers=rows), indent=1))
    lines = [
        "# Engine benchmark (RTL, Verilator)", "",
        f"Engine: {what}; "
        f"every layer at {a.size}×{a.size} input with its real channel counts, seeded random int8 "
        "data. Cycles are counted by the RTL (`start` to `done`, pipeline fill included); "
        "utilisation = MACs / (PEs × cycles); *bit-exact* compares with the golden model; "
        "sim speed = simulated cycles / seconds of the free-running layer (cocotb waits once "
        "for `done`), per wall-clock second and per CPU second of the simulator process (the "
        "machine is shared, so wall time depends on load). Written by `python -m sim.bench_engine`.", "",
        "| layer | shape | MACs | runs | cycles | utilisation | bit-exact | sim cycles/s (wall) | sim cycles/s (CPU) |",
        "|---|---|---:|---:|---:|---:|:---:|---:|---:|",
    ]
    if cfg.line_rows:
        lines[0] = "# Engine benchmark in line mode (RTL, Verilator)"
        lines[-2:] = [
            f"Line mode: a ring of {cfg.line_rows} lines × {cfg.line_words} words; the row feeder "
            "reads each input row from the map memory once, one word per cycle. *map words* "
            "= the input map's size in words, *fetched* = words the feeder read (the RTL's "
            "counter), *array reads* = words the array's rows read from the lines (taps inside "
            "the map), *reuse* = array reads / fetched; *preloaded* = the cycles of the same "
            "layer with the whole map in the input memory beforehand (the default mode).", "",
            "| layer | shape | MACs | cycles | utilisation | preloaded cycles | map words | "
            "fetched | array reads | reuse | bit-exact |",
            "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|:---:|"]
    for r in rows:
        if cfg.line_rows:
            lines.append(
                f"| {r['layer']} | {r['shape']} | {r['macs']:,} | {r['cycles']:,} | "
                f"{100 * r['utilisation']:.1f}% | {r['preloaded_cycles']:,} | {r['map_words']:,} | "
                f"{r['fetched']:,} | {r['array_reads']:,} | "
                f"{r['array_reads'] / max(1, r['fetched']):.1f}× | "
                f"{'yes' if r['bit_exact'] else '**no**'} |")
            continue
        lines.append(f"| {r['layer']} | {r['shape']} | {r['macs']:,} | {r['runs']} | {r['cycles']:,} | "
                     f"{100 * r['utilisation']:.1f}% | {'yes' if r['bit_exact'] else '**no**'} | "
                     f"{r['sim_cycles_per_s']:,.0f} | {r['sim_cycles_per_cpu_s']:,.0f} |")
    vgg = [r for r in rows if r["layer"].startswith("vgg16") and not r["layer"].endswith("1_1")]
    dw = [r for r in rows if ".dw" in r["layer"]]
    lines += ["", "Summary:", ""]
    if vgg:
        lines.append(f"- VGG16 3×3 layers with ≥64 input channels: utilisation "
                     f"{100 * min(r['utilisation'] for r in vgg):.1f}%–"
                     f"{100 * max(r['utilisation'] for r in vgg):.1f}% (target ≥ 90%)")
    if dw:
        lines.append(f"- depthwise layers: {100 * min(r['utilisation'] for r in dw):.1f}%–"
                     f"{100 * max(r['utilisation'] for r in dw):.1f}% (target ≥ 50%)")
    big = max(rows, key=lambda r: r["cycles"])
    lines.append(f"- simulation speed on the longest layer ({big['layer']}, {big['cycles']:,} cycles "
                 f"in {big['runs']} runs): "
                 f"{big['sim_cycles_per_s']:,.0f} cycles per wall second, "
                 f"{big['sim_cycles_per_cpu_s']:,.0f} per CPU second (target ≥ 100k for the "
                 "ECP5-sized engine)")
    lines.append(f"- all layers bit-exact: {'yes' if all(r['bit_exact'] for r in rows) else 'NO'}")
    png = out.with_suffix(".png")
    plot(rows, cfg, png, board.name + (", simulation-only memories" if cfg.line_rows else ""))
    lines += ["", f"![per-layer PE utilisation]({png.name})"]
    out.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print("wrote", out.with_suffix(".md"), "and", png)
    return 0 if all(r["bit_exact"] for r in rows) else 1


def bench_line(outdir) -> list:
    """``blockfuse bench engine-line``: the same layers in line mode (4 lines of 512 words)."""
    out = Path(outdir) / "engine_bench_line"
    if main(["--out", str(out), "--line-rows", "4", "--line-words", "512"]) != 0:
        raise RuntimeError("engine benchmark (line mode): a layer was not bit-exact")
    return [out.with_suffix(".md"), out.with_suffix(".json"), out.with_suffix(".png")]


def bench(outdir) -> list:
    """``blockfuse bench engine``: the full layer list on the ECP5-shaped engine into ``outdir``."""
    out = Path(outdir) / "engine_bench"
    if main(["--out", str(out)]) != 0:
        raise RuntimeError("engine benchmark: a layer was not bit-exact (see the table)")
    return [out.with_suffix(".md"), out.with_suffix(".json"), out.with_suffix(".png")]


if __name__ == "__main__":
    raise SystemExit(main())
