"""The NumPy model of the RTL engine: a compiled layer executed as the engine does it (step
table, address arithmetic, zero-point substitution, lane selection, column sums, requant lanes)
with the engine's cycle count, so the layer compiler and the cost model are checked without a
simulator; the program emulator (``host.runtime.emulator``) runs every CONV through it.
"""
from __future__ import annotations

import numpy as np

from host.compiler.cost import engine_run
from host.compiler.layer import LayerProgram
from host.compiler.pack import unpack_output
from hw.engine.engine import EngineConfig

__all__ = ["emulate", "emulate_many", "preloaded_cycles", "line_mode_cycles", "FEED_LATENCY",
           "array_reads"]


def emulate(prog: LayerProgram, cfg: EngineConfig) -> tuple[np.ndarray, int]:
    """Execute a compiled layer the way the RTL does (step table, address arithmetic,
    zero-point substitution, lane selection, column sums) in NumPy; returns (output words
    (n_ob·Ho·Wo, cols) int8, cycles the RTL takes).  Checks the layer compiler without a
    simulator and predicts the RTL's cycle count exactly."""
    d = prog.desc
    C = cfg.cols
    ho, wo, n_ob = d["ho"], d["wo"], d["n_ob"]
    iy0, ix0, pix = _pixels(d)
    sums = _column_sums_gathered if not prog.meta.get("line") and not d["depthwise"] \
        else _column_sums_stepwise
    out = np.stack([_requant_block(acc, prog.blocks[ob], d)
                    for ob, acc in enumerate(sums(prog, cfg, iy0, ix0, pix))])
    cycles = line_mode_cycles(d, cfg) if prog.meta.get("line") else preloaded_cycles(d, cfg)
    out = out.reshape(n_ob, ho, wo, C)
    if d.get("pool"):
        out = out[:, :ho // 2 * 2, :wo // 2 * 2]
        out = out.reshape(n_ob, ho // 2, 2, wo // 2, 2, C).max(axis=(2, 4))
        cycles += 1
    if prog.meta.get("line"):
        out = out.transpose(1, 0, 2, 3)          # the RTL writes (row, block, column)
    return out.reshape(-1, C).astype(np.int8), cycles


_GATHER: dict = {}


def _pixels(d: dict):
    """Per output pixel (raster order): the top-left input tap (iy0, ix0) and ``pix``."""
    oy, ox = np.meshgrid(np.arange(d["ho"]), np.arange(d["wo"]), indexing="ij")
    iy0 = (oy * d["stride_h"] - d["pad_t"]).ravel()
    ix0 = (ox * d["stride_w"] - d["pad_l"]).ravel()
    pix = d["pix0"] + oy.ravel() * d["row_step"] + ox.ravel() * d["stride_w"]
    return iy0, ix0, pix


def _elements(prog: LayerProgram, iy0, ix0, pix):
    """Every (iteration, step, row) element of a run with the map preloaded: its tap validity
    ``ok`` and its address relative to ``in_base`` for every pixel, and its lane — depending
    on the step table and the descriptor only, so computed once for all the runs (tiles) that
    share them."""
    d = prog.desc
    key = (id(prog.step_words), tuple(sorted(d.items())))
    hit = _GATHER.get(key)
    if hit is None or hit[0] is not prog.step_words:
        el = np.array([(it, *e) for it in range(d["n_it"]) for row in prog.step_words
                       for e in row], dtype=np.int64).reshape(-1, 6)
        it_, dy, dx, en, lane, delta = el.T
        iy = iy0[None, :] + (dy + it_ * d["it_dy"])[:, None]
        ix = ix0[None, :] + dx[:, None]
        ok = (en[:, None] > 0) & (iy >= 0) & (iy < d["h"]) & (ix >= 0) & (ix < d["w"])
        rel = (delta + it_ * d["it_stride"])[:, None] + pix[None, :]
        if len(_GATHER) > 256:
            _GATHER.clear()
        hit = _GATHER[key] = (prog.step_words, ok, rel, lane)
    return hit[1:]


def map_footprint(prog: LayerProgram) -> tuple[int, int]:
    """(first, last + 1) input-memory word a run with the map preloaded reads: what the DMA
    must not overwrite while the run lasts (``host.runtime.emulator``'s hazard check)."""
    d = prog.desc
    ok, rel, _ = _elements(prog, *_pixels(d))
    if not ok.any():
        return 0, 0
    bases = [prog.blocks[ob][0] for ob in range(d["n_ob"])]
    r = rel[ok]
    return int(min(bases) + r.min()), int(max(bases) + r.max()) + 1


def _weights(prog: LayerProgram, ob: int, d: dict) -> np.ndarray:
    """Output block ``ob``'s weight words: from ``w_base + ob·w_ob``, the address wrapping
    at the memory's end as the RTL's does."""
    idx = d.get("w_base", 0) + ob * d["w_ob"] + np.arange(d["w_ob"])
    return prog.w_words.take(idx, axis=0, mode="wrap")


def _column_sums_gathered(prog: LayerProgram, cfg: EngineConfig, iy0, ix0, pix):
    """Each output block's column sums (P, cols), standard layers with the map preloaded: every
    (iteration, step, row) element at once — its tap validity and its input byte (address ·
    lanes + lane) for every pixel — then one product per output block."""
    d = prog.desc
    ok, rel, lane = _elements(prog, iy0, ix0, pix)
    flat = prog.in_words.reshape(-1).astype(np.float64)
    n = len(prog.in_words)
    for ob in range(d["n_ob"]):
        addr = prog.blocks[ob][0] + rel
        # an iteration past the last channel block reads beyond the map (the RTL's address
        # wraps); its weights are 0, so any word will do
        addr = np.where(ok & (addr < n) & (addr >= 0), addr, 0)
        x = np.where(ok, flat[addr * cfg.lanes + lane[:, None]], d["x_zp"])       # (n_el, P)
        wt = _weights(prog, ob, d).reshape(-1, cfg.cols)
        yield np.rint(x.T @ wt.astype(np.float64)).astype(np.int64)               # exact < 2^53


def _column_sums_stepwise(prog: LayerProgram, cfg: EngineConfig, iy0, ix0, pix):
    """Each output block's column sums, step by step and row by row as the array takes them
    (depthwise layers: lane c in column c; line mode: ring addresses)."""
    d = prog.desc
    h, w, steps, C = d["h"], d["w"], d["steps"], cfg.cols
    in_words = prog.in_words.astype(np.int64)
    for ob in range(d["n_ob"]):
        in_base = prog.blocks[ob][0]
        wts = _weights(prog, ob, d)
        acc = np.zeros((len(pix), C), dtype=np.int64)
        for it, s in ((it, s) for it in range(d["n_it"]) for s in range(steps)):
            wt = wts[it * steps + s].astype(np.int64)                             # (R, C)
            for r, (dy, dx, en, lane, delta) in enumerate(prog.step_words[s]):
                iy, ix = iy0 + dy + it * d["it_dy"], ix0 + dx
                ok = bool(en) & (iy >= 0) & (iy < h) & (ix >= 0) & (ix < w)
                if prog.meta.get("line"):
                    addr = np.where(ok, (in_base + delta) // w * h * w + iy * w + ix, 0)
                else:
                    addr = np.where(ok, in_base + delta + it * d["it_stride"] + pix, 0)
                # an iteration past the last channel block reads beyond the map (the RTL's
                # address wraps); its weights are 0, so any word will do
                addr = np.where(addr < len(in_words), addr, 0)
                word = np.where(ok[:, None], in_words[addr], d["x_zp"])   # (P, lanes)
                xv = word[:, :C] if d["depthwise"] else word[:, [lane]]
                acc += xv * wt[r][None, :]
        yield acc


def _requant_block(acc, block, d) -> np.ndarray:
    """The requant lanes on one output block's sums (int32 wrap of the bias add, as the RTL)."""
    from host.model.quant import requantize
    _, bias, mult, shift = block
    acc = (acc + np.asarray(bias)[None, :] + (1 << 31)) % (1 << 32) - (1 << 31)
    return requantize(acc, np.asarray(mult)[None, :], np.asarray(shift)[None, :],
                      d["y_zp"], d["lo"], d["hi"])


def preloaded_cycles(d: dict, cfg: EngineConfig) -> int:
    """Cycles of one layer with the map preloaded (no stalls): the engine's cycle formula
    (:func:`host.compiler.cost.engine_run`, the one the cost model uses) for the descriptor's
    blocks, pixels, steps and iterations; a fused pool adds one more (counted by the caller)."""
    area, fixed = engine_run(cfg, d["n_ob"], d["steps"], d["ho"] * d["wo"], d["n_it"])
    return area + fixed


#: map-memory read latency of the row feeder (hw.memory.bram.BRAMTarget: request → response) plus the
#: cycle the ring's row counter takes to show a written row
FEED_LATENCY = 3


def line_mode_cycles(d: dict, cfg: EngineConfig) -> int:
    """Cycles of one layer in line mode, event by event as the RTL runs it: the row feeder
    requests the map words of rows ``0 … h_feed−1`` one per cycle, a row only once the array
    has released the line it overwrites (``rel_iy0 + line_rows``, updated
    ``EngineConfig.release_delay`` cycles after an output row's last step), and an output row
    (all its output-channel blocks, ``n_ob·Wo`` pixels) starts once the rows its windows need
    are written (``FEED_LATENCY`` after their last request)."""
    h_feed, w, nb, kh = d["h_feed"], d["w"], d["nb"], d["kh"]
    ho, wo, sh, pt = d["ho"], d["wo"], d["stride_h"], d["pad_t"]
    steps = d["steps"]
    slot = max(steps, cfg.drain)
    NL, DL = cfg.line_rows, cfg.release_delay
    words = nb * w
    row_end = []                         # E_n: first cycle after output row n
    t_req = 0                            # cycle of the last request so far (go at cycle 0)
    written = []                         # cycle from which rows ≥ y + 1 are visible

    def allowed(y):
        """First cycle at which row y may be requested (its line is released)."""
        k = 0                            # output rows released: rel_iy0 = −pt + k·sh
        while -pt + k * sh + NL <= y:
            k += 1
        return 0 if k == 0 else row_end[k - 1] + DL

    for n in range(ho):
        need = min(n * sh - pt + kh, h_feed)
        t = 1 if n == 0 else row_end[-1]
        while len(written) < need:
            t_req = max(t_req + 1, allowed(len(written))) + words - 1
            written.append(t_req + FEED_LATENCY)
        if need > 0:
            t = max(t, written[need - 1])
        row_end.append(t + d["n_ob"] * wo * slot)
    return row_end[-1] - (slot - steps) + cfg.latency


def emulate_many(progs: list, cfg: EngineConfig) -> list:
    """:func:`sim.engine_rtl.simulate_many` without a simulator: each program executed by the
    NumPy model of the engine (:func:`emulate`), whose outputs and cycle counts the RTL tests pin
    to the RTL's."""
    out = []
    for prog in progs:
        words, cycles = emulate(prog, cfg)
        info = dict(sim_seconds=0.0, cpu_seconds=0.0)
        if cfg.line_rows:
            d = prog.desc
            info["fetched"] = d["h_feed"] * d["nb"] * d["w"]     # the feeder reads each row once
        out.append((unpack_output(prog, words), cycles, info))
    return out


def array_reads(prog: LayerProgram) -> int:
    """Input words the array's rows read from memory for ``prog`` (taps inside the map; padding
    taps take the zero point and read nothing): per step row, the output pixels whose tap
    ``(iy0 + dy, ix0 + dx)`` lies inside, a product of a row count and a column count."""
    d = prog.desc
    oy, ox = np.arange(d["ho"]), np.arange(d["wo"])
    iy0, ix0 = oy * d["stride_h"] - d["pad_t"], ox * d["stride_w"] - d["pad_l"]
    n = 0
    for it in range(d["n_it"]):
        for row in prog.step_words:
            for dy, dx, en, _lane, _delta in row:
                dy += it * d["it_dy"]
                if en:
                    n += (int(((iy0 + dy >= 0) & (iy0 + dy < d["h"])).sum())
                          * int(((ix0 + dx >= 0) & (ix0 + dx < d["w"])).sum()))
    return n * d["n_ob"]
