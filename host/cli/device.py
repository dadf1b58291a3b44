"""``blockfuse device info|selftest --target sim|serial:PORT``: talk to a device over the link."""
from __future__ import annotations

from host.errors import UserError


def _target_arg(p):
    p.add_argument("--target", default="sim", metavar="sim|serial:PORT",
                   help="the Verilated SoC (sim, default) or a board on a serial port "
                        "(serial:/dev/ttyUSB0; the baud rate is found by trying each board's "
                        "default, or give @BAUD or @BOARD)")
    p.add_argument("--timeout", type=float, default=None,
                   help="seconds to wait for each reply (default: 1 on serial, 20 in sim)")
    p.add_argument("--retries", type=int, default=3, help="resends of a failed frame")


def register(subparsers):
    dev = subparsers.add_parser("device", help="query and test a device over the host link")
    sub = dev.add_subparsers(dest="device_command", metavar="{info,selftest}")
    dev.set_defaults(func=lambda args: (dev.print_help(), 2)[1])

    p = sub.add_parser("info", help="print what the device reports about itself")
    _target_arg(p)
    p.set_defaults(func=cmd_info)

    p = sub.add_parser("selftest", help="write random data, read it back and verify")
    _target_arg(p)
    p.add_argument("--bytes", type=int, default=None,
                   help="bytes to test (default: 8 KiB in sim, the whole memory on a board)")
    p.add_argument("--seed", type=int, default=1)
    p.set_defaults(func=cmd_selftest)


def _open(args):
    from host.runtime.driver import Device
    if args.retries < 0:
        raise UserError("--retries must be >= 0")
    return Device.open(args.target, timeout=args.timeout, retries=args.retries)


def cmd_info(args) -> int:
    with _open(args) as dev:
        i = dev.info()
        st = dev.status()
    clock = f"{i.clock_hz / 1e6:g} MHz" if i.clock_hz else "n/a"
    baud = f"{i.baud:,} baud" if i.baud else "n/a"
    print(f"board          {i.board}")
    print(f"clock          {clock}")
    print(f"link           {baud}, max payload {i.max_payload} B, protocol v{i.protocol}")
    print(f"memory         {i.mem_bytes} B in {i.word_bytes}-byte words")
    print(f"PE array       {i.pe_rows}x{i.pe_cols}" if i.pe_rows else "PE array       none "
          "(link SoC without engine)")
    print(f"buffers        {i.buffer_bytes} B on chip")
    print(f"gateware       {i.version_hash:016x}")
    print(f"engine         {'busy' if st['busy'] else 'idle'}"
          f"{', done' if st['done'] else ''}, error {st['engine_error']}")
    print(f"frames         {st['frames_ok']} ok, {st['frames_bad']} refused, "
          f"{st['rx_errors']} UART errors")
    cal = st["sdram_cal"]
    if cal["done"]:
        window = ", ".join(map(str, cal["passed"])) or "none"
        print(f"sdram capture  cycle {cal['position']} (passing: {window}; boot calibration "
              f"{'ok' if cal['ok'] else 'FAILED, no cycle read the pattern back'})")
    elif i.board.startswith("ulx3s"):
        print("sdram capture  not calibrated yet")
    return 0


def cmd_selftest(args) -> int:
    with _open(args) as dev:
        info = dev.info()
        n = args.bytes
        if n is None:
            n = min(info.mem_bytes, 8192) if args.target == "sim" else info.mem_bytes
        if not 0 < n <= info.mem_bytes:
            raise UserError(f"--bytes must be between 1 and {info.mem_bytes}")
        r = dev.selftest(n, seed=args.seed)
    rate = ""
    if r["write_s"] > 0 and r["read_s"] > 0:
        rate = (f" (write {r['bytes'] / r['write_s'] / 1024:.1f} KiB/s, "
                f"read {r['bytes'] / r['read_s'] / 1024:.1f} KiB/s)")
    print(f"selftest passed: {r['bytes']} bytes written and read back{rate}; "
          f"{r['resent']} frames resent, device counted {r['frames_bad']} refused frames")
    return 0
