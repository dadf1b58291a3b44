"""The layer compiler: one convolution (FC: a 1×1 convolution on a 1×1 map) laid out for the RTL
engine as a :class:`LayerProgram` — the input map, weight, step-table and block-table images and
the descriptor (``hw.engine.engine`` has the memory map) — and the capacity checks against an
:class:`hw.engine.engine.EngineConfig`.  Larger layers are cut into several programs by
``host.compiler.tiling``; ``host.compiler.pack`` packs a program into memory words.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from host.compiler.reduction import last_slot, plan_reduction
from hw.configs import SIMULATION_ONLY
from hw.engine.engine import EngineConfig
from hw.engine.requant import RequantSerial

__all__ = ["DEFAULT_CONFIG", "EngineCapacityError", "SPATIAL", "LayerProgram", "compile_conv",
           "check_capacity", "out_words"]


#: The engine the host simulates by default: an 8×8 array with whole-layer memories and the fused
#: 2×2 max-pool, ``hw.configs.SIMULATION_ONLY["sim-8x8"]`` — it fits no board (its memories
#: alone need about four times the ECP5-85F's block RAM), so every figure measured on it says so.
DEFAULT_CONFIG = SIMULATION_ONLY["sim-8x8"].engine


class EngineCapacityError(ValueError):
    """A layer does not fit the memories of the engine configuration; ``resource`` names the
    memory or field that is short (e.g. "input memory"), when one is."""

    def __init__(self, message: str, resource: str | None = None):
        super().__init__(message)
        self.resource = resource


def check_left_shift(cfg: EngineConfig, shift: int, what: str) -> None:
    """Raise :class:`EngineCapacityError` if ``what``'s requantisation left shift ``shift`` is
    beyond ``cfg``'s lanes (the serial lane's :attr:`RequantSerial.MAX_LEFT`)."""
    if cfg.serial_requant and shift > RequantSerial.MAX_LEFT:
        raise EngineCapacityError(
            f"{what} requantisation left shift of {shift} exceeds the serial lane's "
            f"{RequantSerial.MAX_LEFT} (an output scale over 2^{RequantSerial.MAX_LEFT - 1} "
            "times the input's)")


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
        slots = red.slots()
        rows = [(it, slots[e], *idx) for it in range(red.n_it)
                for e, el in enumerate(red.template())
                if (idx := red.weight_index(it, *el)) is not None]
        _PLACES[red] = tuple(np.array(c, dtype=np.intp) for c in zip(*rows)) if rows else \
            tuple(np.zeros(0, dtype=np.intp) for _ in range(5))
    return _PLACES[red]


def compile_conv(weight, bias_folded, mult, shift, x, zx: int, zy: int, lo: int, hi: int,
                 stride=(1, 1), pads=(0, 0, 0, 0), groups: int = 1,
                 cfg: EngineConfig = DEFAULT_CONFIG, pool: bool = False,
                 check_only: bool = False, share: int = 1) -> LayerProgram | None:
    """Lay one convolution out for the engine (see hw/engine/engine.py for the memory map).
    ``pool``: the engine's fused 2×2/2 max-pool follows (needs ``cfg.pool_width``); the output
    is then the pooled ``(O, Ho//2, Wo//2)`` map.  ``check_only``: raise
    :class:`EngineCapacityError` if it does not fit, else return None, without packing.
    ``share``: the run may use 1/share of the input, weight and output memories (2: half, so
    the DMA can fill the other half while the engine runs); a tuple gives one for each.

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
    if shift.size:
        check_left_shift(cfg, int(shift.max()), "a")

    # layout: sizes and the descriptor (all a capacity check needs)
    n_it, it_stride, it_dy, red = 1, 0, 0, None
    if depthwise:
        n_cb = _ceil(c, C)
        # taps on the rows, as many per step as the input memory has read ports
        steps, n_ob, nb = _ceil(kh * kw, cfg.read_ports), n_cb, n_cb
    else:
        n_cbg = _ceil(ig, L)                 # input words (channel blocks) per group and pixel
        n_obg = _ceil(og, C)                 # output-channel blocks per group
        # the reduction (ky, kx, ci) of one group on the rows: densely, or one iteration of
        # channel blocks / kernel rows that the engine repeats (host.compiler.reduction)
        red = plan_reduction(kh, kw, ig, R, L, cfg.step_depth, dense_only=line,
                             ports=cfg.read_ports)
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
                nb=nb, pool_w=n_ob * wo if line else wo, w_base=0, out_base=0,
                step_bank=0, ob_bank=0)
    out_shape = (o, ho // 2, wo // 2) if pool else (o, ho, wo)
    macs = int(o * ig * kh * kw * ho * wo)
    meta = dict(depthwise=depthwise, line=line)
    if check_only:
        # placeholders of the right lengths: the capacity check counts words, nothing more
        check_capacity(LayerProgram(desc, np.empty((nb * hw, 0)), np.empty((n_ob * n_it * steps, 0)),
                                    range(steps), range(n_ob), np.empty((n_ob, 0)), out_shape,
                                    macs, meta), cfg, share)
        return None

    # packing: the memory images
    if depthwise:
        xs = np.zeros((n_cb * C, h, w), dtype=np.int8)
        xs[:c] = x
        in_words = np.zeros((n_cb * hw, L), dtype=np.int8)
        in_words[:, :C] = xs.reshape(n_cb, C, hw).transpose(0, 2, 1).reshape(-1, C)
        taps, T = kh * kw, cfg.read_ports
        step_words = []
        for s in range(steps):
            row = []
            for r in range(R):
                t = s * T + r
                if r < T and t < taps:
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
                    w_words[ob, t // T, t % T, cc] = wt[ch, t]
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
    check_capacity(prog, cfg, share)
    return prog


_STEPS = {}


def _step_words(red, R: int, w: int, hw: int, line: bool) -> list:
    """The step table of reduction plan ``red`` on a map ``w`` wide with ``hw`` words per
    channel block (computed once per shape)."""
    key = (red, R, w, hw, line)
    if key not in _STEPS:
        words = [[(0, 0, 0, 0, 0)] * R for _ in range(red.steps)]
        for (ky, kx, cb, lane), slot in zip(red.template(), red.slots()):
            s, r = divmod(slot, R)
            words[s][r] = (ky, kx, 1, lane, cb * w if line else cb * hw + ky * w + kx)
        _STEPS[key] = words
    return _STEPS[key]


def check_capacity(prog: LayerProgram, cfg: EngineConfig, share: int = 1) -> None:
    """Raise :class:`EngineCapacityError` if ``prog`` does not fit the engine; ``share`` (see
    :func:`compile_conv`) divides the input, weight and output memories (one number for all
    three, or one each)."""
    d = prog.desc
    s_in, s_w, s_out = (share,) * 3 if isinstance(share, int) else share
    need = {
        "input memory": (len(prog.in_words), cfg.in_depth // s_in),
        "weight memory": (len(prog.w_words), cfg.w_depth // s_w),
        "step table": (len(prog.step_words), cfg.step_depth),
        "block table": (len(prog.blocks), cfg.ob_depth),
        "output memory": (out_words(prog), cfg.out_depth // s_out),
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


def out_words(prog: LayerProgram) -> int:
    """Words the engine writes to its output memory for ``prog``."""
    d = prog.desc
    if d.get("pool"):
        return d["n_ob"] * (d["ho"] // 2) * (d["wo"] // 2)
    return d["n_ob"] * d["ho"] * d["wo"]
