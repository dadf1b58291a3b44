"""``blockfuse bench soc-place``: the ulx3s-85f SoC with the accelerator (what ``bench
soc-synth`` synthesises) placed by nextpnr-ecp5, not routed, and the clock nextpnr estimates
for the placement beside the configuration's. Routing the whole SoC is the bitstream's job,
not yet done (router1 still had 262,000 arcs to route after 44,000 iterations, 30 minutes,
here); the estimate says early whether the clock the figures use is within reach, and the
slowest paths of the placement (``host.bench.placed_paths``) say where the time goes.
Writes ``docs/soc_place.md`` and ``docs/soc_place.json``. About 20–30 minutes here (yosys 3,
placement 14–20).
"""
from __future__ import annotations

import json
import re
import time
from pathlib import Path

from host.bench.placed_paths import slow_paths
from host.bench.soc_synth import ROOT, run_step, synth

BOARD = "ulx3s-85f"
SEED = 1


def estimate(log: str) -> dict:
    """nextpnr's post-placement ``Max frequency`` lines: clock net → MHz."""
    return {net: float(mhz) for net, mhz in
            re.findall(r"Max frequency for clock\s+'([^']+)':\s+([\d.]+) MHz", log)}


def place(board: str = BOARD, seed: int = SEED, build_root: Path | None = None) -> dict:
    from hw.configs import BOARD_CONFIGS
    acfg = BOARD_CONFIGS[board]
    root = Path(build_root or ROOT / "build" / "soc-place")
    t0 = time.monotonic()
    cells = synth(board, build_root=root)
    bdir = root / board
    proc = run_step(bdir, "NEXTPNR_ECP5", f"--no-route --seed {seed} "
                                          f"--freq {acfg.clock_mhz:g} --timing-allow-fail "
                                          "--write placed.json")
    if proc.returncode != 0:
        raise RuntimeError(f"nextpnr-ecp5 could not place {board}'s SoC; see {bdir / 'top.tim'}")
    return dict(placement(bdir), board=board, seed=seed, clock_mhz=acfg.clock_mhz,
                yosys=cells["used"], seconds=round(time.monotonic() - t0))


def placement(bdir: Path) -> dict:
    """What nextpnr's log in ``bdir`` says of a placement: the system clock's estimate (the
    slowest clock it names; the SDRAM clock is far faster), every clock's, the cells placed."""
    log = (bdir / "top.tim").read_text(errors="replace") if (bdir / "top.tim").exists() else ""
    est = estimate(log)
    if not est:
        raise RuntimeError(f"no clock estimate in {bdir / 'top.tim'}")
    net, mhz = min(est.items(), key=lambda kv: kv[1])
    util = dict(re.findall(r"^Info:\s+(TRELLIS_COMB|TRELLIS_FF|DP16KD|MULT18X18D):\s+(\d+)/",
                           log, re.MULTILINE))
    r = dict(estimate_mhz=mhz, net=net, clocks=est, placed={k: int(v) for k, v in util.items()})
    placed = bdir / "placed.json"
    if placed.exists():                    # 180 MB: the slow paths are what is kept of it
        r["slow_paths"] = slow_paths(placed, 10)
        placed.unlink()
    return r


def bench(outdir) -> list:
    return write(place(), outdir)


def write(r: dict, outdir) -> list:
    """``docs/soc_place.md`` and ``.json`` for the placement ``r`` (:func:`place`)."""
    outdir = Path(outdir)
    (outdir / "soc_place.json").write_text(json.dumps(r, indent=1) + "\n")
    p = r["placed"]
    short = r["estimate_mhz"] < r["clock_mhz"]
    about = " ".join(__doc__.split()).split("Writes")[0].split(": ", 1)[1].strip()
    about = about[0].upper() + about[1:]
    text = "\n".join([
        "# The ulx3s-85f SoC placed (not routed)", "",
        about, "",
        "Written by `blockfuse bench soc-place`.", "",
        "| board | seed | placed: TRELLIS_COMB / FF / DP16KD / MULT18X18D | clock the figures use "
        "| nextpnr's estimate after placement | yosys + placement |",
        "|---|---:|---|---:|---:|---:|",
        f"| {r['board']} | {r['seed']} | {p.get('TRELLIS_COMB', 0):,} / {p.get('TRELLIS_FF', 0):,}"
        f" / {p.get('DP16KD', 0)} / {p.get('MULT18X18D', 0)} | {r['clock_mhz']:g} MHz | "
        f"**{r['estimate_mhz']:.1f} MHz** | {r['seconds'] / 60:.0f} min |", "",
        ("The estimate is **short of the configuration's clock**: every frames-per-second figure "
         f"in `docs/` is at {r['clock_mhz']:g} MHz, the clock the engine alone routes at "
         "(`docs/engine.md`), not yet the whole SoC's. Cycle counts and utilisation do not "
         "depend on it." if short else
         "The estimate reaches the configuration's clock; only a routed build says it holds."),
    ])
    if r.get("slow_paths"):
        text += "\n".join([
            "", "", "## Where the time goes", "",
            "nextpnr names no critical path before routing, so `host.bench.placed_paths` "
            "estimates the slowest register-to-register paths of this placement (cell delays "
            "and a distance-based wire delay fitted to the routed link SoC; no congestion or "
            "fanout, so its times are below nextpnr's estimate — the ranking is what counts), "
            "the slowest per pair of units:", "",
            "| estimate | logic cells | from | to | endpoint |", "|---:|---:|---|---|---|"] + [
            f"| {p['ns']:.1f} ns | {p['logic_cells']} | `{p['from_unit']}` | `{p['to_unit']}` "
            f"| `{p['to_cell'].rsplit('.', 1)[-1]}` of `{p['to_cell'].rsplit('.', 1)[0][:60]}` |"
            for p in r["slow_paths"]])
    (outdir / "soc_place.md").write_text(text + "\n")
    return [outdir / "soc_place.md", outdir / "soc_place.json"]
