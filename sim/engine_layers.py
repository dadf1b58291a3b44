"""``host.model.ir`` conv/FC layers on the engine: compiled (``host.compiler.tiling``), run under
Verilator (``sim.engine_rtl``) or on the NumPy model (``host.runtime.engine_model``), with the int8
result, the cycle count and per-layer statistics.

Public API (used by ``blockfuse run --target sim``)::

    y, cycles = run_conv(node, x_int8, zx, zy=0, config=None, padded=False)
    y, cycles = run_fc(node, x_int8, zx, zy=0, config=None)
    sim = EngineSim(config)              # keeps per-layer statistics
    golden.run(graph, x, ..., conv_fn=sim.conv_fn, fc_fn=sim.fc_fn,
               conv_pool_fn=sim.conv_pool_fn)   # conv + 2×2 max-pool in one engine run
    sim.stats                            # [{"name", "macs", "cycles", "pes", "utilisation"}]

``node`` is a :class:`host.model.ir.Conv` / :class:`host.model.ir.FC` after ``Graph.finalize()`` (it needs
``mult``/``shift``).  ``x_int8`` is CHW (conv) or a vector (FC).  With ``padded=True`` the map
is already padded (as ``golden.run`` hands it to ``conv_fn``) and the node's pads are ignored.
"""
from __future__ import annotations

import numpy as np

from host.compiler.layer import DEFAULT_CONFIG, LayerProgram
from host.compiler.pack import program_bytes
from host.compiler.tiling import conv_chunks, conv_parts
from host.runtime.engine_model import emulate_many
from hw.engine.engine import EngineConfig
from sim.engine_rtl import simulate_many

__all__ = ["run_conv", "run_fc", "EngineSim"]


def _add_fetched(info: dict | None, sim_info: dict, prog: LayerProgram,
                 cfg: EngineConfig) -> None:
    """Add a run's map words read (line mode) and its memory traffic (:func:`program_bytes`) to
    the caller's ``info``, if it asked."""
    if info is None:
        return
    if "fetched" in sim_info:
        info["fetched"] = info.get("fetched", 0) + sim_info["fetched"]
    rd, wr = program_bytes(prog, cfg)
    info["read"] = info.get("read", 0) + rd
    info["written"] = info.get("written", 0) + wr


def run_conv(node, x, zx: int, zy: int = 0, config: EngineConfig | None = None,
             padded: bool = False, pool: bool = False,
             info: dict | None = None, execute=None) -> tuple[np.ndarray, int]:
    """One :class:`host.model.ir.Conv` on the RTL engine → (int8 (O, Ho, Wo), cycles); with ``pool``
    followed by the engine's fused 2×2/2 max-pool → (O, Ho//2, Wo//2).

    Layers too large for the configuration's memories run as several engine passes over
    tiles of the output map and output-channel chunks (:func:`conv_parts`); the cycles are
    summed.  A layer that does not fit even so raises
    :class:`host.compiler.layer.EngineCapacityError`.  ``info``: a
    dict to which the map words the row feeder read are added (line mode, key ``fetched``)."""
    cfg = config or DEFAULT_CONFIG
    x = np.asarray(x, dtype=np.int8)
    if not padded:
        t, l, b, r = node.pads
        x = np.pad(x, ((0, 0), (t, b), (l, r)), constant_values=zx)
    parts = conv_parts(node.weight, node.folded_bias(zx), node.mult, node.shift, x, zx, zy,
                       node.lo, node.hi, tuple(node.stride), node.groups, cfg, pool=pool)
    o = node.weight.shape[0]
    ho, wo = max(p[2][1] for p in parts), max(p[2][3] for p in parts)
    y, total = np.zeros((o, ho, wo), dtype=np.int8), 0
    runs = (execute or simulate_many)([p[3] for p in parts], cfg)
    for (o0, o1, (oy0, oy1, ox0, ox1), prog), (yp, cycles, sim_info) in zip(parts, runs):
        y[o0:o1, oy0:oy1, ox0:ox1] = yp
        total += cycles
        _add_fetched(info, sim_info, prog, cfg)
    return y, total


def run_fc(node, x, zx: int, zy: int = 0, config: EngineConfig | None = None,
           info: dict | None = None, execute=None) -> tuple[np.ndarray, int]:
    """A :class:`host.model.ir.FC` as a 1×1 convolution on a 1×1 map → (int8 (O,), cycles)."""
    cfg = config or DEFAULT_CONFIG
    w = np.asarray(node.weight)
    ys, total = [], 0
    parts = conv_chunks(w.reshape(w.shape[0], w.shape[1], 1, 1), node.folded_bias(zx),
                        node.mult, node.shift, np.asarray(x, dtype=np.int8).reshape(-1, 1, 1),
                        zx, zy, node.lo, node.hi, cfg=cfg)
    runs = (execute or simulate_many)([p[2] for p in parts], cfg)
    for (_, _, prog), (y, cycles, sim_info) in zip(parts, runs):
        ys.append(y.reshape(-1))
        total += cycles
        _add_fetched(info, sim_info, prog, cfg)
    return np.concatenate(ys), total


class EngineSim:
    """Runs conv/FC layers on the RTL engine and records cycles and utilisation per layer.
    ``conv_fn``/``fc_fn`` have the signatures ``host.runtime.golden.run`` expects.
    ``emulated``: the same engine runs executed by the NumPy model of the engine
    (:func:`host.runtime.engine_model.emulate_many`: ``--target emu``) instead of Verilator."""

    def __init__(self, config: EngineConfig | None = None, emulated: bool = False):
        self.config = config or DEFAULT_CONFIG
        self.stats = []
        self.execute = emulate_many if emulated else simulate_many

    def _record(self, name, macs, cycles, info=None):
        pes = self.config.rows * self.config.cols
        info = info or {}
        self.stats.append(dict(name=name, macs=int(macs), cycles=int(cycles), pes=pes,
                               utilisation=macs / (pes * cycles) if cycles else 0.0,
                               offchip_bytes=dict(read=info.get("read", 0),
                                                  written=info.get("written", 0)))
                          | ({"fetched": info["fetched"]} if "fetched" in info else {}))

    def conv_fn(self, node, xp, zx, zy):
        info = {}
        y, cycles = run_conv(node, xp, zx, zy, self.config, padded=True, info=info,
                             execute=self.execute)
        o, ig, kh, kw = node.weight.shape
        self._record(node.name, y.shape[1] * y.shape[2] * o * ig * kh * kw, cycles, info)
        return y

    def conv_pool_fn(self, node, pool, xp, zx, zy):
        """The convolution and the 2×2/2 max-pool after it in one engine run (the fused
        output pool); None when this engine cannot pool this map (then the host pools)."""
        kh, kw = node.weight.shape[2:]
        sh, sw = node.stride
        ho, wo = (xp.shape[1] - kh) // sh + 1, (xp.shape[2] - kw) // sw + 1
        if not self.config.pool_width or wo > self.config.pool_width or min(ho, wo) < 2:
            return None
        info = {}
        y, cycles = run_conv(node, xp, zx, zy, self.config, padded=True, pool=True, info=info,
                             execute=self.execute)
        o, ig = node.weight.shape[:2]
        self._record(f"{node.name}+{pool.name}", ho * wo * o * ig * kh * kw, cycles, info)
        return y

    def fc_fn(self, node, x, zx, zy):
        info = {}
        y, cycles = run_fc(node, x, zx, zy, self.config, info=info, execute=self.execute)
        self._record(node.name, node.weight.size, cycles, info)
        return y
