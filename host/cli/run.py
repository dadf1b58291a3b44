"""``blockfuse run MODEL --input IN.npy --output OUT.npy`` (README, "The command line").

MODEL is a QDQ-quantised ONNX file or ``zoo:NAME`` (optionally ``zoo:NAME@RES`` with RES = N or
HxW for a reduced input size).  IN.npy holds float32 NCHW inputs; they are quantised as the
model's first QuantizeLinear does, run image by image (N > 1 loops over the batch) on the
chosen target under the chosen schedule, and the int8 outputs are dequantised as ONNX Runtime
outputs them.  OUT.npy is written atomically (temporary file, then rename): on any error no
output file appears.

``blockfuse export MODEL OUT.onnx [--uint8]`` (registered here too) writes a model — typically a
zoo network — as a QDQ ONNX file (:func:`host.model.onnx_export.to_onnx`).

Targets:

* ``golden`` — the NumPy golden model (default);
* ``emu`` — the network compiled into a program (``host.compiler.program``) and executed by
  the program emulator (``host.runtime.emulator``): DMA loads and stores, engine runs (the
  RTL's cycles), pooling, from START to DONE with no host computation in between;
* ``sim`` — conv/FC layers on the engine RTL under Verilator (``sim.engine_layers.EngineSim``);
* ``serial:PORT`` — a board with the accelerator's gateware on a serial port
  (``host.runtime.driver.open_device``): the same program, written over the link, run and read
  back exactly as ``sim`` does it (``host.runtime.program_device``).
"""
from __future__ import annotations

import os
import tempfile

import numpy as np

from host.errors import UserError
from host.compiler.plan import SCHEDULES


def register(sub):
    p = sub.add_parser("run", help="run a quantised ONNX model or zoo network on an input",
                       description="Run a quantised ONNX model (QDQ) or zoo:NAME on IN.npy (float32 "
                                   "NCHW) and write the dequantised float32 output to OUT.npy.")
    p.add_argument("model", metavar="MODEL", help="quantised ONNX file, or zoo:NAME[@RES]")
    p.add_argument("--input", required=True, metavar="IN.npy", help="float32 NCHW input")
    p.add_argument("--output", required=True, metavar="OUT.npy", help="float32 output to write")
    add_execution_options(p, "golden|emu|sim|serial:PORT")
    add_engine_option(p)
    p.add_argument("--stats", metavar="FILE.json",
                   help="write cycles, MACs, utilisation and memory traffic per layer, beside the "
                        "cost model's prediction (keys: README)")
    p.add_argument("--plan", metavar="PLAN.json",
                   help="run exactly this plan (from `blockfuse plan --json`)")
    p.set_defaults(func=handler)
    e = sub.add_parser("export", help="write a model (e.g. a zoo network) as a QDQ ONNX file",
                       description="Write MODEL (zoo:NAME[@RES] or an ONNX file) as a QDQ-quantised "
                                   "ONNX model that ONNX Runtime and Netron can open.")
    e.add_argument("model", metavar="MODEL", help="zoo:NAME[@RES] or quantised ONNX file")
    e.add_argument("output", metavar="OUT.onnx", help="ONNX file to write")
    e.add_argument("--uint8", action="store_true", help="write uint8 activations (default: int8)")
    e.set_defaults(func=export_handler)


def add_execution_options(p, targets: str) -> None:
    """--target, --schedule, --block and --board: how and where a model runs (``run``, ``eval``)."""
    p.add_argument("--target", default="golden", metavar=targets,
                   help="where to run (default: golden); emu: the network compiled into a "
                        "program for the board's accelerator, executed by the program emulator "
                        "(DMA and engine, START to DONE); sim: the engine RTL under Verilator")
    p.add_argument("--schedule", default="fused", choices=SCHEDULES,
                   help="layer-by-layer, exact fusion with halos, or block convolution (default: fused)")
    p.add_argument("--block", nargs=2, type=int, metavar=("H", "W"),
                   help="one block size for every fused group's input map, instead of the "
                        "scheduler's choice")
    p.add_argument("--board", default="ulx3s-85f", metavar="BOARD",
                   help="board whose on-chip budget the scheduler plans for (default: ulx3s-85f)")


def block_option(block) -> tuple | None:
    """``--block H W`` as a tuple (None if not given), with a one-line error if not positive."""
    if block is not None and min(block) < 1:
        raise UserError(f"--block {block[0]} {block[1]}: block sizes must be positive")
    return tuple(block) if block else None


def export_handler(args) -> int:
    """``blockfuse export``: the IR graph as QDQ ONNX, written atomically."""
    from host.model.onnx_export import to_onnx

    graph = load_model(args.model)
    check_output_path(args.output)
    if args.uint8:
        graph.activation_dtype = "uint8"
    data = to_onnx(graph).SerializeToString()
    write_bytes_atomic(args.output, data)
    print(f"{args.output}: {graph.name}, {len(graph.nodes)} layers, {len(data) / 1e6:.1f} MB")
    return 0


def handler(args) -> int:
    target = parse_target(args.target)
    if (args.line_mode or args.engine) and target[0] not in ("sim", "emu"):
        raise UserError(f"{'--line-mode' if args.line_mode else '--engine'} applies to --target "
                        "sim and emu only")
    engine = engine_config(args) if target[0] != "golden" else None
    block = block_option(args.block)
    graph = load_model(args.model)
    x = read_input(args.input)
    check_output_path(args.output)
    if args.stats:
        check_output_path(args.stats)
    plan, how, report = choose_plan(graph, args.schedule, block, args.board, args.plan)
    record = [] if args.stats else None
    frames = [] if args.stats else None
    y = run_batch(graph, x, target, plan.schedule, None, plan=plan, engine=engine, record=record,
                  frames=frames)
    if args.stats:
        from host.cli.stats import run_stats
        stats = run_stats(graph, plan, report, args, target, engine, record, len(x), frames)
        import json
        write_bytes_atomic(args.stats, (json.dumps(stats, indent=1) + "\n").encode())
    write_npy_atomic(args.output, y)
    print(f"{args.output}: {y.shape[0]} output(s) of shape {tuple(y.shape[1:])} "
          f"(target {args.target}, schedule {plan.schedule}, {how})")
    return 0


def choose_plan(graph, schedule: str, block, board: str, plan_file: str | None):
    """The plan ``run`` executes, a few words on where it came from — a plan file, one block
    size for every group (``--block``), or by default the plan for ``board``, so that ``run``
    executes what ``blockfuse plan`` reports: for a board with an accelerator configuration
    the one searched on the compiled program's cost (``host.compiler.program_plan``), else the
    scheduler's — and the scheduler's report of that plan (None when the plan did not come
    from the scheduler)."""
    from host.compiler.plan import default_plan

    if plan_file:
        from host.cli.plan import plan_from_json

        return plan_from_json(plan_file, graph).check(graph), f"plan {plan_file}", None
    if block is not None or schedule == "layer":
        return (default_plan(graph, schedule, block),
                f"blocks {block[0]}x{block[1]}" if block else "no blocks", None)
    acfg = board_config(board)
    why = ""
    if acfg is not None:
        from host.compiler.plan import PlanError
        from host.compiler.program import ProgramError
        try:
            plan, _ = program_plan(graph, acfg, schedule)
            fused = sum(len(g.nodes) > 1 for g in plan.groups)
            return plan, (f"plan for the {board} configuration's program: {len(plan.groups)} "
                          f"groups ({fused} fused)"), None
        except (PlanError, ProgramError) as e:
            why = f" (the configuration's program cannot run it: {e})"
    from host.compiler.scheduler import plan_network

    plan, report = plan_network(graph, board, schedule)
    return plan, f"scheduler plan for {board}: {len(plan.groups)} groups{why}", report


def board_config(board: str):
    """The accelerator configuration of ``board`` (None for a board the scheduler models but
    no configuration is built for)."""
    from hw.configs import BOARD_CONFIGS
    return BOARD_CONFIGS.get(board)


def program_plan(graph, acfg, schedule: str):
    """``host.compiler.program_plan.plan_program`` (plan, group costs) with a progress bar
    while it searches."""
    import sys

    from tqdm import tqdm

    from host.compiler.program_plan import plan_program
    bar = None

    def progress(n):
        nonlocal bar
        if bar is None:
            bar = tqdm(desc=f"planning for {acfg.name}", unit=" groups costed", file=sys.stderr,
                       leave=False, disable=None)
        bar.update(1)
    try:
        return plan_program(graph, acfg, schedule, progress)
    finally:
        if bar is not None:
            bar.close()


# ---------------------------------------------------------------------------------------------
# Model, input, output
# ---------------------------------------------------------------------------------------------

def load_model(spec: str):
    """An IR graph from an ONNX path or ``zoo:NAME[@RES]``."""
    if spec.startswith("zoo:"):
        return _load_zoo(spec[4:])
    from host.model.onnx_import import load_onnx

    return load_onnx(spec)


def _load_zoo(spec: str):
    try:
        from host.model import zoo
    except ImportError as e:
        raise UserError(f"the model zoo is not available ({e})")
    name, resolution = zoo.parse_spec(spec)
    return zoo.get(name, resolution) if resolution is not None else zoo.get(name)


def read_input(path: str) -> np.ndarray:
    """Float input array (N, C, H, W) from a .npy file, with one-line errors."""
    if not os.path.exists(path):
        raise UserError(f"input file {path!r} does not exist")
    try:
        x = np.load(path, allow_pickle=False)
    except Exception as e:          # ValueError (pickled/garbage), OSError, EOFError, …
        raise UserError(f"cannot read input {path!r} as a .npy array: {' '.join(str(e).split())[:200]}")
    if not isinstance(x, np.ndarray):
        if hasattr(x, "close"):
            x.close()
        raise UserError(f"input {path!r} is an .npz archive; give one float32 NCHW array in a .npy file")
    if not np.issubdtype(x.dtype, np.floating):
        raise UserError(f"input {path!r} has dtype {x.dtype}; expected float32 (NCHW)")
    if x.ndim != 4 or x.shape[0] < 1:
        raise UserError(f"input {path!r} has shape {tuple(x.shape)}; expected float32 NCHW (N, C, H, W)")
    if np.isnan(x).any():
        raise UserError(f"input {path!r} contains NaN values")
    return x.astype(np.float32, copy=False)


def check_output_path(path: str) -> None:
    d = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(d):
        raise UserError(f"output directory {d!r} does not exist")
    if os.path.isdir(path):
        raise UserError(f"output {path!r} is a directory")


def write_npy_atomic(path: str, arr: np.ndarray) -> None:
    """Write ``arr`` to ``path`` exactly (no .npy appended) via a temporary file and a rename."""
    import io

    buf = io.BytesIO()
    np.save(buf, arr)
    write_bytes_atomic(path, buf.getvalue())


def write_bytes_atomic(path: str, data: bytes) -> None:
    """Write ``data`` to ``path`` via a temporary file in the same directory and a rename."""
    d = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=".blockfuse-", suffix=".tmp", dir=d)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except OSError as e:
        raise UserError(f"cannot write output {path!r}: {e.strerror or e}")
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


# ---------------------------------------------------------------------------------------------
# Targets
# ---------------------------------------------------------------------------------------------

def parse_target(target: str) -> tuple:
    """('golden',) | ('emu',) | ('sim',) | ('serial', PORT)."""
    if target in ("golden", "emu", "sim"):
        return (target,)
    if target.startswith("serial:") and len(target) > len("serial:"):
        return ("serial", target[len("serial:"):])
    raise UserError(f"unknown target {target!r} (use golden, emu, sim or serial:PORT)")


def add_engine_option(p) -> None:
    """``--engine`` and ``--line-mode``: which accelerator configuration ``--target sim``
    simulates (default: the ``--board``'s own)."""
    p.add_argument("--engine", metavar="CONFIG",
                   help="--target sim/emu: simulate this accelerator configuration instead of the "
                        "board's own: a board name, or a simulation-only engine (sim-8x8, "
                        "sim-8x8-line; they fit no board)")
    p.add_argument("--line-mode", action="store_true",
                   help="--target sim/emu: the simulation-only line-mode engine (sim-8x8-line): the "
                        "row feeder streams each input row once from the map memory into a ring "
                        "of line memories (docs/engine.md)")


def engine_config(args):
    """The :class:`hw.configs.AcceleratorConfig` ``--target sim``/``emu`` runs for ``args``:
    ``--engine``, ``--line-mode``'s engine, or the ``--board``'s own (commands without the first
    two, such as ``eval``, always take the board's)."""
    from hw.configs import get_config
    engine, line_mode = getattr(args, "engine", None), getattr(args, "line_mode", False)
    name = engine or ("sim-8x8-line" if line_mode else args.board)
    if line_mode and name != "sim-8x8-line":
        raise UserError("--line-mode selects the engine sim-8x8-line; do not combine it with "
                        f"--engine {name}")
    try:
        return get_config(name)
    except KeyError as e:
        raise UserError(e.args[0]) from None


def _engine_hooks(target: tuple, engine=None):
    """(hooks for ``golden.run``, the ``EngineSim`` running them) for ``sim``'s engine-runs
    path; ({}, None) for golden."""
    if target[0] == "golden":
        return {}, None
    from sim.engine_layers import EngineSim
    sim = EngineSim(engine.engine if engine is not None else None)
    return dict(conv_fn=sim.conv_fn, fc_fn=sim.fc_fn, conv_pool_fn=sim.conv_pool_fn), sim


def _board(port: str, graph, plan, acfg):
    """A board on ``port`` running ``graph`` as a program for ``acfg`` (``--board``'s
    configuration), after checking that its engine is that configuration's."""
    from host.compiler.program import compile_program
    from host.runtime import driver
    from host.runtime.program_device import ProgramDevice
    dev = driver.open_device(port)
    try:
        info = dev.info()
        if (info.pe_rows, info.pe_cols) != (acfg.engine.rows, acfg.engine.cols):
            raise UserError(f"serial:{port} has a {info.pe_rows}x{info.pe_cols} engine, the "
                            f"{acfg.name} configuration a {acfg.engine.rows}x{acfg.engine.cols} "
                            f"one (pass its --board)")
        return ProgramDevice(dev, compile_program(graph, acfg, plan))
    except BaseException:
        dev.close()
        raise


def run_batch(graph, x: np.ndarray, target: tuple, schedule: str, block, plan=None,
              engine=None, record: list | None = None, progress=None,
              frames: list | None = None) -> np.ndarray:
    """Quantise ``x`` (N, C, H, W), run every image on ``target`` under ``plan`` (default: the
    simple plan for ``schedule``/``block``), dequantise the outputs.  ``record``: a list that
    receives the engine's per-layer records (``EngineSim.stats``) of the whole batch;
    ``frames``: one that receives the program's counters per image (``emu``);
    ``progress()`` is called after each image."""
    from host.runtime import golden
    from host.model.onnx_import import input_quant, output_dequant
    from host.compiler.plan import default_plan

    q = input_quant(graph, x)
    plan = plan or default_plan(graph, schedule, block)
    runner, hooks = None, {}
    close = None
    try:
        from hw.configs import get_config
        acfg = engine or get_config("ulx3s-85f")
        program = None
        if target[0] == "sim" and acfg.board:
            # a board configuration: the whole SoC under Verilator, over the protocol — if the
            # network compiles into a program; otherwise the engine runs as before
            from host.compiler.program import ProgramError, compile_program
            try:
                program = compile_program(graph, acfg, plan)
            except ProgramError as e:
                import sys
                print(f"note: {e} — --target sim runs the engine layer by layer instead, the "
                      f"host computing between the runs", file=sys.stderr)
        if target[0] == "emu":
            from host.runtime.emulator import EmuTarget
            runner = EmuTarget(graph, plan, acfg)
        elif target[0] == "serial":
            runner = _board(target[1], graph, plan, acfg)
            close = runner.dev.close
        elif program is not None:
            from host.runtime.program_device import SimulatedAccelerator
            runner = SimulatedAccelerator(acfg, program)
            close = runner.close
        else:
            hooks, runner = _engine_hooks(target, engine)
        ys = []
        for qi in q:
            ys.append(golden.run(graph, qi, plan=plan, **hooks)
                      if target[0] == "golden" or hooks else runner.run(qi))
            if progress is not None:
                progress()
    except UserError:
        raise
    except Exception as e:
        if target[0] == "golden":
            raise
        msg = f"target {target[0]} failed: {type(e).__name__}: {' '.join(str(e).split())[:300]}"
        if type(e).__name__ == "EngineCapacityError" and engine is not None and engine.board:
            msg += (f" (the {engine.name} engine cannot tile this layer yet; --engine sim-8x8 "
                    "simulates a larger, simulation-only engine)")
        raise UserError(msg)
    finally:
        if close is not None:
            close()
    if record is not None and runner is not None:
        record += getattr(runner, "stats", [])
    if frames is not None and runner is not None:
        new = getattr(runner, "frames", [])
        if new and getattr(runner, "program", None) is not None:
            # the program's cost counted from its instructions before it ran
            # (host.runtime.emulator.predict), beside what the run counted
            from host.runtime.emulator import predict
            st = predict(runner.program, acfg)
            for f in new:
                f["predicted"] = dict(cycles=st.cycles, read=st.read, written=st.written)
        frames += new
    return output_dequant(graph, np.stack(ys))
