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
                   help="system clock (default: the board's, 100 MHz ULX3S, 42 MHz iCEBreaker)")
    p.add_argument("--out", metavar="DIR", help="output root instead of bitstreams/")
    p.add_argument("--no-link", action="store_true",
                   help="leave the host link out (memory system, self-test and LEDs only)")
    p.add_argument("--check", metavar="REPORT",
                   help="check that REPORT (a report.json) was built from the current sources")
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


def handle(args) -> int:
    from host.synthesis import ROOT, build, source_hash
    if args.check:
        try:
            with open(args.check) as f:
                rep = json.load(f)
        except (OSError, ValueError) as e:
            raise UserError(f"cannot read {args.check}: {e}")
        files = rep.get("source_files") or []
        missing = [f for f in files if not (ROOT / f).exists()]
        if not files or missing:
            raise UserError(f"{args.check}: source files missing: {', '.join(missing) or '?'}")
        now = source_hash(files)
        if rep.get("source_hash") != now:
            raise UserError(f"{args.check} was built from other sources "
                            f"({rep.get('source_hash', '?')[:12]}…, current {now[:12]}…)")
        print(f"{args.check}: built from the current sources ({now[:12]}…)")
        return 0
    if not args.board:
        raise UserError("build needs --board (one of ulx3s-12f, ulx3s-25f, ulx3s-45f, "
                        "ulx3s-85f, icebreaker)")
    for seed in (args.seed or [None]):
        rep = build(args.board, out_root=args.out, clk_mhz=args.clock, quiet=args.quiet,
                    link=not args.no_link, seed=seed)
        if rep["timing_met"]:
            break
    if not rep["timing_met"]:
        worst = min(rep["fmax"].values(), key=lambda f: f["achieved_mhz"] - f["constraint_mhz"])
        raise UserError(f"{args.board}: timing not met ({worst['achieved_mhz']} MHz < "
                        f"{worst['constraint_mhz']} MHz); bitstream and report written anyway")
    return 0
