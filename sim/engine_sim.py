"""Host side of the RTL engine: compile one conv/FC layer into the engine's memory images, run it
under Verilator (``sim.tb_engine``) and unpack the int8 result and the measured cycle count.

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

from dataclasses import dataclass, field

import numpy as np

from host.compiler.cost import engine_run
from host.compiler.reduction import last_slot, plan_reduction
from hw.configs import SIMULATION_ONLY
from hw.engine.engine import (Engine, EngineConfig, block_entry_layout, layer_desc_layout,
                       step_entry_layout)

#: The engine the host simulates by default: an 8×8 array with whole-layer memories and the fused
#: 2×2 max-pool, ``hw.configs.SIMULATION_ONLY["sim-8x8"]`` — it fits no board (its memories
#: alone need about four times the ECP5-85F's block RAM), so every figure measured on it says so.
DEFAULT_CONFIG = SIMULATION_ONLY["sim-8x8"].engine
#: the same engine in line mode (``--line-mode``): the array reads a ring of 8 input rows of up
#: to 2048 words (e.g. 224 pixels × 64 channels), which the row feeder fills from the map memory
LINE_CONFIG = SIMULATION_ONLY["sim-8x8-line"].engine


class EngineCapacityError(ValueError):
    """A layer does not fit the memories of the engine configuration; ``resource`` names the
    memory or field that is short (e.g. "input memory"), when one is."""

    def __init__(self, message: str, resource: str | None = None):
        super().__init__(message)
        self.resource = resource


#: memories whose need shrinks when the output map is cut into stripes of rows
SPATIAL = ("input memory", "output memory", "pool row")


@dataclass
class LayerProgram:
    """Memory images and descriptor of one layer, plus how to unpack the output."""
    desc: dict
    in_words: np.ndarray          # (n, lanes) int8
    w_words: np.ndarray           # (n_ob*steps, rows, cols) int8
    step_words: list              # n_steps × rows × (dy, dx, en, lane, delta)
    blocks: list                  # n_ob × (in_base, bias[cols], mult[cols], shift[cols])
    out_channels: np.ndarray      # (n_ob, cols) output channel of each lane, -1 = unused
    out_shape: tuple              # (O, Ho, Wo)
    macs: int = 0
    meta: dict = field(default_factory=dict)


def _ceil(a, b):
    return -(-a // b)


_PLACES = {}


def _weight_places(red) -> tuple:
    """Index arrays (iteration, element, ky, kx, ci) of every kernel weight in the engine's
    weight words under reduction plan ``red`` (computed once per plan)."""
    if red not in _PLACES:
        rows = [(it, e, *idx) for it in range(red.n_it) for e, el in enumerate(red.template())
                if (idx := red.weight_index(it, *el)) is not None]
        _PLACES[red] = tuple(np.array(c, dtype=np.intp) for c in zip(*rows)) if rows else \
            tuple(np.zeros(0, dtype=np.intp) for _ in range(5))
    return _PLACES[red]


def compile_conv(weight, bias_folded, mult, shift, x, zx: int, zy: int, lo: int, hi: int,
                 stride=(1, 1), pads=(0, 0, 0, 0), groups: int = 1,
                 cfg: EngineConfig = DEFAULT_CONFIG, pool: bool = False,
                 check_only: bool = False) -> LayerProgram | None:
    """Lay one convolution out for the engine (see hw/engine/engine.py for the memory map).
    ``pool``: the engine's fused 2×2/2 max-pool follows (needs ``cfg.pool_width``); the output
    is then the pooled ``(O, Ho//2, Wo//2)`` map.  ``check_only``: raise
    :class:`EngineCapacityError` if it does not fit, else return None, without packing.

    Depthwise layers (one input and one output channel per group) put kernel taps on the rows
    and channels on the columns; every other layer packs its reduction (kernel tap × input
    channel of the group) densely onto the rows and puts the group's output channels on the
    columns."""
    R, C, L = cfg.rows, cfg.cols, cfg.lanes
    weight = np.asarray(weight, dtype=np.int8)
    x = np.asarray(x, dtype=np.int8)
    o, ig, kh, kw = weight.shape
    c, h, w = x.shape
    g = groups
    og = o // g
    sh, sw = stride
    pt, pl, pb, pr = pads
    ho, wo = (h + pt + pb - kh) // sh + 1, (w + pl + pr - kw) // sw + 1
    if ho < 1 or wo < 1:
        raise EngineCapacityError(f"conv output would be empty ({h}x{w}, kernel {kh}x{kw})")
    if kh > 15 or kw > 15:
        raise EngineCapacityError(f"kernel {kh}x{kw} larger than the engine's 15x15")
    hw = h * w
    depthwise = g > 1 and ig == 1 and og == 1
    # line mode: a ring line holds all channel blocks of an input row side by side, so the step
    # table's delta is the tap's block within its group times W and in_base the group's first
    # block times W (places in a line), not map offsets; output rows are ordered
    # (row, output-channel block, column)
    line = bool(cfg.line_rows)
    bias_folded = np.asarray(bias_folded, dtype=np.int64)
    if np.any(bias_folded < -(1 << 31)) or np.any(bias_folded >= (1 << 31)):
        raise EngineCapacityError("folded bias does not fit int32")
    mult = np.asarray(mult, dtype=np.int64)
    shift = np.asarray(shift, dtype=np.int64)

    # layout: sizes and the descriptor (all a capacity check needs)
    n_it, it_stride, it_dy, red = 1, 0, 0, None
    if depthwise:
        n_cb = _ceil(c, C)
        steps, n_ob, nb = _ceil(kh * kw, R), n_cb, n_cb
    else:
        n_cbg = _ceil(ig, L)                 # input words (channel blocks) per group and pixel
        n_obg = _ceil(og, C)                 # output-channel blocks per group
        # the reduction (ky, kx, ci) of one group on the rows: densely, or one iteration of
        # channel blocks / kernel rows that the engine repeats (host.compiler.reduction)
        red = plan_reduction(kh, kw, ig, R, L, cfg.step_depth, dense_only=line)
        if red is None:
            raise EngineCapacityError(
                f"a {kh}x{kw} kernel over {ig} input channels needs more than the engine's "
                f"{cfg.step_depth} step-table words even tiled")
        n_it, steps = red.n_it, red.steps
        it_stride, it_dy = red.shifts(w, w if line else hw)
        n_ob, nb = g * n_obg, g * n_cbg
    desc = dict(h=h, w=w, ho=ho, wo=wo, n_ob=n_ob, steps=steps, n_it=n_it,
                slot=last_slot(steps, n_it, cfg.drain), it_stride=it_stride,
                it_dy=it_dy, w_ob=n_it * steps, stride_h=sh, stride_w=sw,
                pad_t=pt, pad_l=pl, row_step=sh * w, pix0=-pt * w - pl,
                depthwise=int(depthwise), x_zp=int(zx), y_zp=int(zy), lo=int(lo), hi=int(hi),
                pool=int(bool(pool)), kh=kh, h_feed=max(0, min(h, (ho - 1) * sh - pt + kh)), plane=hw,
                nb=nb, pool_w=n_ob * wo if line else wo)
    out_shape = (o, ho // 2, wo // 2) if pool else (o, ho, wo)
    macs = int(o * ig * kh * kw * ho * wo)
    meta = dict(depthwise=depthwise, line=line)
    if check_only:
        # placeholders of the right lengths: the capacity check counts words, nothing more
        check_capacity(LayerProgram(desc, np.empty((nb * hw, 0)), np.empty((n_ob * n_it * steps, 0)),
                                    range(steps), range(n_ob), np.empty((n_ob, 0)), out_shape,
                                    macs, meta), cfg)
        return None

    # packing: the memory images
    if depthwise:
        xs = np.zeros((n_cb * C, h, w), dtype=np.int8)
        xs[:c] = x
        in_words = np.zeros((n_cb * hw, L), dtype=np.int8)
        in_words[:, :C] = xs.reshape(n_cb, C, hw).transpose(0, 2, 1).reshape(-1, C)
        taps = kh * kw
        step_words = []
        for s in range(steps):
            row = []
            for r in range(R):
                t = s * R + r
                if t < taps:
                    dy, dx = divmod(t, kw)
                    row.append((dy, dx, 1, 0, 0 if line else dy * w + dx))
                else:
                    row.append((0, 0, 0, 0, 0))
            step_words.append(row)
        w_words = np.zeros((n_ob, steps, R, C), dtype=np.int8)
        wt = weight.reshape(o, taps)
        for ob in range(n_ob):
            for cc in range(C):
                ch = ob * C + cc
                if ch >= o:
                    continue
                for t in range(taps):
                    w_words[ob, t // R, t % R, cc] = wt[ch, t]
        out_channels = np.full((n_ob, C), -1, dtype=np.int64)
        in_base = []
        for ob in range(n_ob):
            for cc in range(C):
                if ob * C + cc < o:
                    out_channels[ob, cc] = ob * C + cc
            in_base.append(ob * w if line else ob * hw)
    else:
        xs = np.zeros((g, n_cbg * L, h, w), dtype=np.int8)
        xs[:, :ig] = x.reshape(g, ig, h, w)
        in_words = xs.reshape(g * n_cbg, L, hw).transpose(0, 2, 1).reshape(-1, L)
        step_words = _step_words(red, R, w, hw, line)
        # weights: element (iteration, step, row) of every output channel of the group
        wk = weight.reshape(g, og, ig, kh, kw)
        wr = np.zeros((g, n_obg * C, n_it, steps * R), dtype=np.int8)
        its, es, kys, kxs, cis = _weight_places(red)
        wr[:, :og, its, es] = wk[:, :, cis, kys, kxs]
        w_words = (wr.reshape(g, n_obg, C, n_it, steps, R).transpose(0, 1, 3, 4, 5, 2)
                   .reshape(n_ob, n_it * steps, R, C))
        out_channels = np.full((n_ob, C), -1, dtype=np.int64)
        in_base = []
        for gi in range(g):
            for j in range(n_obg):
                ob = gi * n_obg + j
                ch = gi * og + j * C + np.arange(C)
                out_channels[ob] = np.where(j * C + np.arange(C) < og, ch, -1)
                in_base.append(gi * n_cbg * (w if line else hw))
    blocks = []
    for ob in range(n_ob):
        ch = out_channels[ob]
        sel = np.where(ch >= 0, ch, 0)
        blocks.append((in_base[ob], np.where(ch >= 0, bias_folded[sel], 0),
                       np.where(ch >= 0, mult[sel], 0), np.where(ch >= 0, shift[sel], 0)))
    prog = LayerProgram(desc=desc, in_words=in_words,
                        w_words=w_words.reshape(n_ob * n_it * steps, R, C),
                        step_words=step_words, blocks=blocks, out_channels=out_channels,
                        out_shape=out_shape, macs=macs, meta=meta)
    check_capacity(prog, cfg)
    return prog


_STEPS = {}


def _step_words(red, R: int, w: int, hw: int, line: bool) -> list:
    """The step table of reduction plan ``red`` on a map ``w`` wide with ``hw`` words per
    channel block (computed once per shape)."""
    key = (red, R, w, hw, line)
    if key not in _STEPS:
        tmpl = red.template()
        words = []
        for s in range(red.steps):
            row = []
            for r in range(R):
                e = s * R + r
                if e < len(tmpl):
                    ky, kx, cb, lane = tmpl[e]
                    row.append((ky, kx, 1, lane, cb * w if line else cb * hw + ky * w + kx))
                else:
                    row.append((0, 0, 0, 0, 0))
            words.append(row)
        _STEPS[key] = words
    return _STEPS[key]


def check_capacity(prog: LayerProgram, cfg: EngineConfig) -> None:
    d = prog.desc
    need = {
        "input memory": (len(prog.in_words), cfg.in_depth),
        "weight memory": (len(prog.w_words), cfg.w_depth),
        "step table": (len(prog.step_words), cfg.step_depth),
        "block table": (len(prog.blocks), cfg.ob_depth),
        "output memory": (out_words(prog), cfg.out_depth),
    }
    if d.get("pool"):
        if not cfg.pool_width:
            raise EngineCapacityError("the engine configuration has no fused max-pool")
        if d["pool_w"] > cfg.pool_width:
            raise EngineCapacityError(f"output row of {d['pool_w']} words exceeds the max-pool's "
                                      f"{cfg.pool_width}", "pool row")
        if cfg.line_rows and d["n_ob"] > 1 and d["wo"] % 2:
            raise EngineCapacityError("a fused max-pool in line mode needs an even output width "
                                      "when there are several output-channel blocks")
        if d["ho"] < 2 or d["wo"] < 2:
            raise EngineCapacityError("a fused 2×2 max-pool needs an output map of 2×2 or more")
    for what, (n, cap) in need.items():
        if n > cap:
            raise EngineCapacityError(f"layer needs {n} words of {what}, the engine has {cap}",
                                      what)
    if cfg.line_rows:
        if d["kh"] > cfg.line_rows:
            raise EngineCapacityError(f"kernel height {d['kh']} exceeds the engine's "
                                      f"{cfg.line_rows} line memories")
        if d["nb"] * d["w"] > cfg.line_words:
            raise EngineCapacityError(f"an input row of {d['nb']} channel blocks × {d['w']} "
                                      f"pixels exceeds the line memories' {cfg.line_words} words")
        if d["nb"] >= 256:
            raise EngineCapacityError(f"{d['nb']} channel blocks exceed the descriptor's 8 bits")
    for k in ("h", "w", "ho", "wo", "n_ob", "steps", "n_it", "slot"):
        if d[k] >= 4096:
            raise EngineCapacityError(f"layer {k}={d[k]} exceeds the descriptor's 12 bits")
    if d["stride_h"] > 15 or d["stride_w"] > 15 or d["pad_t"] > 15 or d["pad_l"] > 15 \
            or d["it_dy"] > 15:
        raise EngineCapacityError("stride or padding beyond 15")


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


def out_words(prog: LayerProgram) -> int:
    """Words the engine writes to its output memory for ``prog``."""
    d = prog.desc
    if d.get("pool"):
        return d["n_ob"] * (d["ho"] // 2) * (d["wo"] // 2)
    return d["n_ob"] * d["ho"] * d["wo"]


def emulate(prog: LayerProgram, cfg: EngineConfig) -> tuple[np.ndarray, int]:
    """Execute a compiled layer the way the RTL does (step table, address arithmetic,
    zero-point substitution, lane selection, column sums) in NumPy; returns (output words
    (n_ob·Ho·Wo, cols) int8, cycles the RTL takes).  Checks the layer compiler without a
    simulator and predicts the RTL's cycle count exactly."""
    d = prog.desc
    C = cfg.cols
    ho, wo, n_ob = d["ho"], d["wo"], d["n_ob"]
    oy, ox = np.meshgrid(np.arange(ho), np.arange(wo), indexing="ij")
    iy0 = (oy * d["stride_h"] - d["pad_t"]).ravel()
    ix0 = (ox * d["stride_w"] - d["pad_l"]).ravel()
    pix = d["pix0"] + oy.ravel() * d["row_step"] + ox.ravel() * d["stride_w"]
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


def _column_sums_gathered(prog: LayerProgram, cfg: EngineConfig, iy0, ix0, pix):
    """Each output block's column sums (P, cols), standard layers with the map preloaded: every
    (iteration, step, row) element at once — its tap validity and its input byte (address ·
    lanes + lane) for every pixel — then one product per output block."""
    d = prog.desc
    el = np.array([(it, *e) for it in range(d["n_it"]) for row in prog.step_words
                   for e in row], dtype=np.int64).reshape(-1, 6)
    it_, dy, dx, en, lane, delta = el.T
    iy = iy0[None, :] + (dy + it_ * d["it_dy"])[:, None]
    ix = ix0[None, :] + dx[:, None]
    ok = (en[:, None] > 0) & (iy >= 0) & (iy < d["h"]) & (ix >= 0) & (ix < d["w"])
    rel = (delta + it_ * d["it_stride"])[:, None] + pix[None, :]
    flat = prog.in_words.reshape(-1).astype(np.float64)
    n = len(prog.in_words)
    for ob in range(d["n_ob"]):
        addr = prog.blocks[ob][0] + rel
        # an iteration past the last channel block reads beyond the map (the RTL's address
        # wraps); its weights are 0, so any word will do
        addr = np.where(ok & (addr < n) & (addr >= 0), addr, 0)
        x = np.where(ok, flat[addr * cfg.lanes + lane[:, None]], d["x_zp"])       # (n_el, P)
        wt = prog.w_words[ob * d["w_ob"]:(ob + 1) * d["w_ob"]].reshape(-1, cfg.cols)
        yield np.rint(x.T @ wt.astype(np.float64)).astype(np.int64)               # exact < 2^53


def _column_sums_stepwise(prog: LayerProgram, cfg: EngineConfig, iy0, ix0, pix):
    """Each output block's column sums, step by step and row by row as the array takes them
    (depthwise layers: lane c in column c; line mode: ring addresses)."""
    d = prog.desc
    h, w, steps, C = d["h"], d["w"], d["steps"], cfg.cols
    in_words = prog.in_words.astype(np.int64)
    for ob in range(d["n_ob"]):
        in_base = prog.blocks[ob][0]
        acc = np.zeros((len(pix), C), dtype=np.int64)
        for it, s in ((it, s) for it in range(d["n_it"]) for s in range(steps)):
            wt = prog.w_words[ob * d["w_ob"] + it * steps + s].astype(np.int64)   # (R, C)
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


def unpack_output(prog: LayerProgram, out_words: np.ndarray) -> np.ndarray:
    """(n_ob·Ho·Wo, cols) int8 words → (O, Ho, Wo) int8 map."""
    o, ho, wo = prog.out_shape
    n_ob, C = prog.out_channels.shape
    if prog.meta.get("line"):
        words = (np.asarray(out_words, dtype=np.int8).reshape(ho, n_ob, wo, C)
                 .transpose(1, 0, 2, 3))
    else:
        words = np.asarray(out_words, dtype=np.int8).reshape(n_ob, ho, wo, C)
    y = np.zeros((o, ho, wo), dtype=np.int8)
    for ob in range(n_ob):
        for cc in range(C):
            ch = prog.out_channels[ob, cc]
            if ch >= 0:
                y[ch] = words[ob, :, :, cc]
    return y


# ---------------------------------------------------------------------------------------------
# Packing into engine words (Python ints) for the testbench
# ---------------------------------------------------------------------------------------------
def _pack_fields(layout, values: dict) -> int:
    word = 0
    for name, f in layout:
        word |= (int(values[name]) & ((1 << f.width) - 1)) << f.offset
    return word


def pack_program(prog: LayerProgram, cfg: EngineConfig) -> dict:
    """Everything ``sim.tb_engine`` writes, as arrays of hexadecimal strings (npz-friendly)."""
    C, L = cfg.cols, cfg.lanes
    step_layout = step_entry_layout(cfg.addr_width, L)
    bl = block_entry_layout(cfg.addr_width, cfg.post_lanes)
    desc_layout = layer_desc_layout(cfg.addr_width)

    def bytes_word(a) -> int:
        return int.from_bytes(np.asarray(a, dtype=np.int8).tobytes(), "little")

    in_hex = [format(bytes_word(wd), "x") for wd in prog.in_words]
    w_hex = [format(bytes_word(wd.reshape(-1)), "x") for wd in prog.w_words]   # row-major rows
    ssz = step_layout.size
    step_hex = []
    for row in prog.step_words:
        word = 0
        for r, (dy, dx, en, lane, delta) in enumerate(row):
            word |= _pack_fields(step_layout, dict(dy=dy, dx=dx, en=en, lane=lane,
                                                   delta=delta)) << (r * ssz)
        step_hex.append(format(word, "x"))
    # one block-table word per (block, group of post_lanes columns), at ob·2^group_bits + k
    P, G, KB = cfg.post_lanes, cfg.groups, cfg.group_bits
    blk_hex = []
    for in_base, bias, mult, shift in prog.blocks:
        words = []
        for k in range(1 << KB):
            word = int(in_base) << bl["in_base"].offset
            for p in range(P):
                cc = k * P + p
                if k >= G or cc >= C:
                    continue
                word |= (int(bias[cc]) & 0xFFFFFFFF) << (bl["bias"].offset + 32 * p)
                word |= (int(mult[cc]) & 0xFFFFFFFF) << (bl["mult"].offset + 32 * p)
                word |= (int(shift[cc]) & 0x3F) << (bl["shift"].offset + 6 * p)
            words.append(format(word, "x"))
        blk_hex += words
    desc = _pack_fields(desc_layout, prog.desc)
    n_out = out_words(prog)
    return dict(in_hex=np.array(in_hex), w_hex=np.array(w_hex), step_hex=np.array(step_hex),
                blk_hex=np.array(blk_hex), desc_hex=np.array([format(desc, "x")]),
                n_out=np.array([n_out]), cols=np.array([C]))


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


def emulate_many(progs: list, cfg: EngineConfig) -> list:
    """:func:`simulate_many` without a simulator: each program executed by the NumPy model of
    the engine (:func:`emulate`), whose outputs and cycle counts the RTL tests pin to the RTL's."""
    out = []
    for prog in progs:
        words, cycles = emulate(prog, cfg)
        info = dict(sim_seconds=0.0, cpu_seconds=0.0)
        if cfg.line_rows:
            d = prog.desc
            info["fetched"] = d["h_feed"] * d["nb"] * d["w"]     # the feeder reads each row once
        out.append((unpack_output(prog, words), cycles, info))
    return out


def simulate(prog: LayerProgram, cfg: EngineConfig) -> tuple[np.ndarray, int, dict]:
    """Run one compiled layer on the RTL; returns (int8 map, cycles, timing info)."""
    return simulate_many([prog], cfg)[0]


# ---------------------------------------------------------------------------------------------
# Layer-level entry points
# ---------------------------------------------------------------------------------------------
def _conv_chunks(o: int, groups: int, depthwise: bool, cfg: EngineConfig, fits) -> list:
    """Output-channel ranges small enough for the engine's memories, each the largest whole
    number of units that ``fits(o0, o1)`` allows: units of ``cols`` channels (one
    output-channel block; depthwise: with their inputs), or whole groups."""
    unit = o // groups if groups > 1 and not depthwise else cfg.cols
    chunks, start = [], 0
    while start < o:
        lo, hi = 1, -(-(o - start) // unit)        # largest k with fits(start, start + k·unit)
        while lo < hi:
            k = (lo + hi + 1) // 2
            if fits(start, min(o, start + k * unit)):
                lo = k
            else:
                hi = k - 1
        end = min(o, start + lo * unit)
        chunks.append((start, end))
        start = end
    return chunks


def conv_chunks(weight, bias_folded, mult, shift, x, zx, zy, lo, hi, stride=(1, 1),
                pads=(0, 0, 0, 0), groups=1, cfg: EngineConfig = DEFAULT_CONFIG,
                pool: bool = False) -> list:
    """Compile a convolution as one or more :class:`LayerProgram` s, splitting its output
    channels (whole groups; for depthwise layers channels with their inputs) when the layer
    does not fit the engine's weight, block or output memories.  Returns (o0, o1, program)."""
    weight = np.asarray(weight)
    o, ig = weight.shape[:2]
    depthwise = groups > 1 and ig == 1 and o == groups
    og = o // groups
    bias_folded, mult, shift = (np.asarray(a) for a in (bias_folded, mult, shift))

    def part(o0, o1, check_only=False):
        if depthwise:
            xs, g = x[o0:o1], o1 - o0
        elif groups > 1:
            g0, g1 = o0 // og, o1 // og
            xs, g = x[g0 * ig:g1 * ig], g1 - g0
        else:
            xs, g = x, 1
        return compile_conv(weight[o0:o1], bias_folded[o0:o1], mult[o0:o1], shift[o0:o1], xs,
                            zx, zy, lo, hi, stride, pads, g, cfg, pool=pool,
                            check_only=check_only)

    def fits(o0, o1):
        try:
            part(o0, o1, check_only=True)
            return True
        except EngineCapacityError:
            return False

    return [(o0, o1, part(o0, o1)) for o0, o1 in _conv_chunks(o, groups, depthwise, cfg, fits)]


def _tilings(ho: int, wo: int, even: bool):
    """(tile height, tile width) candidates, fewest tiles first, whole rows before columns;
    with ``even`` both even (a fused 2×2 pool must not straddle two tiles)."""
    def sizes(n):                        # the distinct ceil(n / k): about 2·√n of them
        return {s + s % 2 if even else s for s in (-(-n // k) for k in range(1, n + 1))}
    out = [(-(-ho // hs) * -(-wo // ws), -(-wo // ws), hs, ws)
           for hs in sizes(ho) for ws in sizes(wo)]
    return [(hs, ws) for _, _, hs, ws in sorted(out)]


def conv_parts(weight, bias_folded, mult, shift, xp, zx, zy, lo, hi, stride=(1, 1),
               groups=1, cfg: EngineConfig = DEFAULT_CONFIG, pool: bool = False) -> list:
    """Compile a convolution on an already padded map ``xp`` as engine runs that fit ``cfg``:
    tiles of the output map (each with the input window it needs; whole rows first) times
    output-channel chunks (:func:`conv_chunks`), the fewest tiles that fit.  Returns
    ``(o0, o1, (oy0, oy1, ox0, ox1), program)`` with the tile's place in the (pooled) output."""
    kh, kw = np.asarray(weight).shape[2:]
    sh, sw = stride
    ho = (xp.shape[1] - kh) // sh + 1
    wo = (xp.shape[2] - kw) // sw + 1
    if pool:                             # the floor pool never reads an odd last row/column
        ho, wo = ho // 2 * 2, wo // 2 * 2
    f = 2 if pool else 1
    err = None
    for hs, ws in _tilings(ho, wo, pool):
        try:
            parts = []
            for oy0 in range(0, ho, hs):
                oy1 = min(ho, oy0 + hs)
                for ox0 in range(0, wo, ws):
                    ox1 = min(wo, ox0 + ws)
                    xs = xp[:, oy0 * sh:(oy1 - 1) * sh + kh, ox0 * sw:(ox1 - 1) * sw + kw]
                    box = (oy0 // f, oy1 // f, ox0 // f, ox1 // f)
                    parts += [(o0, o1, box, prog) for o0, o1, prog in
                              conv_chunks(weight, bias_folded, mult, shift, xs, zx, zy, lo, hi,
                                          stride, (0, 0, 0, 0), groups, cfg, pool=pool)]
            return parts
        except EngineCapacityError as e:
            if e.resource not in SPATIAL:
                raise
            err = e
    raise err


def program_bytes(prog: LayerProgram, cfg: EngineConfig) -> tuple[int, int]:
    """(bytes written into the engine's memories, bytes read back) for one run of ``prog``:
    input map, weights, step table and block table in; the output words out — what a DMA
    would move between off-chip memory and the engine."""
    step_bytes = -(-cfg.rows * step_entry_layout(cfg.addr_width, cfg.lanes).size // 8)
    blk_bytes = -(-block_entry_layout(cfg.addr_width, cfg.post_lanes).size // 8)
    loaded = (len(prog.in_words) * cfg.lanes + len(prog.w_words) * cfg.rows * cfg.cols
              + len(prog.step_words) * step_bytes + len(prog.blocks) * (1 << cfg.group_bits) * blk_bytes)
    return loaded, out_words(prog) * cfg.cols


def _add_fetched(info: dict | None, sim_info: dict, prog: LayerProgram | None = None,
                 cfg: EngineConfig | None = None) -> None:
    """Add a run's map words read (line mode) and its memory traffic (:func:`program_bytes`) to
    the caller's ``info``, if it asked."""
    if info is None:
        return
    if "fetched" in sim_info:
        info["fetched"] = info.get("fetched", 0) + sim_info["fetched"]
    if prog is not None:
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
    summed.  A layer that does not fit even so raises :class:`EngineCapacityError`.  ``info``: a
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
    (:func:`emulate_many`: ``--target emu``) instead of Verilator."""

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
