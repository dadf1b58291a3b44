"""The simulated device: the link SoC under Verilator, reachable over a loopback TCP socket.

``SimDevice`` builds :class:`hw.soc.link_soc.SimLinkTop` (once per configuration: ``sim/runner.py``
caches Verilator builds by hash), then starts the simulator in a child process running the
cocotb bench ``sim.link_bench.serve``.  The bench connects back to a socket the host side
listens on and moves bytes both ways: bytes from the host go into the host-side UART, which
drives the SoC's rx pin bit by bit; what the SoC's UART sends comes back the same way.  Simulated
time stands still while the link is quiet and the host sends nothing, so figures measured in
simulated time (bit times) do not depend on how fast the host process is.

``SimConfig`` fixes the simulated SoC (divisor 4 clocks per bit by default, for speed).
"""
from __future__ import annotations

import dataclasses
import importlib
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable

from sim.sim_ram import PLUSARG as BACKDOOR_PLUSARG
from sim.sim_sdram import BACKDOOR_WORD_BYTES as SDRAM_BACKDOOR_WORD_BYTES

REPO = Path(__file__).resolve().parent.parent


@dataclasses.dataclass(frozen=True)
class SimMemory:
    """A memory the simulated SoC can hold behind its link and accelerator."""
    description: str             #: what it is, in words for reports
    #: bytes per line of its back door's image (0: the SoC's word), None: no back door
    backdoor: int | None
    max_reads: int               #: reads the link SoC's arbiter lets be in flight
    verilog: Callable[[], str]   #: the Verilog its simulation adds to the design's


def _verilog(module: str, name: str) -> Callable[[], str]:
    return lambda: getattr(importlib.import_module(module), name)


MEMORIES = {
    # a behavioural RAM answering in one cycle (sim.sim_ram)
    "ram": SimMemory("a behavioural RAM answering in one cycle", 0, 4,
                     _verilog("sim.sim_ram", "VERILOG")),
    # the board's SDRAM controller and the timing-checking chip model at the accelerator's
    # clock (sim.sim_sdram); 16 reads in flight, as the board top allows
    "sdram": SimMemory("the board's SDRAM controller and a timing-checking model of the SDRAM "
                       "chip", SDRAM_BACKDOOR_WORD_BYTES, 16, _verilog("sim.sim_sdram", "VERILOG")),
    # the iCEBreaker's SPRAM target as on the board (hw.memory.spram), its SB_SPRAM256KA
    # blocks under yosys's own simulation model; no back door
    "spram": SimMemory("the board's SPRAM memory target, its SB_SPRAM256KA blocks under "
                       "yosys's simulation model", None, 4,
                       lambda: importlib.import_module("sim.ice40_cells").sb_spram256ka()),
}
#: clock of the simulated SoC as reported by INFO (the simulation itself has no real time)
SIM_CLOCK_HZ = 48_000_000


@dataclasses.dataclass(frozen=True)
class SimConfig:
    divisor: int = 4
    mem_bytes: int = 16384
    word_bytes: int = 4
    max_payload: int = 1024
    rx_fifo: int = 64
    tx_fifo: int = 16
    host_fifo: int = 256
    #: the accelerator configuration (``hw.configs``) whose controller and engine the SoC
    #: holds as its engine; "" for the link's engine stand-in
    accel: str = ""
    #: the memory behind the link and the accelerator, one of :data:`MEMORIES`
    memory: str = "ram"

    @property
    def _kind(self) -> "SimMemory":
        try:
            return MEMORIES[self.memory]
        except KeyError:
            raise ValueError(f"unknown simulated memory {self.memory!r} "
                             f"({', '.join(MEMORIES)})") from None

    @property
    def memory_description(self) -> str:
        """What holds the simulated SoC's memory, in words for reports."""
        return self._kind.description

    @property
    def has_backdoor(self) -> bool:
        """Whether the memory can start from a ``$readmemh`` image (:func:`write_image`)."""
        return self._kind.backdoor is not None

    @property
    def backdoor_word_bytes(self) -> int:
        """Bytes per line of the back door's ``$readmemh`` image (:func:`write_image`)."""
        return self._kind.backdoor or self.word_bytes

    def _memory(self, acfg):
        if self.memory == "ram":
            from sim.sim_ram import SimRAM
            mem = SimRAM(self.mem_bytes // self.word_bytes, 8 * self.word_bytes)
        elif self.memory == "sdram":
            from sim.sim_sdram import SimSDRAM
            mem = SimSDRAM(acfg.clock_mhz * 1e6)
        else:
            from hw.memory.spram import SPRAMMemory
            mem = SPRAMMemory(8 * self.word_bytes, primitives=True)
        sig = mem.bus.signature
        if sig.data_width != 8 * self.word_bytes or (sig.data_width << sig.addr_width) \
                != 8 * self.mem_bytes:
            raise ValueError(f"the {self.memory} holds {sig.data_width // 8}-byte words, "
                             f"{(sig.data_width << sig.addr_width) // 8} bytes; the SoC asks "
                             f"for {self.word_bytes}, {self.mem_bytes}")
        return mem

    def _engine(self):
        if not self.accel:
            return {}
        from amaranth.utils import ceil_log2

        from hw.configs import get_config
        from hw.soc.accelerator import Accelerator
        from hw.soc.controller import PERF
        acfg = get_config(self.accel)
        words = self.mem_bytes // self.word_bytes
        return dict(engine=Accelerator(acfg, max(1, ceil_log2(words)), 8 * self.word_bytes),
                    memory=self._memory(acfg), max_reads=self._kind.max_reads,
                    n_perf=len(PERF), pe_rows=acfg.engine.rows, pe_cols=acfg.engine.cols)

    def soc(self):
        from hw.soc.link_soc import LinkSoC
        return LinkSoC(divisor=self.divisor, mem_bytes=self.mem_bytes,
                       word_bytes=self.word_bytes, max_payload=self.max_payload,
                       clock_hz=SIM_CLOCK_HZ, board="sim", rx_fifo=self.rx_fifo,
                       tx_fifo=self.tx_fifo, **self._engine())

    def info(self):
        from hw.soc.link_soc import LinkSoC
        extra = {k: v for k, v in self._engine().items()
                 if k not in ("engine", "memory", "max_reads")}
        return LinkSoC.make_info(divisor=self.divisor, mem_bytes=self.mem_bytes,
                                 word_bytes=self.word_bytes, max_payload=self.max_payload,
                                 clock_hz=SIM_CLOCK_HZ, board="sim", **extra)

    def top(self):
        from hw.soc.link_soc import SimLinkTop
        return SimLinkTop(self.soc(), host_fifo=self.host_fifo)


def build(config: SimConfig = SimConfig()) -> Path:
    """Verilate the sim top for ``config`` (cached) and return its build directory."""
    from sim import runner
    from sim.link_bench import PERIOD_NS
    extra = config._kind.verilog() if config.accel else ""
    top = config.top()
    # the top makes its own clock (sim.runner.self_clocked_top): the benches only wait for it
    return runner.build(runner.to_verilog(top, name="soc_top") + extra
                        + runner.self_clocked_top(top, "soc_top", PERIOD_NS // 2),
                        build_args=runner.BUILD_ARGS + runner.TIMING_ARGS)


def write_image(path: Path, image: bytes, word_bytes: int = 4) -> Path:
    """``image`` as the back door's ``$readmemh`` file."""
    import numpy as np
    raw = image + bytes(-len(image) % word_bytes)
    words = np.frombuffer(raw, dtype=f"<u{word_bytes}")
    Path(path).write_text("\n".join(f"{w:0{2 * word_bytes}x}" for w in words.tolist()) + "\n")
    return Path(path)


def run_bench(config: SimConfig, test: str, env: dict, log: Path, results: Path,
              bdir: Path | None = None, image: Path | None = None):
    """Run cocotb test ``test`` of ``sim.link_bench`` (blocking); returns (ntests, nfail).
    ``image``: a back-door memory image (:func:`write_image`) the memory starts from."""
    from cocotb_tools.runner import get_results, get_runner

    from sim import runner
    bdir = bdir or build(config)
    tdir = Path(tempfile.mkdtemp(prefix="link-", dir=bdir))
    env = {k: str(v) for k, v in env.items()} | {"BLOCKFUSE_LINK_DIVISOR": str(config.divisor)}
    try:
        with runner.verilator_env(), runner._no_pytest_env():
            get_runner("verilator").test(test_module="sim.link_bench", testcase=test,
                                         hdl_toplevel=runner.TOP, hdl_toplevel_lang="verilog",
                                         build_dir=bdir, test_dir=tdir,
                                         plusargs=[f"+{BACKDOOR_PLUSARG}={image}"] if image else [],
                                         extra_env=env, results_xml=str(results), log_file=log)
    finally:
        shutil.rmtree(tdir, ignore_errors=True)     # the log and results live elsewhere
    return get_results(results)


class SimDevice:
    """A running simulated device; ``sock`` is connected to it.  Use as a context manager.

    ``stop_after``: the simulated device stops sending after this many reply bytes (a device
    that dies mid-transfer, for the driver's robustness tests).
    """

    def __init__(self, config: SimConfig = SimConfig(), stop_after: int | None = None,
                 connect_timeout: float = 600.0, image: Path | None = None):
        self.config = config
        bdir = build(config)
        lsock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        lsock.bind(("127.0.0.1", 0))
        lsock.listen(1)
        lsock.settimeout(1.0)
        port = lsock.getsockname()[1]
        self.logdir = Path(tempfile.mkdtemp(prefix="blockfuse-sim-"))
        self.log = self.logdir / "sim.log"
        args = [sys.executable, "-m", "sim.link_sim", str(bdir), str(port),
                str(stop_after if stop_after is not None else -1), str(self.logdir),
                str(image) if image else "-", json.dumps(dataclasses.asdict(config))]
        with open(self.logdir / "launcher.log", "wb") as launcher_log:
            self.proc = subprocess.Popen(args, cwd=REPO, stdout=subprocess.DEVNULL,
                                         stderr=launcher_log, start_new_session=True)
        t0 = time.time()
        try:
            while True:
                try:
                    self.sock, _ = lsock.accept()
                    break
                except socket.timeout:
                    if self.proc.poll() is not None or time.time() - t0 > connect_timeout:
                        raise RuntimeError(f"simulator did not start; see {self.logdir}")
        finally:
            lsock.close()
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def close(self):
        """Disconnect and wait for the simulator to end.  Its logs (``logdir``) are deleted
        when it ended cleanly and kept for reading when it did not."""
        try:
            self.sock.close()
        except OSError:
            pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.kill(keep_logs=True)
        if self.proc.returncode == 0:
            shutil.rmtree(self.logdir, ignore_errors=True)

    def kill(self, keep_logs: bool = False):
        """End the simulator abruptly (a device that disappears): the launcher and the
        simulator it started share the process group created for the launcher."""
        import signal
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.proc.wait()
        if not keep_logs:
            shutil.rmtree(self.logdir, ignore_errors=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def _main(argv):
    bdir, port, stop_after, logdir, image, cfg = argv
    config = SimConfig(**json.loads(cfg))
    logdir = Path(logdir)
    env = {"BLOCKFUSE_LINK_PORT": port, "BLOCKFUSE_LINK_STOP_AFTER": stop_after}
    n, fail = run_bench(config, "serve", env, logdir / "sim.log", logdir / "results.xml",
                        Path(bdir), None if image == "-" else Path(image))
    return 1 if (fail or not n) else 0


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
