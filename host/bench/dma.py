"""``blockfuse bench dma``: the controller's cycles per instruction shape on the whole simulated
SoC of each board configuration, beside the cycle model (``host/compiler/dma.py``) that the
emulator and ``predict`` use. Writes ``docs/dma_bench.md`` and ``docs/dma_bench.json``.

Each shape is a program of 16 copies of one instruction and a HALT, written over the protocol
and started; the controller's ``dma_cycles`` per copy are the transfer's cycles, its ``cycles``
beyond them the fetch, decode and dispatch. The ULX3S configurations run the board's SDRAM
controller against the timing-checking chip model and their activation buffer, the iCEBreaker
its SPRAM target. About two minutes per board here.
"""
from __future__ import annotations

import json
from pathlib import Path

BOARDS = ("ulx3s-85f", "icebreaker")
COPIES = 16


def _shapes(acfg):
    """(label, op, args, model cycles) of the measured shapes."""
    from host.compiler.dma import pool_cycles, gap_cycles, transfer_cycles
    from hw.soc.isa import ACT_BASE, Op, Target, act_wide_words, target_word_bytes
    wb = target_word_bytes(acfg.engine)
    wide = act_wide_words(acfg.engine, acfg.act_bytes) > 1
    L, LO, LW = wb[Target.MAP], wb[Target.OUT], wb[Target.WEIGHTS]
    ext = (1 << 20) if acfg.memory == "sdram" else (48 << 10)
    sides = [(acfg.memory, ext)] + ([("act", ACT_BASE)] if acfg.act_bytes else [])
    out = []
    for side, base in sides:
        wide_here = wide and side == "act"
        for n0, n1, s1 in [(1, 1, 0), (16, 1, 0), (256, 1, 0), (16, 16, 56), (8, 32, 224),
                           (4, 64, 112)]:
            out.append((f"LOAD map {n1}×{n0 * L} B", side, Op.LOAD,
                        dict(target=Target.MAP, onchip=0, ext=base, n0=n0, n1=n1, s1=s1 * L,
                             n2=1, s2=0),
                        transfer_cycles(side, n1, n0 * L, word_bytes=L, wide=wide_here)))
        if side != "act" and L > 4:
            # a 3-channel image stored in 4-byte words, zero-filled to map words (dense)
            for n0, n1 in [(224, 1), (38, 40)]:
                out.append((f"LOAD map {n1}×{n0} px dense", side, Op.LOAD,
                            dict(target=Target.MAP, onchip=0, ext=base, n0=n0, n1=n1,
                                 s1=224 * 4, n2=1, s2=0, dense=1),
                            transfer_cycles(side, n1, n0 * 4, word_bytes=4)))
        if side != "act":
            for n0 in (1, 64):
                out.append((f"LOAD weights {n0 * LW} B", side, Op.LOAD,
                            dict(target=Target.WEIGHTS, onchip=0, ext=base, n0=n0, n1=1, s1=0,
                                 n2=1, s2=0),
                            transfer_cycles(side, 1, n0 * LW, word_bytes=LW)))
        for n0, n1, s1 in [(1, 1, 0), (64, 1, 0), (14, 14, 224)]:
            out.append((f"STORE {n1}×{n0 * LO} B", side, Op.STORE,
                        dict(target=Target.OUT, onchip=0, ext=base, n0=n0, n1=n1, s1=s1 * LO,
                             n2=1, s2=0),
                        transfer_cycles(side, n1, n0 * LO, store=True, word_bytes=LO,
                                        wide=wide_here)))
        if not acfg.vector:                 # no vector unit: POOL and GAP would fault
            continue
        dst = base + (64 << 10 if side == "sdram" else 16 << 10)
        for nb, h, w, ho, wo, k, s in [(1, 8, 8, 6, 6, 3, 1), (2, 16, 16, 8, 8, 2, 2)]:
            a = dict(src=base, dst=dst, nb=nb, h=h, w=w, ho=ho, wo=wo, src_row=w,
                     src_plane=h * w, dst_row=wo, dst_plane=ho * wo, kh=k, kw=k, sh=s, sw=s,
                     pt=0, pl=0)
            out.append((f"POOL {k}×{k}/{s} {nb}×{h}×{w}", side, Op.POOL, a,
                        pool_cycles(side, side, nb * ho * wo * k * k, nb * ho * wo, L)))
        for nb, hw in [(4, 16)]:
            a = dict(src=base, dst=dst, nb=nb, hw=hw, zp_in=0, zp_out=0, mult=1 << 30, shift=0,
                     headroom=0)
            out.append((f"GAP {nb}×{hw}", side, Op.GAP, a,
                        gap_cycles(side, side, nb * hw, nb, L, acfg.engine.serial_requant)))
    return out


def measure(board: str) -> list:
    from host.compiler.dma import fetch_cycles
    from host.runtime.driver import Device, SimTransport
    from host.runtime.program_device import soc_config
    from hw.configs import get_config
    from hw.soc.controller import PERF
    from hw.soc.isa import Op, pack
    acfg = get_config(board)
    dev = Device(SimTransport(config=soc_config(acfg)))
    rows = []
    try:
        for label, side, op, args, model in _shapes(acfg):
            dev.write(0, pack(op, **args) * COPIES + pack(Op.HALT))
            dev.start(0)
            perf = dict(zip(PERF, dev.wait_idle(600)["perf"]))
            rows.append(dict(board=board, shape=label, memory=side,
                             rtl=perf["dma_cycles"] / COPIES, model=model,
                             fetch_rtl=(perf["cycles"] - perf["dma_cycles"]) / COPIES,
                             fetch_model=fetch_cycles(acfg.memory)))
    finally:
        dev.close()
    return rows


def bench(outdir, boards=BOARDS) -> list:
    outdir = Path(outdir)
    rows = [r for b in boards for r in measure(b)]
    (outdir / "dma_bench.json").write_text(json.dumps(rows, indent=1) + "\n")
    lines = ["# The controller's cycles per instruction: RTL against the cycle model", "",
             __doc__.split("\n\n", 1)[1].strip().replace("\n", " "), "",
             "*fetch …* is the controller's time per instruction besides the transfer "
             "(fetch, decode, dispatch; the HALT's share included).", "",
             "| board configuration | memory | instruction | RTL cycles | model | model / RTL | "
             "fetch … RTL | model |", "|---|---|---|---:|---:|---:|---:|---:|"]
    for r in rows:
        lines.append(f"| {r['board']} | {r['memory']} | {r['shape']} | {r['rtl']:,.1f} | "
                     f"{r['model']:,} | {r['model'] / r['rtl']:.3f} | {r['fetch_rtl']:.1f} | "
                     f"{r['fetch_model']} |")
    (outdir / "dma_bench.md").write_text("\n".join(lines) + "\n")
    return [outdir / "dma_bench.md", outdir / "dma_bench.json"]
