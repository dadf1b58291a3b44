"""The program emulator (``--target emu``): executes a network program in NumPy.

It holds what the accelerator holds — the off-chip memory image, the engine's memories as raw
words, the descriptor register — fetches and decodes each 32-byte instruction
(``hw.soc.isa``), and carries it out: ``LOAD``/``STORE`` move whole words by their 3-D
pattern, ``CONV`` decodes the loaded descriptor, step and block tables and runs the engine's
NumPy model (``host.runtime.engine_model.emulate``: its outputs and cycles are the RTL engine's, tested),
``POOL``/``GAP`` compute as the golden model does.

Timing, as the controller (``hw.soc.controller``) issues: in program order; a DMA-unit
instruction (LOAD, STORE, POOL, GAP) runs to its end before the next issues — after the
engine's current run when its ``sync.engine`` bit is set; a CONV starts once the run before it
has ended and the program goes on while it runs; HALT waits for the engine.  Engine runs take
the RTL's cycles, transfers the DMA model's (``host.compiler.dma``).  If a DMA-unit instruction
would touch on-chip words the engine's current run uses (``hw.soc.isa.dma_words``/``clash``),
the program is wrong and :class:`HazardError` says where.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from host.compiler.dma import fetch_cycles, gap_cycles, pool_cycles, transfer_cycles
from host.compiler.layer import LayerProgram
from host.model.quant import multiply_by_quantized_multiplier
from host.runtime.engine_model import emulate, map_footprint, preloaded_cycles
from host.compiler.pack import StepCodec
from hw.engine.engine import block_entry_layout, layer_desc_layout, table_bases
from hw.soc.isa import (ACT_BASE, WORD_ALIGN, Op, Target, act_wide_words, clash, decode_fields,
                        dma_words, run_desc_words, target_word_bytes, unpack, wide_transfer)

__all__ = ["Emulator", "HazardError", "ProgramFault", "RunStats", "predict"]

INSN_BYTES = 32


class ProgramFault(RuntimeError):
    """The program did something the hardware would fault on (address out of range, ...)."""


class HazardError(ProgramFault):
    """The DMA would touch on-chip words the engine's current run uses: a missing ``sync``
    bit."""


@dataclass
class RunStats:
    """What the accelerator's counters would show after one frame."""
    cycles: int = 0                       #: START to DONE
    busy: dict = field(default_factory=lambda: {"dma": 0, "engine": 0})
    #: cycles the program waited for the engine (a CONV behind the run before it, a sync bit,
    #: HALT): the controller's ``wait_cycles``
    wait: int = 0
    read: int = 0                         #: off-chip data bytes read (maps, weights, tables)
    written: int = 0                      #: off-chip bytes written
    fetched: int = 0                      #: instruction bytes fetched
    act: int = 0                          #: bytes moved to and from the activation buffer
    #: off-chip bytes by what they were: "map" (LOAD MAP, STORE, POOL, GAP), "weights",
    #: "tables" (steps, blocks, descriptors)
    traffic: dict = field(default_factory=lambda: {"map": 0, "weights": 0, "tables": 0})
    insns: list = field(default_factory=list)   #: (op, layer, start, end, read, written)

    def per_layer(self) -> list:
        """[{name, cycles (first start to last end), read, written}] in program order."""
        out: dict = {}
        for op, layer, start, end, rd, wr in self.insns:
            if not layer:
                continue
            r = out.setdefault(layer, dict(name=layer, start=start, end=end, read=0, written=0))
            r["start"], r["end"] = min(r["start"], start), max(r["end"], end)
            r["read"] += rd
            r["written"] += wr
        return [dict(name=r["name"], cycles=r["end"] - r["start"], read=r["read"],
                     written=r["written"]) for r in out.values()]

    def per_op(self) -> dict:
        out: dict = {}
        for op, _, start, end, rd, wr in self.insns:
            r = out.setdefault(op.name, dict(count=0, cycles=0, read=0, written=0))
            r["count"] += 1
            r["cycles"] += end - start
            r["read"] += rd
            r["written"] += wr
        return out


class Emulator:
    """One accelerator (``hw.configs.AcceleratorConfig``) with a program loaded."""

    def __init__(self, acfg, program):
        self.acfg, self.cfg, self.program = acfg, acfg.engine, program
        if program.board != acfg.name:
            raise ValueError(f"program compiled for {program.board}, not {acfg.name}")
        cfg = self.cfg
        self.wb = target_word_bytes(cfg)
        self.wide = act_wide_words(cfg, acfg.act_bytes)
        # off-chip memory, then the activation buffer (byte addresses from ACT_BASE)
        self.act_at = program.size
        self.mem = np.zeros(program.size + acfg.act_bytes, dtype=np.uint8)
        image = np.frombuffer(program.image(), dtype=np.uint8)
        self.mem[:len(image)] = image
        self.onchip = {
            Target.MAP: np.zeros((cfg.in_depth, self.wb[Target.MAP]), dtype=np.uint8),
            Target.WEIGHTS: np.zeros((cfg.w_depth, self.wb[Target.WEIGHTS]), dtype=np.uint8),
            Target.STEPS: np.zeros((cfg.step_depth * cfg.table_banks, self.wb[Target.STEPS]),
                                   dtype=np.uint8),
            Target.BLOCKS: np.zeros((cfg.block_words * cfg.table_banks, self.wb[Target.BLOCKS]),
                                    dtype=np.uint8),
            Target.DESC: np.zeros((1, self.wb[Target.DESC]), dtype=np.uint8),
            Target.OUT: np.zeros((cfg.out_depth, self.wb[Target.OUT]), dtype=np.uint8),
        }
        self._tables: dict = {}
        self.desc_layout = layer_desc_layout(cfg.addr_width)
        self.steps_codec = StepCodec(cfg)

    # ---- the frame --------------------------------------------------------------------------
    def run(self, x: np.ndarray | None, progress=None,
            timing_only: bool = False) -> tuple[np.ndarray | None, RunStats]:
        """Write the input, run the program from address 0 to HALT, read the output.
        ``timing_only``: count cycles and bytes from the instructions' arguments and
        descriptors without moving or computing any data (no input, no output, no hazard
        check): the program's cost before it runs (:func:`predict`)."""
        p = self.program
        if not timing_only:
            raw = np.frombuffer(p.input_bytes(x), dtype=np.uint8)
            self.mem[p.input.addr:p.input.addr + len(raw)] = raw
        st = RunStats()
        t = 0                              # when the next instruction issues
        engine_free, engine_uses = 0, {}   # the engine's current run: its end, its words
        fetch = fetch_cycles(self.acfg.memory)
        pc = 0
        while True:
            word = self.mem[pc * INSN_BYTES:(pc + 1) * INSN_BYTES].tobytes()
            if len(word) < INSN_BYTES:
                raise ProgramFault(f"instruction {pc}: fetch beyond the program's memory")
            try:
                op, sync, args = unpack(word)
            except ValueError as e:
                raise ProgramFault(f"instruction {pc}: {e}") from None
            st.fetched += INSN_BYTES
            t += fetch                     # fetch, decode, dispatch (the engine runs on)
            if op == Op.HALT:
                st.wait += max(0, engine_free - t)
                t = max(t, engine_free)
                break
            cycles, rd, wr, act = (self.cost if timing_only else self.execute)(pc, op, args)
            if op == Op.CONV:
                start = max(t, engine_free)
                end = engine_free = start + cycles
                engine_uses = {} if timing_only else self._run_words
                unit = "engine"
            else:
                start = t
                if sync["engine"]:
                    start = max(start, engine_free)
                elif engine_free > start:
                    hit = clash(dma_words(op, args, self.acfg.desc_buffers), engine_uses)
                    if hit:
                        raise HazardError(
                            f"instruction {pc} ({op.name}, {p.layers[pc]}) touches the "
                            f"{', '.join(x.name.lower() for x in hit)} words the engine's run "
                            f"uses")
                end = start + cycles
                unit = "dma"
            st.wait += start - t
            t = start if op == Op.CONV else end
            st.busy[unit] += cycles
            st.read += rd
            st.written += wr
            st.act += act
            kind = Target(args["target"]) if op in (Op.LOAD, Op.STORE) else Target.MAP
            st.traffic["map" if kind in (Target.MAP, Target.OUT) else
                       "weights" if kind == Target.WEIGHTS else "tables"] += rd + wr
            st.insns.append((op, p.layers[pc], start, end, rd, wr))
            pc += 1
            if progress is not None:
                progress(pc)
        st.cycles = t
        if timing_only:
            return None, st
        out = self.mem[p.output.addr:p.output.addr + p.output.nbytes]
        return p.read_output(out), st

    # ---- one instruction --------------------------------------------------------------------
    def execute(self, pc: int, op: Op, a: dict) -> tuple[int, int, int, int]:
        """Carry out one instruction; returns (cycles, off-chip bytes read, written, bytes
        moved on chip): a transfer's as :meth:`cost` counts them, a run's from the engine's
        model."""
        if op == Op.LOAD:
            t = Target(a["target"])
            if t == Target.OUT:
                raise ProgramFault(f"instruction {pc}: LOAD into the output memory")
            wb = self._word_bytes(t, a)
            words = self._gather(pc, a, wb)
            dst = self._onchip(pc, t, a["onchip"], len(words))
            dst[:, :wb], dst[:, wb:] = words, 0
            return self.cost(pc, op, a)
        if op == Op.STORE:
            t = Target(a["target"])
            if t != Target.OUT:
                raise ProgramFault(f"instruction {pc}: STORE from {t.name}")
            words = self._onchip(pc, t, a["onchip"], a["n0"] * a["n1"] * a["n2"])
            self._scatter(pc, a, words)
            return self.cost(pc, op, a)
        if op == Op.CONV:
            return self._conv(pc), 0, 0, 0
        if op in (Op.POOL, Op.GAP) and not self.acfg.vector:
            raise ProgramFault(f"instruction {pc}: {op.name} on the {self.acfg.name} "
                               f"configuration, which has no vector unit")
        if op == Op.POOL:
            return self._pool(pc, a)
        if op == Op.GAP:
            return self._gap(pc, a)
        raise ProgramFault(f"instruction {pc}: opcode {op.name} not executable")

    def _side(self, addr: int) -> str:
        """The memory a byte address is in: the configuration's off-chip memory, or "act"."""
        return "act" if addr >= ACT_BASE else self.acfg.memory

    def _word_bytes(self, t: Target, a: dict) -> int:
        """Bytes per target word a LOAD/STORE moves off chip (``dense``: fewer, zero-filled)."""
        n = a.get("dense", 0) * WORD_ALIGN
        if n > self.wb[t]:
            raise ProgramFault(f"dense LOAD of {n} bytes into {self.wb[t]}-byte words")
        if n and t == Target.DESC:      # the controller shifts a descriptor in whole
            raise ProgramFault("dense LOAD of a descriptor")
        return n or self.wb[t]

    def _transfer(self, addr: int, rows: int, row_bytes: int, write: bool, word_bytes: int = 0,
                  wide: bool = False):
        """(cycles, off-chip bytes read, written, on-chip bytes) of moving ``rows`` rows of
        ``row_bytes`` (target words of ``word_bytes``) at ``addr`` (``wide``: through the
        activation buffer's wide port)."""
        side = self._side(addr)
        n = rows * row_bytes
        return ((transfer_cycles(side, rows, row_bytes, store=write, word_bytes=word_bytes,
                                 wide=wide),)
                + self._traffic(side, side, 0 if write else n, n if write else 0))

    def cost(self, pc: int, op: Op, a: dict) -> tuple[int, int, int, int]:
        """(cycles, off-chip bytes read, written, bytes moved on chip) of one instruction from
        its arguments alone (a CONV's from the descriptor its LOAD brought), as
        :meth:`execute` counts them."""
        if op in (Op.LOAD, Op.STORE):
            t = Target(a["target"])
            if t == Target.DESC:
                self._static_desc = self.mem[a["ext"]:a["ext"] + self.wb[t]].copy()
            wb = self._word_bytes(t, a)
            return self._transfer(a["ext"], a["n1"] * a["n2"], a["n0"] * wb,
                                  op == Op.STORE, wb,
                                  wide_transfer(self.wide, op, a))
        if op == Op.CONV:
            d = decode_fields(self.desc_layout,
                              int.from_bytes(self._static_desc.tobytes(), "little"))
            return preloaded_cycles(d, self.cfg) + int(bool(d["pool"])), 0, 0, 0
        if op == Op.POOL:
            return self._pool_cost(a)
        if op == Op.GAP:
            return self._gap_cost(a)
        raise ProgramFault(f"instruction {pc}: opcode {op.name} not executable")

    def _onchip(self, pc, t, at, n):
        m = self.onchip[t]
        if at + n > len(m):
            raise ProgramFault(f"instruction {pc}: {n} words at {at} overrun the "
                               f"{len(m)}-word {t.name.lower()} memory")
        return m[at:at + n]

    def _pattern(self, pc, base, n0b, n1, s1, n2, s2) -> np.ndarray:
        """Indices into ``mem`` (n2, n1, n0b) of a 3-D pattern of byte addresses, checked
        against the memory the pattern starts in (off chip, or the activation buffer)."""
        idx = (base + np.arange(n2, dtype=np.int64)[:, None, None] * s2
               + np.arange(n1, dtype=np.int64)[None, :, None] * s1
               + np.arange(n0b, dtype=np.int64)[None, None, :])
        lo, hi = 0, self.act_at
        if base >= ACT_BASE:
            idx += self.act_at - ACT_BASE
            lo, hi = self.act_at, len(self.mem)
        if idx.size and (idx.min() < lo or idx.max() >= hi):
            where = "activation buffer" if base >= ACT_BASE else "off-chip memory"
            raise ProgramFault(f"instruction {pc}: access outside the {where} "
                               f"({hi - lo} bytes)")
        return idx

    def _gather(self, pc, a, wb) -> np.ndarray:
        idx = self._pattern(pc, a["ext"], a["n0"] * wb, a["n1"], a["s1"], a["n2"], a["s2"])
        return self.mem[idx].reshape(-1, wb)

    def _scatter(self, pc, a, words) -> None:
        wb = words.shape[1]
        idx = self._pattern(pc, a["ext"], a["n0"] * wb, a["n1"], a["s1"], a["n2"], a["s2"])
        self.mem[idx.reshape(-1)] = words.reshape(-1)

    # ---- the engine -------------------------------------------------------------------------
    def _decoded(self, t: Target, rows: np.ndarray, decode):
        key = (t, rows.tobytes())
        if key not in self._tables:
            if len(self._tables) > 4096:
                self._tables.clear()
            self._tables[key] = decode(rows)
        return self._tables[key]

    def _conv(self, pc: int) -> int:
        cfg = self.cfg
        desc = self._decoded(Target.DESC, self.onchip[Target.DESC], lambda r: decode_fields(
            self.desc_layout, int.from_bytes(r[0].tobytes(), "little")))
        nblk = desc["n_ob"] << cfg.group_bits
        if nblk > cfg.block_words or desc["steps"] > cfg.step_depth:
            raise ProgramFault(f"instruction {pc}: descriptor exceeds the engine's tables")
        s0, b0 = table_bases(desc, cfg)
        steps = self._decoded(Target.STEPS, self.onchip[Target.STEPS][s0:s0 + desc["steps"]],
                              self._decode_steps)
        blocks = self._decoded(Target.BLOCKS, self.onchip[Target.BLOCKS][b0:b0 + nblk],
                               self._decode_blocks)
        R, C = cfg.rows, cfg.cols
        if desc["n_ob"] == 1:
            # one output block fills up to the whole weight memory: its ``w_ob`` (= the
            # memory's depth) reads back as 0 in its address-wide field, and the RTL never
            # uses it (it only steps to the next block's weights); the NumPy model does
            desc = dict(desc, w_ob=desc["n_it"] * desc["steps"])
        prog = LayerProgram(
            desc=desc, in_words=self.onchip[Target.MAP].view(np.int8),
            w_words=self.onchip[Target.WEIGHTS].view(np.int8).reshape(-1, R, C),
            step_words=steps, blocks=blocks, out_channels=None, out_shape=None,
            meta=dict(depthwise=bool(desc["depthwise"]), line=False))
        words, cycles = emulate(prog, cfg)
        self._onchip(pc, Target.OUT, desc["out_base"], len(words))[:] = words.view(np.uint8)
        # the words the run uses while it lasts (the hazard check of the DMA beside it)
        w_lo = desc["w_base"]
        self._run_words = {
            Target.MAP: map_footprint(prog),
            Target.WEIGHTS: (w_lo, w_lo + desc["n_ob"] * desc["w_ob"]),
            Target.STEPS: (s0, s0 + desc["steps"]),
            Target.BLOCKS: (b0, b0 + nblk),
            Target.OUT: (desc["out_base"], desc["out_base"] + len(words)),
        } | run_desc_words(self.acfg.desc_buffers)
        return cycles

    def _decode_steps(self, rows: np.ndarray) -> list:
        return [self.steps_codec.decode(int.from_bytes(r.tobytes(), "little")) for r in rows]

    def _decode_blocks(self, rows: np.ndarray) -> list:
        cfg = self.cfg
        bl = block_entry_layout(cfg.addr_width, cfg.post_lanes)
        P, G = cfg.post_lanes, 1 << cfg.group_bits

        def field(v, off, width):
            x = (v >> off) & ((1 << width) - 1)
            return x - (1 << width) if x >> (width - 1) else x
        out = []
        for ob in range(len(rows) // G):
            bias, mult, shift = (np.zeros(cfg.cols, dtype=np.int64) for _ in range(3))
            in_base = 0
            for k in range(G):
                v = int.from_bytes(rows[ob * G + k].tobytes(), "little")
                if k == 0:
                    in_base = (v >> bl["in_base"].offset) & ((1 << bl["in_base"].width) - 1)
                for p in range(P):
                    cc = k * P + p
                    if cc >= cfg.cols:
                        continue
                    bias[cc] = field(v, bl["bias"].offset + 32 * p, 32)
                    mult[cc] = field(v, bl["mult"].offset + 32 * p, 32)
                    shift[cc] = field(v, bl["shift"].offset + 6 * p, 6)
            out.append((in_base, bias, mult, shift))
        return out

    # ---- the DMA unit's pooling -------------------------------------------------------------
    def _pool(self, pc: int, a: dict) -> tuple[int, int, int, int]:
        L = self.cfg.lanes
        nb, h, w, ho, wo = a["nb"], a["h"], a["w"], a["ho"], a["wo"]
        idx = self._pattern(pc, a["src"], w * L, h, a["src_row"] * L, nb, a["src_plane"] * L)
        x = self.mem[idx].view(np.int8).reshape(nb, h, w, L)
        kh, kw, sh, sw, pt, pl = (a[k] for k in ("kh", "kw", "sh", "sw", "pt", "pl"))
        hp, wp = max(h + pt, (ho - 1) * sh + kh), max(w + pl, (wo - 1) * sw + kw)
        xp = np.full((nb, hp, wp, L), -128, dtype=np.int8)
        xp[:, pt:pt + h, pl:pl + w] = x
        y = None
        for ky in range(kh):
            for kx in range(kw):
                win = xp[:, ky:ky + sh * (ho - 1) + 1:sh, kx:kx + sw * (wo - 1) + 1:sw]
                y = win.copy() if y is None else np.maximum(y, win)
        out = self._pattern(pc, a["dst"], wo * L, ho, a["dst_row"] * L, nb, a["dst_plane"] * L)
        self.mem[out.reshape(-1)] = y.view(np.uint8).reshape(-1)
        return self._pool_cost(a)

    def _pool_cost(self, a: dict) -> tuple[int, int, int, int]:
        """The vector unit reads each valid tap of each output word (a pixel's taps back to
        back), then writes the output word."""
        L = self.cfg.lanes
        nb, h, w, ho, wo = a["nb"], a["h"], a["w"], a["ho"], a["wo"]
        kh, kw, sh, sw, pt, pl = (a[k] for k in ("kh", "kw", "sh", "sw", "pt", "pl"))
        vy = ((np.arange(ho)[:, None] * sh - pt + np.arange(kh)[None, :]) >= 0) & \
             ((np.arange(ho)[:, None] * sh - pt + np.arange(kh)[None, :]) < h)
        vx = ((np.arange(wo)[:, None] * sw - pl + np.arange(kw)[None, :]) >= 0) & \
             ((np.arange(wo)[:, None] * sw - pl + np.arange(kw)[None, :]) < w)
        taps = nb * int(vy.sum()) * int(vx.sum())
        outs = nb * ho * wo
        src, dst = self._side(a["src"]), self._side(a["dst"])
        cycles = pool_cycles(src, dst, taps, outs, L)
        return (cycles,) + self._traffic(src, dst, taps * L, outs * L)

    @staticmethod
    def _traffic(src: str, dst: str, rd: int, wr: int) -> tuple:
        """(off-chip bytes read, written, on-chip bytes) of reading ``rd`` bytes on ``src`` and
        writing ``wr`` on ``dst``."""
        return ((0 if src == "act" else rd), (0 if dst == "act" else wr),
                (rd if src == "act" else 0) + (wr if dst == "act" else 0))

    def _gap(self, pc: int, a: dict) -> tuple[int, int, int, int]:
        L = self.cfg.lanes
        nb, hw = a["nb"], a["hw"]
        idx = self._pattern(pc, a["src"], hw * L, 1, 0, nb, hw * L)
        x = self.mem[idx].view(np.int8).reshape(nb, hw, L).astype(np.int64)
        total = (x - a["zp_in"]).sum(axis=1) << a["headroom"]
        y = multiply_by_quantized_multiplier(total, a["mult"], a["shift"]) + a["zp_out"]
        y = np.clip(y, -128, 127).astype(np.int8)
        out = self._pattern(pc, a["dst"], nb * L, 1, 0, 1, 0)
        self.mem[out.reshape(-1)] = y.view(np.uint8).reshape(-1)
        return self._gap_cost(a)

    def _gap_cost(self, a: dict) -> tuple[int, int, int, int]:
        L, nb, hw = self.cfg.lanes, a["nb"], a["hw"]
        src, dst = self._side(a["src"]), self._side(a["dst"])
        cycles = gap_cycles(src, dst, nb * hw, nb, L, self.cfg.serial_requant)
        return (cycles,) + self._traffic(src, dst, nb * hw * L, nb * L)


class EmuTarget:
    """``--target emu``: compiles the network once for a configuration, then runs frames on the
    emulator, recording per layer what ``--stats`` reports (``stats``, as
    ``sim.engine_layers.EngineSim`` records them) and per frame the counters (``frames``)."""

    def __init__(self, graph, plan, acfg, until: str | None = None, program=None):
        from host.compiler.program import compile_program
        self.acfg = acfg
        self.program = program or compile_program(graph, acfg, plan, until=until)
        self.stats: list = []
        self.frames: list = []

    def run(self, x: np.ndarray) -> np.ndarray:
        y, st = Emulator(self.acfg, self.program).run(x)
        pes = self.acfg.engine.rows * self.acfg.engine.cols
        engine = {}
        for op, layer, start, end, _, _ in st.insns:
            if op == Op.CONV:
                engine[layer] = engine.get(layer, 0) + end - start
        for r in st.per_layer():
            macs = self.program.macs.get(r["name"], 0)
            self.stats.append(dict(name=r["name"], macs=macs, cycles=r["cycles"],
                                   engine_cycles=engine.get(r["name"], 0), pes=pes,
                                   utilisation=macs / (pes * r["cycles"]) if r["cycles"] else 0.0,
                                   offchip_bytes=dict(read=r["read"], written=r["written"])))
        self.frames.append(dict(cycles=st.cycles, busy=dict(st.busy), wait=st.wait, read=st.read,
                                written=st.written, act=st.act, fetched=st.fetched,
                                traffic=dict(st.traffic)))
        return y


def predict(program, acfg) -> RunStats:
    """What ``program`` will cost on ``acfg`` — cycles from START to DONE, per unit, and the
    off-chip bytes read and written — from its instructions and descriptors alone, before it
    runs: the emulator's counts without its data (equal to them, tested); the RTL's bytes are
    the emulator's, its cycles the controller's cycle model's (``host/compiler/dma.py``)."""
    return Emulator(acfg, program).run(None, timing_only=True)[1]
