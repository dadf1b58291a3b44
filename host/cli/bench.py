"""``blockfuse bench [WHAT ...]``: run the benchmarks that write tables and plots to ``docs/``.

Each benchmark is a function ``bench(outdir) -> list[str]`` (the files it wrote) in its own
module; a part whose module is not present is reported and skipped.
"""
from __future__ import annotations

import importlib
import time
from pathlib import Path

from host.errors import UserError

BENCHES = {
    "configs": ("host.bench.configs", "bench"), # each board's configuration against its device
    "golden": ("host.bench.golden", "bench"),   # golden-model speed on the zoo
    "plan": ("host.bench.plan", "bench"),       # scheduler traffic / on-chip / fps per schedule
    "engine": ("sim.bench_engine", "bench"),    # RTL cycles and utilisation, sim speed
    "engine-line": ("sim.bench_engine", "bench_line"),   # the same in line mode: map traffic
    "emu": ("host.bench.emu", "bench"),          # whole networks at 224×224 as programs, emulated
    "dma": ("host.bench.dma", "bench"),          # the controller's cycles per instruction shape
    "soc": ("host.bench.soc", "bench"),          # networks on the whole simulated 85F SoC (~18 min)
    "soc-synth": ("host.bench.soc_synth", "bench"),  # each board SoC with the accelerator, yosys only
    "soc-place": ("host.bench.soc_place", "bench"),  # the 85F SoC placed: nextpnr's clock estimate
}


def register(sub):
    p = sub.add_parser("bench", help="run benchmarks; tables and plots go to docs/")
    p.add_argument("what", nargs="*", metavar="WHAT",
                   help=f"which benchmarks ({', '.join(BENCHES)}); default: all")
    p.add_argument("--out", default="docs", help="output directory (default: docs)")
    p.set_defaults(func=run)


def run(args) -> int:
    what = args.what or list(BENCHES)
    unknown = [w for w in what if w not in BENCHES]
    if unknown:
        raise UserError(f"unknown benchmark {unknown[0]!r} (choose from {', '.join(BENCHES)})")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    for w in what:
        modname, fn = BENCHES[w]
        try:
            mod = importlib.import_module(modname)
        except ModuleNotFoundError as e:
            if e.name != modname:
                raise
            print(f"bench {w}: not available in this build ({modname} missing), skipped")
            continue
        t0 = time.perf_counter()
        files = getattr(mod, fn)(out) or []
        print(f"bench {w}: {time.perf_counter() - t0:.1f} s → {', '.join(str(f) for f in files) or 'no files'}")
    return 0
