"""Compiled layers on the RTL engine under Verilator (``sim.tb_engine``): the engine's Verilog
for a configuration, then one simulator process per batch of programs.
"""
from __future__ import annotations

import numpy as np

from host.compiler.layer import LayerProgram
from host.compiler.pack import pack_program, unpack_output
from hw.engine.engine import Engine, EngineConfig

__all__ = ["engine_verilog", "simulate", "simulate_many"]


_VERILOG = {}


def engine_verilog(cfg: EngineConfig) -> str:
    """Verilog of the engine for ``cfg``, generated once per process (it takes seconds)."""
    key = repr(cfg)
    if key not in _VERILOG:
        from sim.runner import to_verilog
        _VERILOG[key] = to_verilog(Engine(cfg))
    return _VERILOG[key]


def simulate_many(progs: list, cfg: EngineConfig) -> list:
    """Run compiled layers one after another on one RTL simulation (one simulator process for
    the batch); returns (int8 map, cycles, timing info) per program, as :func:`simulate`."""
    from sim.runner import run_cocotb
    packed = [pack_program(prog, cfg) for prog in progs]
    inputs = {k: np.concatenate([pk[k] for pk in packed])
              for k in ("in_hex", "w_hex", "step_hex", "blk_hex", "desc_hex", "n_out")}
    for k in ("in_hex", "w_hex", "step_hex", "blk_hex"):
        inputs[k.replace("_hex", "_n")] = np.array([len(pk[k]) for pk in packed])
    out = run_cocotb(engine_verilog(cfg), "sim.tb_engine", inputs=inputs)
    words = np.array([[(int(h, 16) >> (8 * c)) & 0xFF for c in range(cfg.cols)]
                      for h in out["out_hex"]], dtype=np.uint8).view(np.int8).reshape(-1, cfg.cols)
    info = dict(sim_seconds=float(out["sim_seconds"][0]) / len(progs),
                cpu_seconds=float(out["cpu_seconds"][0]) / len(progs))
    results, at = [], 0
    for k, (prog, pk) in enumerate(zip(progs, packed)):
        n = int(pk["n_out"][0])
        i = dict(info)
        if cfg.line_rows:
            i["fetched"] = int(out["fetched"][k])     # map words the row feeder read
        results.append((unpack_output(prog, words[at:at + n]), int(out["cycles"][k]), i))
        at += n
    return results


def simulate(prog: LayerProgram, cfg: EngineConfig) -> tuple[np.ndarray, int, dict]:
    """Run one compiled layer on the RTL; returns (int8 map, cycles, timing info)."""
    return simulate_many([prog], cfg)[0]
