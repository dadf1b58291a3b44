"""``blockfuse build --board BOARD``: bitstream and report into ``bitstreams/BOARD/``."""
from __future__ import annotations

import json

from .errors import UserError


def register(subparsers):
    from .build import BOARDS
    p = subparsers.add_parser(
        "build", help="build a board's bitstream (bitstreams/BOARD/ with report.json)",
        description="Synthesise, place and route the SoC for a board with the pip-installed "
                    "YoWASP tools; writes build/BOARD/ and bitstreams/BOARD/{top.bit|top.bin,"
                    "report.json}.")
    p.add_argument("--board", choices=BOARDS, help="target board")
    p.add_argument("--clock", type=float, metavar="MHZ",
                   help="system clock (default: the board's, 100 MHz ULX3S, 48 MHz iCEBreaker)")
    p.add_argument("--out", metavar="DIR", help="output root instead of bitstreams/")
    p.add_argument("--hash", action="store_true",
                   help="print the hash of the current gateware sources and exit "
                        "(compare with source_hash in a report.json)")
    p.add_argument("--check", metavar="REPORT",
                   help="check that REPORT (a report.json) was built from the current sources")
    p.add_argument("--quiet", action="store_true", help="no progress output")
    p.set_defaults(func=handle)


def handle(args) -> int:
    from .build import build, source_hash
    if args.hash:
        print(source_hash())
        return 0
    if args.check:
        try:
            with open(args.check) as f:
                rep = json.load(f)
        except (OSError, ValueError) as e:
            raise UserError(f"cannot read {args.check}: {e}")
        now = source_hash()
        if rep.get("source_hash") != now:
            raise UserError(f"{args.check} was built from other sources "
                            f"({rep.get('source_hash', '?')[:12]}…, current {now[:12]}…)")
        print(f"{args.check}: built from the current sources ({now[:12]}…)")
        return 0
    if not args.board:
        raise UserError("build needs --board (one of ulx3s-12f, ulx3s-25f, ulx3s-45f, "
                        "ulx3s-85f, icebreaker)")
    rep = build(args.board, out_root=args.out, clk_mhz=args.clock, quiet=args.quiet)
    return 0 if rep["timing_met"] else 1
