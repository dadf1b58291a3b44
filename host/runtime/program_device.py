"""Running a network program on a device over the link — the simulated SoC or a board alike.

The host writes the program image (instructions and constants) once; per frame it writes the
input map, STARTs the controller at address 0, polls STATUS until it is idle, checks the error
code and reads the output.  Every byte crosses the protocol (``host.runtime.driver.Device``).
"""
from __future__ import annotations

import numpy as np

from host.runtime.driver import DeviceError

__all__ = ["ProgramDevice"]


class ProgramDevice:
    """A :class:`host.runtime.driver.Device` holding ``program`` (``host.compiler.program``)."""

    def __init__(self, device, program, timeout: float = 600.0):
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
        self.stats: list = []
        device.write(0, _padded(program.image(), info.word_bytes))

    def run(self, x: np.ndarray) -> np.ndarray:
        p, dev = self.program, self.dev
        wb = dev.info().word_bytes
        dev.write(p.input.addr, _padded(p.input_bytes(x), wb))
        dev.start(0)
        st = dev.wait_idle(self.timeout)
        perf = dict(zip(self.perf_names, st["perf"]))
        if st["engine_error"]:
            raise DeviceError(f"the controller stopped with error {st['engine_error']:#04x} at "
                              f"instruction {perf['pc']} ({p.layers[perf['pc']] or 'HALT'})")
        n = -(-p.output.nbytes // wb) * wb
        y = p.read_output(dev.read(p.output.addr, n))
        self.frames.append(dict(cycles=perf["cycles"],
                                busy=dict(dma=perf["dma_cycles"], engine=perf["engine_cycles"]),
                                read=perf["bytes_read"], written=perf["bytes_written"],
                                fetched=perf["insns"] * 32, insns=perf["insns"]))
        return y


def _padded(raw: bytes, wb: int) -> bytes:
    return raw + bytes(-len(raw) % wb)
