"""Layers larger than the engine's memories: a convolution compiled as several engine runs,
output-channel chunks (:func:`conv_chunks`) times tiles of the output map (:func:`conv_parts`),
each a :class:`host.compiler.layer.LayerProgram` that fits the configuration.
"""
from __future__ import annotations

import numpy as np

from host.compiler.layer import DEFAULT_CONFIG, SPATIAL, EngineCapacityError, compile_conv
from hw.engine.engine import EngineConfig

__all__ = ["chunk_ranges", "conv_chunks", "conv_parts"]


def chunk_ranges(o: int, groups: int, depthwise: bool, cfg: EngineConfig, fits) -> list:
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

    return [(o0, o1, part(o0, o1)) for o0, o1 in chunk_ranges(o, groups, depthwise, cfg, fits)]


def tilings(ho: int, wo: int, even: bool = False):
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
    for hs, ws in tilings(ho, wo, pool):
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
