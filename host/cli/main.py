"""The ``blockfuse`` command line (README, "The command line").

Each subcommand lives in its own module exposing ``register(subparsers)``; the module's handler
gets the parsed arguments and returns an exit code.  Any :class:`host.errors.UserError` (bad file,
unsupported operator, missing device …) becomes one line on stderr and exit code 1 — never a
traceback.
"""
from __future__ import annotations

import argparse
import importlib
import os
import sys

# The golden model's many small matrix products are slowed down, not sped up, by BLAS threads
# on a 2-core machine (and oversubscribe it under pytest-xdist): one thread unless the user says.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

from host.errors import UserError

# Modules that add subcommands. A module that is missing (part not built yet) is skipped.
SUBCOMMAND_MODULES = [
    "host.cli.run",        # run
    "host.cli.zoo",        # zoo, zoo info
    "host.cli.plan",       # plan
    "host.cli.device",     # device info / selftest
    "host.cli.build",      # build, synth-engine
    "host.cli.bench",      # bench
    "host.cli.demo",       # demo
    "host.cli.eval",       # eval
]


def make_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="blockfuse",
        description="Open CNN inference accelerator for open-toolchain FPGAs.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for modname in SUBCOMMAND_MODULES:
        try:
            mod = importlib.import_module(modname)
        except ModuleNotFoundError as e:
            if e.name == modname:
                continue
            raise
        mod.register(sub)
    return parser


def main(argv=None) -> int:
    parser = make_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except UserError as e:
        print(f"blockfuse: error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("blockfuse: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:                      # e.g. `blockfuse zoo info vgg16 | head`
        sys.stderr.close()
        return 0


if __name__ == "__main__":
    sys.exit(main())
