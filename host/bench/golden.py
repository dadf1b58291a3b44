"""Golden-model speed on the zoo networks at full resolution (``blockfuse bench golden``).

Writes ``docs/golden_bench.md`` and ``docs/golden_bench.png``: wall time per network and
schedule, and MAC throughput.  ``fused``/``block`` run the scheduler's plan for the
board.  Wall-clock figures on a shared 2-core machine are noisy: each is the best of ``repeats``
runs.
"""
from __future__ import annotations

import platform
import time
from pathlib import Path

import numpy as np

from host.runtime import golden
from host.model import zoo
from host.model.builder import smooth_input
from host.compiler.plan import default_plan
from host.compiler.scheduler import plan_network

SCHEDULES = ("layer", "fused", "block")


def time_run(graph, x, plan, repeats=2) -> float:
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        golden.run(graph, x, plan=plan)
        best = min(best, time.perf_counter() - t0)
    return best


def bench(outdir, names=None, repeats: int = 2, board: str = "ulx3s-85f") -> list:
    from tqdm import tqdm

    outdir = Path(outdir)
    names = names or zoo.names()
    rows = []
    for name in tqdm(names, desc="golden bench", unit="net"):
        g = zoo.get(name)
        x = smooth_input(g, seed=0)
        times = {}
        for s in SCHEDULES:
            plan = default_plan(g, "layer") if s == "layer" else plan_network(g, board, s)[0]
            times[s] = time_run(g, x, plan, repeats)
        rows.append((name, g.input_tensor.shape, g.total_macs, times))
    md = ["# Golden-model speed", "",
          f"Measured with `blockfuse bench golden` on {platform.processor() or platform.machine()}, "
          "2 cores, NumPy float64 BLAS for exact integer sums. Best of "
          f"{repeats} runs; `fused`/`block` run the scheduler's plan for {board} (groups and blocks as "
          "`blockfuse plan` reports them).", "",
          "| network | input | MACs | layer (s) | fused (s) | block (s) | GMAC/s (layer) |",
          "|---|---|---:|---:|---:|---:|---:|"]
    for name, shape, macs, t in rows:
        f = lambda v: f"{v:.2f}"
        rate = macs / t["layer"] / 1e9 if t["layer"] else 0
        md.append(f"| {name} | {'×'.join(map(str, shape))} | {macs / 1e6:,.0f} M | {f(t['layer'])} | "
                  f"{f(t['fused'])} | {f(t['block'])} | {rate:.1f} |")
    md += ["", "Target (issue 2): VGG16 at 224×224 through the golden model in under 30 s.", ""]
    md_path = outdir / "golden_bench.md"
    md_path.write_text("\n".join(md))

    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 4))
    xs = np.arange(len(rows))
    for k, s in enumerate(SCHEDULES):
        ax.bar(xs + (k - 1) * 0.27, [r[3][s] for r in rows], 0.27, label=s)
    ax.set_xticks(xs, [r[0] for r in rows], rotation=20)
    ax.set_ylabel("seconds per image")
    ax.set_title("Golden model: time per image by schedule")
    ax.legend()
    fig.tight_layout()
    png = outdir / "golden_bench.png"
    fig.savefig(png, dpi=120)
    plt.close(fig)
    return [md_path, png]
