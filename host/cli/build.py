"""``blockfuse build --board BOARD``: bitstream and report into ``bitstreams/BOARD/``;
``blockfuse synth-engine --board BOARD``: the convolution engine alone through the same flow
(``hw/engine/synth.py``), report in ``docs/engine_synth_BOARD.json``."""
from __future__ import annotations

import json

from host.errors import UserError


def register(subparsers):
    from host.synthesis import BOARDS
    p = subparsers.add_parser(
        "build", help="build a board's bitstream (bitstreams/BOARD/ with report.json)",
        description="Synthesise, place and route the SoC for a board with the pip-installed "
                    "YoWASP tools; writes build/BOARD/ and bitstreams/BOARD/{top.bit|top.bin,"
                    "report.json}.")
    p.add_argument("--board", choices=BOARDS, help="target board")
    p.add_argument("--clock", type=float, metavar="MHZ",
                   help="system clock (default: the board's, 100 MHz ULX3S, 42 MHz iCEBreaker; "
                        "ULX3S: 25-100 MHz, where the SDRAM timing is shown to hold)")
    p.add_argument("--sdram", metavar="PART",
                   help="ULX3S: build the SDRAM controller for this part only (default: the "
                        "worst case of every fitted part: MT48LC16M16A2-6A, IS42S16160G-7, "
                        "M12L2561616A, AS4C32M16SB-7)")
    p.add_argument("--sdram-phase", type=float, metavar="DEG",
                   help="ULX3S: SDRAM clock phase behind the system clock (default: planned "
                        "for the clock, see docs/memory.md)")
    p.add_argument("--out", metavar="DIR", help="output root instead of bitstreams/")
    p.add_argument("--no-link", action="store_true",
                   help="leave the host link out (memory system, self-test and LEDs only)")
    p.add_argument("--check", metavar="REPORT", nargs="?", const="",
                   help="check that REPORT (a report.json; default: every committed "
                        "bitstreams/*/report.json) was built from the current sources")
    p.add_argument("--seed", type=int, nargs="+", metavar="N",
                   help="nextpnr placement seed(s); with several, the first whose result "
                        "meets timing is kept")
    p.add_argument("--quiet", action="store_true", help="no progress output")
    p.set_defaults(func=handle)

    q = subparsers.add_parser(
        "synth-engine", help="synthesise the convolution engine alone (resource/Fmax report)",
        description="Synthesise, place and route the convolution engine alone behind a pin "
                    "wrapper; writes docs/engine_synth_BOARD.json (never touches bitstreams/).")
    q.add_argument("--board", default="ulx3s-85f", help="target board (default ulx3s-85f)")
    q.add_argument("--json", metavar="FILE", help="report file")
    q.add_argument("--seed", type=int, metavar="N",
                   help="nextpnr's seed (default: the board's, recorded in the report)")
    q.set_defaults(func=handle_synth_engine)


def handle_synth_engine(args) -> int:
    try:
        from hw.engine import synth as synth_engine
    except ImportError as e:
        raise UserError(f"the engine synthesis is not available ({e.name} missing)")
    if args.board not in synth_engine.CONFIGS:
        raise UserError(f"no engine configuration for {args.board!r} "
                        f"(choose one of {', '.join(sorted(synth_engine.CONFIGS))})")
    argv = ["--board", args.board] + (["--json", args.json] if args.json else []) + (
        ["--seed", str(args.seed)] if args.seed is not None else [])
    return synth_engine.main(argv)


def _check_report(path, root):
    from host.synthesis import source_hash
    try:
        with open(root / path if not str(path).startswith("/") else path) as f:
            rep = json.load(f)
    except (OSError, ValueError) as e:
        raise UserError(f"cannot read {path}: {e}")
    files = rep.get("source_files") or []
    missing = [f for f in files if not (root / f).exists()]
    if not files or missing:
        raise UserError(f"{path}: source files missing: {', '.join(missing) or '?'}")
    now = source_hash(files)
    if rep.get("source_hash") != now:
        raise UserError(f"{path} was built from other sources "
                        f"({rep.get('source_hash', '?')[:12]}…, current {now[:12]}…)")
    print(f"{path}: built from the current sources ({now[:12]}…)")


def handle(args) -> int:
    from host.synthesis import ROOT, build
    if args.check is not None:
        reports = [args.check] if args.check else sorted(
            str(p.relative_to(ROOT)) for p in (ROOT / "bitstreams").glob("*/report.json"))
        if not reports:
            raise UserError("no bitstreams/*/report.json to check")
        for path in reports:
            _check_report(path, ROOT)
        return 0
    if not args.board:
        raise UserError("build needs --board (one of ulx3s-12f, ulx3s-25f, ulx3s-45f, "
                        "ulx3s-85f, icebreaker)")
    for seed in (args.seed or [None]):
        rep = build(args.board, out_root=args.out, clk_mhz=args.clock, quiet=args.quiet,
                    link=not args.no_link, seed=seed, sdram_part=args.sdram,
                    sdram_phase=args.sdram_phase)
        if rep["timing_met"]:
            break
    if not rep["timing_met"]:
        worst = min(rep["fmax"].values(), key=lambda f: f["achieved_mhz"] - f["constraint_mhz"])
        raise UserError(f"{args.board}: timing not met ({worst['achieved_mhz']} MHz < "
                        f"{worst['constraint_mhz']} MHz); bitstream and report written anyway")
    return 0
