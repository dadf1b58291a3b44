"""Running a network program on a device over the link — the simulated SoC or a board alike.

The host writes the program image (instructions and constants) once; per frame it writes the
input map, STARTs the controller at address 0, polls STATUS until it is idle, checks the error
code and reads the output.  Every byte crosses the protocol (``host.runtime.driver.Device``).
"""
from __future__ import annotations

import time

import numpy as np

from host.runtime.driver import DeviceError

__all__ = ["ProgramDevice", "soc_config", "SimulatedAccelerator"]


class ProgramDevice:
    """A :class:`host.runtime.driver.Device` holding ``program`` (``host.compiler.program``)."""

    def __init__(self, device, program, timeout: float = 3600.0, preloaded: bool = False):
        from hw.soc.controller import PERF
        self.dev, self.program, self.timeout = device, program, timeout
        info = device.info()
        if info.mem_bytes < program.size:
            raise DeviceError(f"the program needs {program.size:,} bytes of memory, the device "
                              f"has {info.mem_bytes:,}")
        if info.n_perf != len(PERF):
            raise DeviceError(f"the device reports {info.n_perf} counters, not the "
                              f"controller's {len(PERF)}: is its gateware an accelerator?")
        self.perf_names = PERF
        self.frames: list = []
        #: the program emulator beside the device: every frame must agree with it, and it
        #: gives the per-layer split of the device's totals (``stats``)
        from host.runtime.emulator import EmuTarget
        from hw.configs import get_config
        self.emu = EmuTarget(None, None, get_config(program.board), program=program)
        image = _padded(program.image(), info.word_bytes)
        if preloaded:
            # started from the simulation back door: check that it holds this program
            n = min(len(image), 4096)
            if device.read(0, n) != image[:n]:
                raise DeviceError("the simulated memory does not hold the program's image")
        else:
            device.write(0, image)

    @property
    def stats(self) -> list:
        """Per-layer records of every frame (the emulator's split of the same program)."""
        return self.emu.stats

    def run(self, x: np.ndarray) -> np.ndarray:
        p, dev = self.program, self.dev
        wb = dev.info().word_bytes
        dev.write(p.input.addr, _padded(p.input_bytes(x), wb))
        t_start = time.perf_counter()
        dev.start(0)
        st = dev.wait_idle(self.timeout)
        t_done = time.perf_counter()
        perf = dict(zip(self.perf_names, st["perf"]))
        if st["engine_error"]:
            pc = perf["pc"]
            where = (p.layers[pc] or "HALT") if pc < len(p.layers) else "past the program"
            raise DeviceError(f"the controller stopped with error {st['engine_error']:#04x} at "
                              f"instruction {pc} ({where})")
        n = -(-p.output.nbytes // wb) * wb
        y = p.read_output(dev.read(p.output.addr, n))
        want = self.emu.run(x)
        if not np.array_equal(y, want):
            raise DeviceError(f"{dev.name}: the output differs from the program emulator's "
                              f"(a hardware fault, or gateware that is not this program's)")
        self.frames.append(dict(cycles=perf["cycles"],
                                busy=dict(dma=perf["dma_cycles"], engine=perf["engine_cycles"]),
                                wait=perf["wait_cycles"],
                                read=perf["bytes_read"], written=perf["bytes_written"],
                                act=perf["act_bytes"],
                                fetched=perf["insns"] * 32, insns=perf["insns"],
                                # wall seconds from START until STATUS said idle (the device's
                                # speed: not the input, the output or the emulator's check)
                                seconds=t_done - t_start,
                                # the program's off-chip bytes by kind (map, weights, tables):
                                # the emulator's split; the RTL's totals equal its (checked by
                                # tests/test_cli_run.py::test_stats_file)
                                traffic=dict(self.emu.frames[-1]["traffic"])))
        return y


def _padded(raw: bytes, wb: int) -> bytes:
    return raw + bytes(-len(raw) % wb)


def soc_config(acfg):
    """The simulated SoC (``sim.link_sim.SimConfig``) of a board configuration: its accelerator
    core in the link SoC, with the board's memory: the ULX3S configurations the board's SDRAM
    controller and a timing-checking model of the chip (``sim.sim_sdram``), the iCEBreaker its
    SPRAM target with its SPRAM blocks (``hw.memory.spram``, yosys's model of the primitive),
    others a behavioural RAM answering in one cycle (``sim.sim_ram``)."""
    from sim.link_sim import SimConfig
    return SimConfig(mem_bytes=min(acfg.memory_bytes, 32 << 20), max_payload=1024,
                     accel=acfg.name,
                     memory=acfg.memory if acfg.memory in ("sdram", "spram") else "ram")


class SimulatedAccelerator(ProgramDevice):
    """``--target sim`` on a board configuration: the whole SoC under Verilator, started with
    the program's image through the simulation back door (``sim.link_sim.BACKDOOR_PLUSARG``)
    where its memory has one (the iCEBreaker's SPRAM has none: the image is written over the
    protocol, as on the board); inputs, START, STATUS and outputs cross the protocol."""

    def __init__(self, acfg, program):
        import tempfile
        from pathlib import Path


        from host.runtime.driver import Device, SimTransport
        from sim.link_sim import write_image
        self.tmp = tempfile.TemporaryDirectory(prefix="blockfuse-image-")
        config = soc_config(acfg)
        image = None
        if config.has_backdoor:
            image = write_image(Path(self.tmp.name) / "image.hex", program.image(),
                                config.backdoor_word_bytes)
        dev = Device(SimTransport(config=config, image=image))
        try:
            super().__init__(dev, program, preloaded=image is not None)
        except BaseException:
            dev.close()
            raise

    def close(self):
        self.dev.close()
        self.tmp.cleanup()
