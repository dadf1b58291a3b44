"""The network compiler: (graph, plan, board configuration) → a network program.

The program (``docs/isa.md``) is what the on-chip controller runs from START to DONE with no
host computation in between: DMA loads of maps, weights and tables into the engine, engine
runs, stores of output tiles, max pooling and global average pooling.  Its off-chip memory
image holds the instructions, then the constants (packed weights, step and block tables,
descriptors: written once, resident across frames), then an arena for the maps.  Per frame the
host writes the input map at ``Program.input.addr``, starts, and reads ``Program.output``.

Every map lives off chip, channel-blocked (``hw.soc.isa``), in a buffer of its own for as long
as it has consumers (first-fit reuse of the arena).  A convolution runs as tiles of its output
region × output-channel chunks, the fewest tiles whose every part fits the engine's memories;
each tile loads the input window it needs, clipped to the region's *bounds* — the map under
``layer`` and ``fused``, the block under ``block`` (DATE 2018: a block is padded at its own
borders) — and the engine substitutes the zero point for the rest, so no padded copy of any
map is ever stored.  Loads of memories that already hold the same data are skipped (weights
stay for every tile of a chunk; the loop order, tiles inside chunks or chunks inside tiles, is
the one that moves fewer bytes).

A group of several layers runs block by block — ``fused`` blocks recompute their halos
exactly as the golden model does, ``block`` blocks are padded at their own borders — with its
intermediate maps in the configuration's activation buffer when their windows fit it (else
off chip; a ``block`` group then runs layer by layer over all its blocks).  Fully connected
layers run as 1×1 convolutions on a 1×1 map whose channels are the input's bytes in their
stored order (the weights' columns are permuted to match); one whose input exceeds the input
memory is refused until the engine accumulates across runs.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

import numpy as np

from host.compiler.plan import Plan, PlanError, default_plan
from host.compiler.tiling import chunk_ranges, tilings
from host.errors import UserError
from host.model.ir import FC, Conv, Flatten, GlobalAvgPool, Graph, Pool, UnsupportedModel
from host.runtime.golden import block_grid, intersect, need_region
from hw.soc.isa import (ACT_BASE, WORD_ALIGN, WORD_BITS, Op, Target, clash, dma_words, pack,
                        run_desc_words, target_word_bytes)
from host.compiler.layer import EngineCapacityError, check_left_shift, compile_conv, out_words
from host.compiler.pack import put_fields

__all__ = ["Program", "MapPlace", "compile_program", "ProgramError"]

#: alignment of every off-chip buffer (bytes): one SDRAM burst of the widest word
ALIGN = 32
INSN_BYTES = WORD_BITS // 8


class ProgramError(UserError):
    """A network the program compiler cannot lay out on this configuration (one line)."""


@dataclass(frozen=True)
class MapPlace:
    """A map (C, H, W) stored channel-blocked at ``addr`` (``lanes`` bytes per word); a vector
    is stored as (n, 1, 1); ``flat`` marks the flattening of the map, whose elements are then
    in the stored order of the map (see :meth:`vector_index`).  A *window* of a larger map
    (a fused group's block in the activation buffer) stores rows ``y0 … y0+h-1`` and columns
    ``x0 … x0+w-1`` and is addressed in the map's coordinates."""
    addr: int
    channels: int
    h: int
    w: int
    lanes: int
    flat: bool = False
    y0: int = 0
    x0: int = 0

    @property
    def nb(self) -> int:
        return -(-self.channels // self.lanes)

    @property
    def nbytes(self) -> int:
        return self.nb * self.h * self.w * self.lanes

    def word(self, cb: int, y: int, x: int) -> int:
        """Byte address of word (channel block, row, column)."""
        return self.addr + ((cb * self.h + y - self.y0) * self.w + x - self.x0) * self.lanes

    def pack(self, x: np.ndarray) -> bytes:
        """The bytes of map (or flattened map / vector) ``x`` in this layout."""
        x = np.asarray(x, dtype=np.int8).reshape(self.channels, self.h, self.w)
        out = np.zeros((self.nb * self.lanes, self.h, self.w), dtype=np.int8)
        out[:self.channels] = x
        return out.reshape(self.nb, self.lanes, self.h, self.w).transpose(0, 2, 3, 1).tobytes()

    def unpack(self, raw) -> np.ndarray:
        """The map (C, H, W), or the vector when ``flat`` or a vector was stored, from bytes."""
        a = np.frombuffer(bytes(raw[:self.nbytes]), dtype=np.int8)
        a = a.reshape(self.nb, self.h, self.w, self.lanes).transpose(0, 3, 1, 2)
        return a.reshape(self.nb * self.lanes, self.h, self.w)[:self.channels].copy()

    def vector_index(self) -> np.ndarray:
        """For each stored byte of the map, its index in the flattened (C·H·W) vector, −1 for
        the padding lanes of the last channel block."""
        p = np.arange(self.nbytes)
        lane, rest = p % self.lanes, p // self.lanes
        s, cb = rest % (self.h * self.w), rest // (self.h * self.w)
        c = cb * self.lanes + lane
        return np.where(c < self.channels, c * self.h * self.w + s, -1)


@dataclass
class Program:
    """A compiled network: instructions, constants and the places of input and output."""
    board: str
    schedule: str
    code: bytes                      #: instruction words (32 bytes each), ending with HALT
    consts: bytes                    #: packed weights, tables and descriptors
    consts_addr: int
    arena_addr: int
    size: int                        #: off-chip bytes the program, constants and maps take
    input: MapPlace
    output: MapPlace
    output_shape: tuple
    layers: list                     #: the layer (node name) of each instruction
    macs: dict                       #: MACs of each conv/FC layer (the network's, not recomputed halos)
    counts: dict = field(default_factory=dict)

    @property
    def n_insns(self) -> int:
        return len(self.code) // INSN_BYTES

    def image(self) -> bytes:
        """Off-chip memory from address 0 up to the end of the constants."""
        return self.code + bytes(self.consts_addr - len(self.code)) + self.consts

    def input_bytes(self, x: np.ndarray) -> bytes:
        return self.input.pack(x)

    def read_output(self, raw) -> np.ndarray:
        """The network's output from the bytes at ``output.addr``."""
        y = self.output.unpack(raw)
        if self.output.flat:
            flat = np.zeros(int(np.prod(self.output_shape)), dtype=np.int8)
            idx = self.output.vector_index()
            stored = np.frombuffer(bytes(raw[:self.output.nbytes]), dtype=np.int8)
            flat[idx[idx >= 0]] = stored[idx >= 0]
            return flat
        return y.reshape(self.output_shape)


class _Arena:
    """First-fit allocation of the map buffers, freed after their last consumer."""

    def __init__(self, base: int):
        self.base, self.free, self.top = base, [], base

    def alloc(self, n: int) -> int:
        n = -(-n // ALIGN) * ALIGN
        for k, (a, size) in enumerate(self.free):
            if size >= n:
                self.free[k] = (a + n, size - n)
                return a
        a, self.top = self.top, self.top + n
        return a

    def release(self, a: int, n: int) -> None:
        n = -(-n // ALIGN) * ALIGN
        self.free.append((a, n))
        self.free.sort()
        merged = []
        for b, size in self.free:
            if merged and merged[-1][0] + merged[-1][1] == b:
                merged[-1] = (merged[-1][0], merged[-1][1] + size)
            else:
                merged.append((b, size))
        self.free = merged


class _Buffer:
    """What each part of an engine memory holds.

    The input, weight and output memories are double-buffered: a run that fits half the memory
    goes to a half — the one not used last, unless the engine's current run or a pending store
    uses it — so the DMA fills or drains the other half while the engine runs; a run that needs
    more takes the whole memory (and the sync bits then serialise the units around it). The
    step table, block table and descriptor are single (``share`` 1): loaded at word 0.

    With ``pack`` (the weight memory) a run that fits a half goes first into words nothing
    holds, wherever they are: the weights of a group's several layers then stay side by side
    while its blocks run, each loaded once instead of once per block; only when no such place
    is left does it evict a half's contents."""

    def __init__(self, depth: int, pack: bool = False):
        self.depth, self.half, self.pack = depth, depth // 2, pack
        self.held: list = []             # (first word, last + 1, key, off-chip source range)
        self.recent = None
        self.reserved = None             # (first, last + 1) kept free for a load to come

    def find(self, key):
        for lo, _, k, _ in self.held:
            if k == key:
                self.recent = lo
                return lo
        return None

    def _offsets(self, share: int) -> list:
        return [0] if share == 1 else sorted((0, self.half), key=lambda o: o == self.recent)

    def free_at(self, n: int, share: int, avoid=()) -> int | None:
        """The first word of a place for ``n`` words (``share``: 1 the whole memory, 2 a half)
        that overlaps none of the ranges ``avoid``; None if there is none."""
        if self.pack and share == 2:
            avoid = [(lo, hi) for lo, hi in avoid if lo < hi]
            keep = [self.reserved] if self.reserved else []
            gap = self._gap(n, avoid + keep + [(h[0], h[1]) for h in self.held])
            if gap is None and keep:     # evict what is held rather than the reservation
                gap = self._gap(n, avoid + keep)
            if gap is not None:
                return gap
        return next((o for o in self._offsets(share)
                     if not any(lo < o + n and o < hi for lo, hi in avoid if lo < hi)), None)

    def _gap(self, n: int, used: list) -> int | None:
        """The first word of ``n`` words of the memory that overlap none of ``used``."""
        at = 0
        for lo, hi in sorted(used):
            if lo - at >= n:
                return at
            at = max(at, hi)
        return at if self.depth - at >= n else None

    def place(self, n: int, share: int, avoid=(), key=None, source=None) -> int:
        """The first word of ``n`` words for a run compiled for ``share`` (1: the whole
        memory, 2: a half) that overlap none of the ranges ``avoid`` if possible."""
        at = self.free_at(n, share, avoid)
        return self.claim(at if at is not None else self._offsets(share)[0], n, key, source)

    def claim(self, at: int, n: int, key=None, source=None) -> int:
        """Words ``at … at + n`` now hold ``key``: what they held is gone."""
        self.held = [h for h in self.held if not (h[0] < at + n and at < h[1])]
        if key is not None:
            self.held.append((at, at + n, key, source))
        self.recent = at
        return at

    def forget_sources(self, lo: int, hi: int) -> None:
        """Off-chip bytes ``lo … hi`` change: drop the copies made of them."""
        self.held = [h for h in self.held if not (h[3] and h[3][0] < hi and lo < h[3][1])]


def _const_load(target: Target, onchip: int, ext: int, words: int, dense: int = 0) -> dict:
    """The arguments of a LOAD of ``words`` consecutive words of a constant (``ext``: its
    offset in the constants, relocated when the program is finished) to ``onchip``; ``dense``:
    stored as that many memory words per target word, the rest zero."""
    return dict(target=target, onchip=onchip, ext=ext, n0=words, n1=1, s1=0, n2=1, s2=0,
                dense=dense)


def _offchip_range(a: dict, word: int) -> tuple:
    """(first, last + 1) off-chip byte a LOAD or STORE pattern touches."""
    return a["ext"], a["ext"] + (a["n2"] - 1) * a["s2"] + (a["n1"] - 1) * a["s1"] + a["n0"] * word


#: how a run shares the input, weight and output memories (1: the whole memory, 2: a half, so
#: the DMA fills or drains the other half while the engine runs)
HALVES, MAP_RESIDENT, WHOLE = (2, 2, 2), (1, 2, 2), (1, 1, 1)
#: a layer's first weights under 1/SMALL_WEIGHTS of a weight half load where the last layer's
#: last run was issued (a depthwise layer's: a few words), leaving the runs before to a larger
SMALL_WEIGHTS = 8
#: the most memory words a ``dense`` LOAD reads per target word (its field's range)
MAX_DENSE = 15


@dataclass
class _Part:
    """One engine run: a tile of the output × an output-channel chunk, compiled."""
    o0: int
    o1: int
    tile: tuple                  # (y0, y1, x0, x1) of the output map
    window: tuple                # (y0, y1, x0, x1) of the input map loaded
    cb: tuple                    # input channel blocks loaded (first, count)
    run: dict                    # packed tables (bytes) and word counts
    share: tuple = WHOLE         # the input, weight and output memories' shares


class _Compiler:
    def __init__(self, graph: Graph, plan: Plan, acfg, cache: dict | None = None):
        self.g, self.plan, self.acfg = graph, plan, acfg
        self.cfg = cfg = acfg.engine
        if cfg.cols != cfg.lanes:
            raise ProgramError(f"configuration {acfg.name}: the network program needs as many "
                               f"columns as lanes ({cfg.cols} columns, {cfg.lanes} lanes)")
        if cfg.line_rows:
            raise ProgramError(f"configuration {acfg.name}: line mode has no network program")
        self.L = cfg.lanes
        self.wb = target_word_bytes(cfg)
        self.packer = _TablePacker(cfg, self.wb)
        if self.wb[Target.MAP] != self.L:
            raise ProgramError(f"configuration {acfg.name}: {self.L} lanes are not a whole "
                               f"number of 32-bit memory words")
        self.insns: list[bytes] = []
        self.layers: list[str] = []
        self.consts = bytearray()
        self.const_at: dict = {}
        self._digests: dict = {}
        self.bufs = {Target.MAP: _Buffer(cfg.in_depth),
                     Target.WEIGHTS: _Buffer(cfg.w_depth, pack=True),
                     Target.OUT: _Buffer(cfg.out_depth),
                     Target.STEPS: _Buffer(cfg.step_depth * cfg.table_banks),
                     Target.BLOCKS: _Buffer(cfg.block_words * cfg.table_banks),
                     Target.DESC: _Buffer(1)}
        self.engine_words: dict = {}        # on-chip words the engine's current run uses
        self.deferred = None                # the last run's STORE, emitted beside the next run
        self.batch = None                   # a block-wise layer's runs, collected over its blocks
        self.places: dict = {}
        self.owner: dict = {}               # a flatten's output → the tensor whose buffer it shares
        self.layer = ""
        self.counts = {"tiles": 0, "runs": 0, "loads_skipped": 0, "act_groups": 0}
        self._prefetch = None               # (constant, first word) of weights loading in pieces
        self._tail = None                   # see run_jobs / early_weights
        self._slots: list = []              # CONVs of the last long row of runs (early_weights)
        self._wuse: list = []               # (instruction, first, last + 1) weight words touched
        self._conv_at = 0                   # the last CONV's instruction
        self._weight_loads = 0
        self._compiled: dict = {} if cache is None else cache   # runs compiled, by shape

    # ---- instructions -----------------------------------------------------------------------
    def emit(self, op: Op, run_words=None, **args) -> None:
        """Append one instruction. A DMA-unit instruction gets ``sync.engine`` when it touches
        words the engine's current run uses (``run_words`` of the last CONV); the pending
        STORE goes first where the instruction may depend on it."""
        if self.deferred and op in (Op.POOL, Op.GAP, Op.HALT):
            self.flush_store()
        sync = {}
        if op == Op.CONV:
            self.engine_words = run_words
        elif op != Op.HALT and clash(dma_words(op, args, self.acfg.desc_buffers),
                                     self.engine_words):
            sync["engine"], self.engine_words = 1, {}
        self.insns.append(pack(op, sync, **args))
        self.layers.append(self.layer)
        if op == Op.LOAD and args["target"] == Target.WEIGHTS:
            self._weight_loads += 1
            self._wuse.append((len(self.insns) - 1, args["onchip"], args["onchip"] + args["n0"]))
        elif op == Op.CONV:
            self._wuse.append((len(self.insns) - 1, *run_words[Target.WEIGHTS]))

    def flush_store(self) -> None:
        """Emit the STORE of the last run's output (kept back so it runs beside the next run)."""
        if self.deferred:
            layer, args = self.layer, self.deferred
            self.layer, self.deferred = args.pop("layer"), None
            self.emit(Op.STORE, **args)
            self.layer = layer

    def const(self, raw: bytes) -> int:
        """Offset of ``raw`` in the constants (stored once per distinct content)."""
        seen = self._digests.get(id(raw))           # the same object: its digest, once
        if seen is not None and seen[0] is raw:
            key = seen[1]
        else:
            key = hashlib.blake2b(raw, digest_size=16).digest()
            self._digests[id(raw)] = (raw, key)
        if key not in self.const_at:
            self.consts += bytes(-len(self.consts) % ALIGN)
            self.const_at[key] = len(self.consts)
            self.consts += raw
        return self.const_at[key]

    # ---- convolutions and fully connected layers --------------------------------------------
    def _compile(self, node, w, fb, mult, shift, zx, zy, o0, o1, shape, pads, stride, groups,
                 check_only, share=WHOLE):
        key = (node.name, o0, o1, shape, pads, check_only, share)
        if key in self._compiled:
            hit = self._compiled[key]
            if isinstance(hit, Exception):
                raise hit
            return hit
        try:
            prog = compile_conv(w[o0:o1], fb[o0:o1], mult[o0:o1], shift[o0:o1],
                                np.broadcast_to(np.int8(0), shape), zx, zy, node.lo, node.hi,
                                stride, pads, groups, self.cfg, check_only=check_only,
                                share=share)
        except EngineCapacityError as e:
            self._compiled[key] = e
            raise
        if prog is not None:
            prog = dict(
                desc=prog.desc,
                steps=self.packer.steps(prog.step_words),
                blocks=self.packer.blocks(prog.blocks),
                weights=np.asarray(prog.w_words, dtype=np.int8).tobytes(),
                in_words=len(prog.in_words), out_words=out_words(prog),
                n_ob=prog.desc["n_ob"], ho=prog.desc["ho"], wo=prog.desc["wo"])
        self._compiled[key] = prog
        return prog

    def conv_parts(self, node, w, fb, mult, shift, zx, zy, in_ch, region, bounds, groups,
                   depthwise):
        """The engine runs of a convolution on output ``region`` whose input is clipped to
        ``bounds``: the fewest tiles whose every part fits, each cut into output chunks (the
        window, stride and padding are ``node.window()``'s; an FC's is 1×1)."""
        o = w.shape[0]
        y0, y1, x0, x1 = region

        def cut(share, sizes):
            """The parts on the first tiling of ``sizes`` that fits (None, error if none)."""
            err = None
            for hs, ws in sizes:
                parts = []
                try:
                    for ty in range(y0, y1, hs):
                        for tx in range(x0, x1, ws):
                            tile = (ty, min(y1, ty + hs), tx, min(x1, tx + ws))
                            parts += self._tile_parts(node, w, fb, mult, shift, zx, zy, in_ch,
                                                      tile, bounds, groups, depthwise, o, share)
                    return parts, None
                except EngineCapacityError as e:
                    if e.resource not in ("input memory", "output memory"):
                        raise
                    err = e
                except ProgramError as e:
                    return None, e
            return None, err
        sizes = tilings(y1 - y0, x1 - x0)
        parts, _ = cut(HALVES, sizes)
        if (parts is not None and len({p.tile for p in parts}) > 2
                and len({(p.o0, p.o1) for p in parts}) > 1):
            # in halves the region needs more tiles than the input memory holds, and every
            # output chunk would load them again: if the region's window fits the whole input
            # memory, it stays there for all the chunks while the weights stream in halves
            resident, _ = cut(MAP_RESIDENT, [(y1 - y0, x1 - x0)])
            if resident is not None:
                return resident
        if parts is not None:
            return parts
        parts, err = cut(WHOLE, sizes)
        if parts is None:
            raise err
        return parts

    def _tile_parts(self, node, w, fb, mult, shift, zx, zy, in_ch, tile, bounds, groups,
                    depthwise, o, share):
        stride = tuple(node.window()[2:4])
        ty0, ty1, tx0, tx1 = tile
        need = need_region(node, tile)           # an FC's window is the 1×1 one it runs as
        win = intersect(need, bounds)
        if win[1] <= win[0] or win[3] <= win[2]:
            raise ProgramError(f"{node.name}: output tile {tile} reads only padding")
        tpads = (win[0] - need[0], win[2] - need[2], need[1] - win[1], need[3] - win[3])
        h, wd = win[1] - win[0], win[3] - win[2]

        def shape(a, b):
            return (b - a if depthwise else in_ch, h, wd)

        def fits(a, b):
            try:
                self._compile(node, w, fb, mult, shift, zx, zy, a, b, shape(a, b), tpads,
                              stride, b - a if depthwise else groups, True, share)
                return True
            except EngineCapacityError as e:
                if e.resource is None:
                    raise
                return False
        parts = []
        for a, b in chunk_ranges(o, groups, depthwise, self.cfg, fits):
            try:
                run = self._compile(node, w, fb, mult, shift, zx, zy, a, b, shape(a, b), tpads,
                                    stride, b - a if depthwise else groups, False, share)
            except EngineCapacityError as e:   # not even one output block fits
                if e.resource in ("input memory", "output memory"):
                    raise                        # a smaller tile may fit
                raise ProgramError(f"{node.name}: {e}; the engine does not accumulate "
                                   f"across runs yet") from e
            assert (run["ho"], run["wo"]) == (ty1 - ty0, tx1 - tx0), (run, tile)
            cb = (a // self.L, -(-(b - a) // self.L)) if depthwise else (0, -(-in_ch // self.L))
            parts.append(_Part(a, b, tile, win, cb, run, share))
        return parts

    def run_parts(self, parts, src: MapPlace, dst: MapPlace, dst_origin=(0, 0)) -> None:
        """Emit the loads, runs and stores of ``parts`` (reading ``src``, writing ``dst``) in
        the order that moves fewer bytes — or, while a block-wise group collects a layer's
        runs over all its blocks (``self.batch``), add them to the batch."""
        jobs = [(p, src, dst, dst_origin) for p in parts]
        if self.batch is not None:
            self.batch.extend(jobs)
        else:
            self.run_jobs(jobs)

    def run_jobs(self, jobs) -> None:
        """Emit ``jobs`` ((part, src, dst, dst origin)) tiles inside chunks or chunks inside
        tiles, whichever loads fewer bytes."""
        def cost(order):
            held, n = {}, 0
            for p, src, _, _ in order:
                for what, key, size in (("map", (src.addr, p.window, p.cb),
                                         p.run["in_words"] * self.L),
                                        ("w", (p.o0, p.o1), len(p.run["weights"]))):
                    if held.get(what) != key:
                        held[what], n = key, n + size
            return n
        tiles = {k: i for i, k in enumerate(dict.fromkeys((j[1].addr, j[0].tile) for j in jobs))}
        chunks = {k: i for i, k in enumerate(dict.fromkeys((j[0].o0, j[0].o1) for j in jobs))}

        def tile(j):
            return tiles[(j[1].addr, j[0].tile)]

        def chunk(j):
            return chunks[(j[0].o0, j[0].o1)]
        by_tile = sorted(jobs, key=lambda j: (tile(j), chunk(j)))
        by_chunk = sorted(jobs, key=lambda j: (chunk(j), tile(j)))
        order = by_chunk if cost(by_chunk) < cost(by_tile) else by_tile
        # runs in a row with the same weights; each run prefetches its share of the next
        # row's weights (see run_part)
        rows = []
        for k, job in enumerate(order):
            if k and job[0].run["weights"] == order[k - 1][0].run["weights"]:
                rows[-1].append(job)
            else:
                rows.append([job])
        self.early_weights(order[0][0])
        big = self._big_weights(max(len(row[0][0].run["weights"]) for row in rows)
                                // self.wb[Target.WEIGHTS])
        for r, row in enumerate(rows):
            nxt = rows[r + 1][0][0] if r + 1 < len(rows) else None
            if not self._slots:
                self._wuse.clear()          # only a reservation looks back (_reserve, from here)
            convs = []
            for i, (p, src, dst, origin) in enumerate(row):
                self.run_part(p, src, dst, origin, nxt and (nxt, i, len(row)))
                convs.append(self._conv_at)
            if nxt is None and big:
                self._reserve(convs)
        # where the next layer's first weights can still load beside this layer's last run
        self._tail = (len(self.insns), self.engine_words.get(Target.WEIGHTS, (0, 0)),
                      self._weight_loads, order[-1][0].share[1])

    def _stored_weights(self, part: _Part) -> tuple:
        """(bytes as stored, ``dense``) of ``part``'s weights: words whose last bytes are zero
        in every word (a depthwise run's: two taps of the array's nine rows) are stored and
        loaded ``dense``, their used memory words only; others whole (``dense`` 0)."""
        run = part.run
        if "stored_weights" not in run:
            raw, wbt = run["weights"], self.wb[Target.WEIGHTS]
            w = np.frombuffer(raw, np.uint8).reshape(-1, wbt)
            nz = np.flatnonzero(w.any(axis=0))
            used = -(-(int(nz[-1]) + 1 if len(nz) else 1) // WORD_ALIGN)
            dense = used if used * WORD_ALIGN < wbt and used <= MAX_DENSE else 0
            run["stored_weights"] = (w[:, :used * WORD_ALIGN].tobytes() if dense else raw, dense)
        return run["stored_weights"]

    def _weights(self, part: _Part) -> tuple:
        """(words, offset in the constants, bytes per word stored, ``dense``) of ``part``'s
        weights (:meth:`_stored_weights`)."""
        raw, dense = self._stored_weights(part)
        wb = dense * WORD_ALIGN or self.wb[Target.WEIGHTS]
        return len(raw) // wb, self.const(raw), wb, dense

    def early_weights(self, part: _Part) -> None:
        """Load ``part``'s weights (the first of a layer) before the layer starts, so its first
        run waits only for its map (the last layer's output, stored and perhaps pooled first),
        not for its weights too.  Best in pieces beside the runs of the last row of runs that
        had nothing to load beside it (a pointwise layer's last output chunk, with a depthwise
        layer after it whose runs are short and whose weights are small): into words that no
        load or run has touched since; else whole, back where the last layer's last run was
        issued, into the weight half it does not use, when no weight load came since."""
        tail, self._tail = self._tail, None
        words, off, wb, dense = self._weights(part)
        buf = self.bufs[Target.WEIGHTS]
        slots = []
        if self._big_weights(words):           # small ones leave the slots to the next
            slots, self._slots, buf.reserved = self._slots, [], None
        if part.share[1] != 2 or buf.find(("const", off)) is not None or words > buf.half:
            return
        if slots:
            used = [(lo, hi) for k, lo, hi in self._wuse if k >= slots[0]]
            at = buf._gap(words, used + [(h[0], h[1]) for h in buf.held])   # keep what stays
            if at is None:
                at = buf._gap(words, used)
            self._wuse = []
            if at is not None:
                buf.claim(at, words, ("const", off))
                n = len(slots)
                for i in reversed(range(n)):
                    lo, hi = words * i // n, words * (i + 1) // n
                    self._insert(slots[i] + 1, _const_load(Target.WEIGHTS, at + lo,
                                                           off + lo * wb, hi - lo, dense))
                return
        if tail is None:
            return
        at_insn, busy, loads, share = tail
        if share != 2 or loads != self._weight_loads or buf.free_at(words, 2, [busy]) is None:
            return
        at = buf.place(words, 2, [busy], ("const", off))
        self._insert(at_insn, _const_load(Target.WEIGHTS, at, off, words, dense))

    def _big_weights(self, words: int) -> bool:
        """Whether ``words`` of weights take 1/SMALL_WEIGHTS of a weight half or more."""
        return words * SMALL_WEIGHTS >= self.bufs[Target.WEIGHTS].half

    def _reserve(self, convs: list) -> None:
        """The runs ``convs`` (a layer's last row) have nothing to load beside them: keep the
        largest stretch of the weight memory they do not use free for the next layer's first
        weights (less room for a small layer's weights in between), to be loaded beside them
        (:meth:`early_weights`)."""
        buf = self.bufs[Target.WEIGHTS]
        self._wuse = [u for u in self._wuse if u[0] >= convs[0]]
        at, best, free = 0, (0, 0), 0
        for lo, hi in sorted((lo, hi) for _, lo, hi in self._wuse) + [(buf.depth, buf.depth)]:
            free += max(0, lo - at)
            if lo - at > best[1] - best[0]:
                best = (at, lo)
            at = max(at, hi)
        room = free - (best[1] - best[0])             # free words beside the stretch
        hi = best[1] - max(0, buf.half // SMALL_WEIGHTS - room)
        self._slots, buf.reserved = (convs, (best[0], hi)) if hi > best[0] else ([], None)

    def _insert(self, k: int, load: dict) -> None:
        """Put a LOAD of a constant in at instruction ``k`` (of the current layer)."""
        self.insns.insert(k, pack(Op.LOAD, {}, **load))
        self.layers.insert(k, self.layer)
        self._patch = [j + (j >= k) for j in self._patch] + [k]
        self._wuse = [(j + (j >= k), lo, hi) for j, lo, hi in self._wuse]
        self._wuse.append((k, load["onchip"], load["onchip"] + load["n0"]))

    def run_part(self, p: _Part, src: MapPlace, dst: MapPlace, dst_origin,
                 prefetch=None) -> None:
        """One engine run, software-pipelined: its loads go into the memory halves the
        engine's current run does not use, the CONV waits for that run, and the STORE of that
        run's output is emitted after this CONV, so it drains one half of the output memory
        while the engine fills the other.  ``prefetch`` = (part, i, n): after this CONV, the
        i-th of n pieces of that part's weights loads into the free half of the weight memory —
        the controller issues in order, so a load placed whole before the last run of a row
        of runs would delay the runs behind it; in pieces, the next weights stream beside all
        of the row's runs, not only its last."""
        self.counts["runs"] += 1
        L, run = self.L, p.run
        busy = self.engine_words
        y0, y1, x0, x1 = p.window
        n_in = run["in_words"]
        # the weights first: a map load may have to wait for the last run's STORE (the first
        # run of a layer reads what the layer before wrote), the weights never do
        raw, dense = self._stored_weights(p)
        w_at = self.load_const(Target.WEIGHTS, raw, p.share[1], busy, dense)
        key = ("map", src.addr, p.window, p.cb)
        m_at = self.bufs[Target.MAP].find(key)
        if m_at is None:
            sl = src.lanes                     # fewer than L: a dense map (_dense_input)
            load = dict(target=Target.MAP, ext=src.word(p.cb[0], y0, x0), n0=x1 - x0,
                        n1=y1 - y0, s1=src.w * sl, n2=p.cb[1], s2=src.h * src.w * sl,
                        dense=sl // WORD_ALIGN if sl < L else 0)
            assert (x1 - x0) * (y1 - y0) * p.cb[1] == n_in
            if self.deferred:
                lo, hi = _offchip_range(load, sl)
                slo, shi = _offchip_range(self.deferred, L)
                if lo < shi and slo < hi:
                    self.flush_store()             # this load reads what that store writes
                    busy = self.engine_words
            m_at = self.bufs[Target.MAP].place(n_in, p.share[0], [busy.get(Target.MAP, (0, 0))],
                                               key, (src.addr, src.addr + src.nbytes))
            self.emit(Op.LOAD, onchip=m_at, **load)
        else:
            self.counts["loads_skipped"] += 1
        # the tables: with two banks into the one the engine's current run does not read
        banks = self.cfg.table_banks
        s_at = self.load_const(Target.STEPS, run["steps"], banks, busy)
        b_at = self.load_const(Target.BLOCKS, run["blocks"], banks, busy)
        n_out = run["out_words"]
        pending = dma_words(Op.STORE, self.deferred) if self.deferred else {}
        o_at = self.bufs[Target.OUT].place(n_out, p.share[2], list(pending.values()))
        if clash({Target.OUT: (o_at, o_at + n_out)}, pending):
            self.flush_store()                     # the run would overwrite its words
        d = run["desc"]
        self.load_const(Target.DESC, self.packer.desc(
            dict(d, pix0=d["pix0"] + m_at, w_base=w_at, out_base=o_at,
                 step_bank=s_at // self.cfg.step_depth,
                 ob_bank=b_at // self.cfg.block_words)))
        n_w = len(run["weights"]) // self.wb[Target.WEIGHTS]
        self._conv_at = len(self.insns)
        self.emit(Op.CONV, run_words={
            Target.MAP: (m_at, m_at + n_in), Target.WEIGHTS: (w_at, w_at + n_w),
            Target.STEPS: (s_at, s_at + d["steps"]),
            Target.BLOCKS: (b_at, b_at + (d["n_ob"] << self.cfg.group_bits)),
            Target.OUT: (o_at, o_at + n_out)} | run_desc_words(self.acfg.desc_buffers))
        self.flush_store()
        if prefetch and p.share[1] == prefetch[0].share[1] == 2:
            self.prefetch_weights(*prefetch)
        ty0, ty1, tx0, tx1 = p.tile
        n_ob = run["n_ob"]
        assert n_ob * (ty1 - ty0) * (tx1 - tx0) == n_out
        self.deferred = dict(target=Target.OUT, onchip=o_at,
                             ext=dst.word(p.o0 // L, ty0 - dst_origin[0], tx0 - dst_origin[1]),
                             n0=tx1 - tx0, n1=ty1 - ty0, s1=dst.w * L, n2=n_ob,
                             s2=dst.h * dst.w * L, layer=self.layer)
        self.written(dst)

    def prefetch_weights(self, part: _Part, i: int, n: int) -> None:
        """Piece ``i`` of ``n`` of ``part``'s weights into the half of the weight memory the
        engine's current run does not use (the first piece places them; nothing when a half
        already holds them)."""
        words, off, wb, dense = self._weights(part)
        buf = self.bufs[Target.WEIGHTS]
        if i == 0:
            self._prefetch = None
            if buf.find(("const", off)) is not None:
                return
            busy = self.engine_words.get(Target.WEIGHTS, (0, 0))
            self._prefetch = (off, buf.place(words, 2, [busy], ("const", off)))
        if self._prefetch is None or self._prefetch[0] != off:
            return
        at = self._prefetch[1]
        lo, hi = words * i // n, words * (i + 1) // n
        if hi > lo:
            self.emit(Op.LOAD, **_const_load(Target.WEIGHTS, at + lo, off + lo * wb, hi - lo,
                                             dense))
            self._patch.append(len(self.insns) - 1)

    def load_const(self, target: Target, raw: bytes, share: int = 1, busy=None,
                   dense: int = 0) -> int:
        """LOAD constant ``raw`` (whole words of ``target``) into a part of ``target``'s memory
        — for ``share`` 2 a half the engine's current run (``busy``) does not use — unless one
        holds it; returns its first word. The off-chip address is relocated to the constants'
        final place when the program is finished."""
        off = self.const(raw)
        buf = self.bufs[target]
        at = buf.find(("const", off))
        if at is not None:
            self.counts["loads_skipped"] += 1
            return at
        n = len(raw) // (dense * WORD_ALIGN or self.wb[target])
        at = buf.place(n, share, [(busy or {}).get(target, (0, 0))], ("const", off))
        self.emit(Op.LOAD, **_const_load(target, at, off, n, dense))
        self._patch.append(len(self.insns) - 1)
        return at

    def written(self, dst: MapPlace) -> None:
        """Off-chip bytes of ``dst`` change: the input memory no longer holds copies of them."""
        self.bufs[Target.MAP].forget_sources(dst.addr, dst.addr + dst.nbytes)

    def conv(self, node: Conv, region, bounds) -> None:
        src = self.places[node.inputs[0]]
        dst = self.places[node.output]
        zx = self.g.tensors[node.inputs[0]].zero_point
        zy = self.g.tensors[node.output].zero_point
        o, ig = node.weight.shape[:2]
        depthwise = node.groups > 1 and ig == 1 and node.groups == o
        if node.groups > 1 and not depthwise:
            raise ProgramError(f"{node.name}: grouped convolutions other than depthwise are not "
                               f"in the network program yet")
        if depthwise and src.channels != o:
            raise ProgramError(f"{node.name}: depthwise layer with a channel multiplier")
        parts = self.conv_parts(node, np.asarray(node.weight), node.folded_bias(zx),
                                np.asarray(node.mult), np.asarray(node.shift), zx, zy,
                                src.channels, region, bounds, node.groups, depthwise)
        self.counts["tiles"] += len({p.tile for p in parts})
        self.run_parts(parts, src, dst)

    def fc(self, node: FC) -> None:
        src = self.places[node.inputs[0]]
        dst = self.places[node.output]
        zx = self.g.tensors[node.inputs[0]].zero_point
        zy = self.g.tensors[node.output].zero_point
        w = np.asarray(node.weight)
        idx = src.vector_index() if src.flat else np.where(
            np.arange(src.nbytes) < src.channels, np.arange(src.nbytes), -1)
        wp = np.where(idx[None, :] >= 0, w[:, np.maximum(idx, 0)], 0).astype(np.int8)
        wp = wp.reshape(w.shape[0], -1, 1, 1)
        flat = MapPlace(src.addr, src.nbytes, 1, 1, self.L)
        try:
            parts = self.conv_parts(node, wp, node.folded_bias(zx), np.asarray(node.mult),
                                    np.asarray(node.shift), zx, zy, src.nbytes, (0, 1, 0, 1),
                                    (0, 1, 0, 1), 1, False)
        except EngineCapacityError as e:
            raise ProgramError(f"{node.name}: {w.shape[1]:,} inputs ({src.nbytes // self.L:,} "
                               f"words as stored) exceed the engine's input memory "
                               f"({self.cfg.in_depth} words); the engine does not accumulate "
                               f"across runs yet") from e
        self.counts["tiles"] += 1
        self.run_parts(parts, flat, dst)

    # ---- pooling ----------------------------------------------------------------------------
    def maxpool(self, node: Pool, region, bounds) -> None:
        if node.kind != "max":
            raise ProgramError(f"{node.name}: average pooling is not in the network program yet")
        src, dst = self.places[node.inputs[0]], self.places[node.output]
        kh, kw, sh, sw, _, _, _, _ = node.window()
        y0, y1, x0, x1 = region
        need = need_region(node, region)
        win = intersect(need, bounds)
        self.emit(Op.POOL, src=src.word(0, win[0], win[2]), dst=dst.word(0, y0, x0),
                  nb=src.nb, h=win[1] - win[0], w=win[3] - win[2], ho=y1 - y0, wo=x1 - x0,
                  src_row=src.w, src_plane=src.h * src.w, dst_row=dst.w,
                  dst_plane=dst.h * dst.w, kh=kh, kw=kw, sh=sh, sw=sw,
                  pt=win[0] - need[0], pl=win[2] - need[2])
        self.written(dst)

    def gap(self, node: GlobalAvgPool) -> None:
        from host.model.quant import quantize_multiplier
        from host.runtime.golden import ADD_LEFT_SHIFT
        src, dst = self.places[node.inputs[0]], self.places[node.output]
        tin, tout = self.g.tensors[node.inputs[0]], self.g.tensors[node.output]
        n = src.h * src.w
        headroom = max(0, min(ADD_LEFT_SHIFT, 30 - int(np.ceil(np.log2(n * 256)))))
        m, s = quantize_multiplier(tin.scale / (tout.scale * n) / (1 << headroom))
        check_left_shift(self.cfg, s, "GAP's")
        self.emit(Op.GAP, src=src.addr, dst=dst.addr, nb=src.nb, hw=n, zp_in=tin.zero_point,
                  zp_out=tout.zero_point, mult=m, shift=s, headroom=headroom)
        self.written(dst)

    # ---- the graph --------------------------------------------------------------------------
    def node(self, n, region=None, bounds=None) -> None:
        self.layer = n.name
        t = self.g.tensors[n.output]
        if isinstance(n, Conv):
            full = (0, t.shape[1], 0, t.shape[2])
            _, ih, iw = self.g.tensors[n.inputs[0]].shape
            self.conv(n, region or full, bounds or (0, ih, 0, iw))
        elif isinstance(n, Pool):
            full = (0, t.shape[1], 0, t.shape[2])
            _, ih, iw = self.g.tensors[n.inputs[0]].shape
            self.maxpool(n, region or full, bounds or (0, ih, 0, iw))
        elif isinstance(n, FC):
            self.fc(n)
        elif isinstance(n, GlobalAvgPool):
            self.gap(n)
        elif isinstance(n, Flatten):
            pass                                 # an alias of its input (see place())
        else:
            raise ProgramError(f"{n.name}: {n.op} is not in the network program yet")

    def place(self, arena: _Arena, n) -> None:
        """Give ``n``'s output a buffer (a flatten shares its input's)."""
        t = self.g.tensors[n.output]
        if isinstance(n, Flatten):
            src = self.places[n.inputs[0]]
            self.owner[n.output] = self.owner.get(n.inputs[0], n.inputs[0])
            self.places[n.output] = MapPlace(src.addr, src.channels, src.h, src.w, self.L,
                                             flat=src.h * src.w > 1 or src.flat)
            return
        shape = tuple(t.shape) if len(t.shape) == 3 else (int(np.prod(t.shape)), 1, 1)
        size = MapPlace(0, *shape, self.L).nbytes
        self.places[n.output] = MapPlace(arena.alloc(size), *shape, self.L)

    def _outputs(self, nodes) -> list:
        """The tensors of a group that leave it (consumed outside it, or the graph's output)."""
        names = {n.name for n in nodes}
        return [n.output for n in nodes if n.output == self.g.output
                or any(c.name not in names for c in self.g.consumers(n.output))]

    def block_needs(self, nodes, block) -> list:
        """Block convolution's blocks: for each block of the group's input, the window
        (y0, y1, x0, x1) of every tensor of the chain (no halos: a block is its own image)."""
        self._check_chain(nodes, "block-wise")
        first = self.g.tensors[nodes[0].inputs[0]]
        _, H, W = first.shape
        bh, bw = block or (H, W)
        # per axis, the (start, size) of every block in every tensor of the chain
        ext = {nodes[0].inputs[0]: ([(a, b - a) for a, b in block_grid(H, bh)],
                                    [(a, b - a) for a, b in block_grid(W, bw)])}
        for n in nodes:
            kh, kw, sh, sw, pt, pl, pb, pr = n.window()
            out = []
            for blocks, k, s, p0, p1 in ((ext[n.inputs[0]][0], kh, sh, pt, pb),
                                         (ext[n.inputs[0]][1], kw, sw, pl, pr)):
                sizes = [(size + p0 + p1 - k) // s + 1 for _, size in blocks]
                if min(sizes) < 1:
                    raise PlanError(f"{n.name}: a block of {min(b[1] for b in blocks)} pixels is "
                                    f"too small for its {k}-pixel window (use larger blocks)")
                starts = np.concatenate([[0], np.cumsum(sizes)[:-1]]).tolist()
                out.append(list(zip(starts, sizes)))
            t = self.g.tensors[n.output]
            if sum(s for _, s in out[0]) != t.shape[1] or sum(s for _, s in out[1]) != t.shape[2]:
                raise PlanError(f"blocks of {bh}x{bw} do not tile the output {n.output} "
                                f"{tuple(t.shape)} (pick a block size the strides divide)")
            ext[n.output] = tuple(out)
        ny, nx = len(ext[nodes[0].inputs[0]][0]), len(ext[nodes[0].inputs[0]][1])
        return [{t: (e[0][by][0], e[0][by][0] + e[0][by][1], e[1][bx][0], e[1][bx][0] + e[1][bx][1])
                 for t, e in ext.items()} for by in range(ny) for bx in range(nx)]

    @staticmethod
    def _check_chain(nodes, kind: str) -> None:
        """A group of several layers runs block by block only as a chain of convolutions and
        pools."""
        for n in nodes:
            if not isinstance(n, (Conv, Pool)) or len(n.inputs) != 1:
                raise ProgramError(f"{n.name}: {n.op} in a {kind} group is not in the network "
                                   f"program yet")

    def fused_needs(self, nodes, block) -> list:
        """Exact fusion's blocks: per output block, the region every tensor must provide (back
        to front, halos included), as the golden model computes them."""
        self._check_chain(nodes, "fused")
        _, H, W = self.g.tensors[nodes[0].inputs[0]].shape
        _, Ho, Wo = self.g.tensors[nodes[-1].output].shape
        bh, bw = block or (H, W)
        outputs = self._outputs(nodes)
        needs = []
        for ya, yb in block_grid(Ho, max(1, -(-bh * Ho // H))):
            for xa, xb in block_grid(Wo, max(1, -(-bw * Wo // W))):
                need = {}
                for t in outputs:
                    _, th, tw = self.g.tensors[t].shape
                    need[t] = (ya * th // Ho, -(-yb * th // Ho), xa * tw // Wo, -(-xb * tw // Wo))
                for n in reversed(nodes):
                    if n.output not in need:
                        continue
                    _, ih, iw = self.g.tensors[n.inputs[0]].shape
                    r = intersect(need_region(n, need[n.output]), (0, ih, 0, iw))
                    old = need.get(n.inputs[0])
                    need[n.inputs[0]] = r if old is None else (
                        min(old[0], r[0]), max(old[1], r[1]), min(old[2], r[2]), max(old[3], r[3]))
                needs.append(need)
        return needs

    def on_chip(self, nodes, block, schedule: str) -> bool:
        """Whether the group keeps its intermediate maps in the activation buffer."""
        needs = (self.block_needs if schedule == "block" else self.fused_needs)(nodes, block)
        return bool(self.act_areas(nodes, self._outputs(nodes), needs))

    def _through(self, nodes, needs, act, run) -> None:
        """Block by block (``needs``), each node of the group on its block (``run(n, need)``),
        the intermediate maps kept in the activation buffer at ``act``."""
        saved = {t: self.places[t] for t in act}
        try:
            for need in needs:
                for t, at in act.items():
                    y0, y1, x0, x1 = need[t]
                    p = saved[t]
                    self.places[t] = MapPlace(at, p.channels, y1 - y0, x1 - x0, self.L,
                                              y0=y0, x0=x0)
                for n in nodes:
                    if n.output in need:
                        run(n, need)
        finally:
            self.places.update(saved)

    def group_block(self, nodes, block) -> None:
        """Block convolution: each block of the group's input through the group as an image —
        block by block with the intermediate blocks in the activation buffer when they fit
        (every block reloads every layer's weights), else layer by layer over all blocks with
        the maps off chip (the same result; a layer's runs are then ordered over all its
        blocks at once, so its weights load once per chunk, not per block)."""
        needs = self.block_needs(nodes, block)
        act = self.act_windows(nodes, self._outputs(nodes), needs)
        if act:
            self._through(nodes, needs, act,
                          lambda n, need: self._block_node(n, need[n.output], need[n.inputs[0]]))
            return
        for n in nodes:
            self.batch = [] if isinstance(n, Conv) else None
            for need in needs:
                self._block_node(n, need[n.output], need[n.inputs[0]])
            jobs, self.batch = self.batch, None
            if jobs:
                self.layer = n.name
                self.run_jobs(jobs)

    def _block_node(self, n, out_region, in_bounds) -> None:
        """``n`` on one block: the block is its own image, so coordinates are the block's
        (origin at ``in_bounds``' corner), mapped back onto the maps' buffers."""
        self.layer = n.name
        src, dst = self.places[n.inputs[0]], self.places[n.output]
        iy0, _, ix0, _ = in_bounds
        oy0, oy1, ox0, ox1 = out_region
        local_src = MapPlace(src.word(0, iy0, ix0), src.channels, src.h, src.w, src.lanes)
        local_dst = MapPlace(dst.word(0, oy0, ox0), dst.channels, dst.h, dst.w, dst.lanes)
        saved = self.places[n.inputs[0]], self.places[n.output]
        self.places[n.inputs[0]], self.places[n.output] = local_src, local_dst
        try:
            local_bounds = (0, in_bounds[1] - iy0, 0, in_bounds[3] - ix0)
            local_region = (0, oy1 - oy0, 0, ox1 - ox0)
            if isinstance(n, Conv):
                self.conv(n, local_region, local_bounds)
            else:
                self.maxpool(n, local_region, local_bounds)
        finally:
            self.places[n.inputs[0]], self.places[n.output] = saved

    def group_fused(self, nodes, block) -> None:
        """Exact fusion with halos: per output block, the regions every tensor must provide
        (back to front), then those regions (front to back), as the golden model does.  The
        group's intermediate maps stay on chip, a block's window at a time, when the
        configuration's activation buffer holds them (:meth:`act_windows`)."""
        needs = self.fused_needs(nodes, block)
        act = self.act_windows(nodes, self._outputs(nodes), needs)
        self._through(nodes, needs, act, lambda n, need: self.node(n, need[n.output]))

    def act_areas(self, nodes, outputs, needs) -> dict:
        """Where in the activation buffer each intermediate map of a chain keeps its block's
        window: two alternating areas (a layer reads one and writes the other), each as large
        as the largest window it holds; {} when the buffer is too small (the maps then go off
        chip)."""
        inter = [n.output for n in nodes if n.output not in outputs]
        if not self.acfg.act_bytes or not inter:
            return {}
        size = [0, 0]
        for k, t in enumerate(inter):
            nb = -(-self.g.tensors[t].shape[0] // self.L)
            for need in needs:
                y0, y1, x0, x1 = need.get(t, (0, 0, 0, 0))
                size[k % 2] = max(size[k % 2], -(-nb * (y1 - y0) * (x1 - x0) * self.L
                                                 // ALIGN) * ALIGN)
        if sum(size) > self.acfg.act_bytes:
            return {}
        return {t: ACT_BASE + (size[0] if k % 2 else 0) for k, t in enumerate(inter)}

    def act_windows(self, nodes, outputs, needs) -> dict:
        """:meth:`act_areas` of a group being compiled (counted in ``act_groups``)."""
        act = self.act_areas(nodes, outputs, needs)
        self.counts["act_groups"] += bool(act)
        return act

    def _dense_input(self, t: str, shape) -> int:
        """Lanes of the stored input map ``t``: a map of fewer channels than the engine's lanes
        (a 3-channel image) whose consumers are all convolutions is stored in words of its
        channels rounded up to whole memory words, and its LOADs read only those (``dense``),
        so its traffic is not that of 16-byte words; any other input has the engine's lanes."""
        words = -(-shape[0] // WORD_ALIGN) * WORD_ALIGN
        users = self.g.consumers(t)
        if (words >= self.L or not users
                or not all(isinstance(n, Conv) and n.groups == 1 for n in users)):
            return self.L
        return words

    def compile(self, until: str | None = None) -> Program:
        g = self.g
        nodes_in_order = [n.name for n in g.nodes]
        if until is not None and until not in nodes_in_order:
            raise ProgramError(f"no layer {until!r} in the model")
        self._patch = []
        # the first group's input: the network's, or a map a part of a plan starts from
        first = g.node(self.plan.groups[0].nodes[0]).inputs[0]
        tin = g.tensors[first]
        shape = tuple(tin.shape) if len(tin.shape) == 3 else (int(np.prod(tin.shape)), 1, 1)
        arena = _Arena(0)
        lanes = self._dense_input(first, shape)
        self.places[first] = MapPlace(arena.alloc(MapPlace(0, *shape, lanes).nbytes),
                                      *shape, lanes)
        remaining = {}
        for n in g.nodes:
            for i in n.inputs:
                remaining[i] = remaining.get(i, 0) + 1
        last, released = None, set()
        for group in self.plan.groups:
            nodes = [g.node(name) for name in group.nodes]
            if until is not None and until in group.nodes:
                nodes = nodes[:group.nodes.index(until) + 1]
            for n in nodes:
                self.place(arena, n)
            spatial = all(n.spatial for n in nodes) and g.tensors[nodes[0].inputs[0]].is_map
            if len(nodes) == 1 and (not spatial or group.block is None):
                self.node(nodes[0])
            elif not spatial:
                raise PlanError(f"group starting at {nodes[0].name} mixes block-wise and "
                                f"whole-map layers")
            elif self.plan.schedule == "block":
                self.group_block(nodes, group.block)
            else:
                self.group_fused(nodes, group.block)
            last = nodes[-1]
            if until is not None and last.name == until:
                break
            for n in nodes:
                for i in n.inputs:
                    remaining[i] -= 1
                    owner = self.owner.get(i, i)
                    sharing = [t for t, o in self.owner.items() if o == owner] + [owner]
                    if owner not in released and all(remaining.get(t, 0) == 0 for t in sharing):
                        released.add(owner)
                        p = self.places[owner]
                        arena.release(p.addr, p.nbytes)
        self.layer = ""
        self.emit(Op.HALT)
        out_t = g.tensors[last.output]
        # memory map: instructions, constants, then the arena
        code_bytes = len(self.insns) * INSN_BYTES
        consts_addr = -(-code_bytes // ALIGN) * ALIGN
        arena_addr = consts_addr + -(-len(self.consts) // ALIGN) * ALIGN
        code = bytearray(b"".join(self.insns))
        _relocate(code, self._patch, consts_addr, arena_addr)
        size = arena_addr + arena.top
        limit = self.acfg.memory_bytes
        if size > limit:
            raise ProgramError(f"the program needs {size / 2**20:.1f} MiB of off-chip memory, "
                               f"{self.acfg.name} has {limit / 2**20:.1f} MiB")

        def moved(p: MapPlace) -> MapPlace:
            return MapPlace(p.addr + arena_addr, p.channels, p.h, p.w, p.lanes, p.flat)
        macs, ran = {}, set(self.layers)
        for n in g.nodes:
            if isinstance(n, (Conv, FC)) and n.name in ran:
                macs[n.name] = n.macs([g.tensors[i] for i in n.inputs], g.tensors[n.output])
        return Program(board=self.acfg.name, schedule=self.plan.schedule, code=bytes(code),
                       consts=bytes(self.consts), consts_addr=consts_addr, arena_addr=arena_addr,
                       size=size, input=moved(self.places[first]),
                       output=moved(self.places[last.output]), output_shape=tuple(out_t.shape),
                       layers=self.layers, macs=macs, counts=dict(self.counts))


class _TablePacker:
    """The engine's descriptor, step and block table words as the load port takes them (the
    layouts of ``hw.engine.engine``), each rounded up to its target's word size; field offsets
    are looked up once."""

    def __init__(self, cfg, wb: dict):
        from hw.engine.engine import block_entry_layout, layer_desc_layout
        from host.compiler.pack import StepCodec
        self.cfg, self.wb = cfg, wb
        A = cfg.addr_width

        def fields(layout):
            return [(name, f.offset, f.width) for name, f in layout]
        self.desc_fields = fields(layer_desc_layout(A))
        self.step_codec = StepCodec(cfg)
        bl = block_entry_layout(A, cfg.post_lanes)
        self.base_off = bl["in_base"].offset
        self.bias_off, self.mult_off, self.shift_off = (bl[k].offset for k in ("bias", "mult", "shift"))
        self._steps: dict = {}

    def desc(self, d: dict) -> bytes:
        return put_fields(self.desc_fields, d).to_bytes(self.wb[Target.DESC], "little")

    def steps(self, rows: list) -> bytes:
        key = id(rows)                   # the layer compiler hands out one list per shape
        hit = self._steps.get(key)
        if hit is None or hit[0] is not rows:
            out = bytearray()
            for row in rows:
                w = self.step_codec.encode(row)
                out += w.to_bytes(self.wb[Target.STEPS], "little")
            hit = self._steps[key] = (rows, bytes(out))
        return hit[1]

    def blocks(self, blocks: list) -> bytes:
        cfg = self.cfg
        P, G, KB = cfg.post_lanes, cfg.groups, cfg.group_bits
        out = bytearray()
        for in_base, bias, mult, shift in blocks:
            bias, mult, shift = (np.asarray(v, dtype=np.int64).tolist() for v in (bias, mult, shift))
            for k in range(1 << KB):
                w = int(in_base) << self.base_off
                for p in range(P):
                    cc = k * P + p
                    if k >= G or cc >= cfg.cols:
                        continue
                    w |= (bias[cc] & 0xFFFFFFFF) << (self.bias_off + 32 * p)
                    w |= (mult[cc] & 0xFFFFFFFF) << (self.mult_off + 32 * p)
                    w |= (shift[cc] & 0x3F) << (self.shift_off + 6 * p)
                out += w.to_bytes(self.wb[Target.BLOCKS], "little")
        return bytes(out)


def _relocate(code: bytearray, const_loads: list, consts_addr: int, arena_addr: int) -> None:
    """Off-chip addresses were emitted relative to their region: the constants' LOADs (the
    instructions ``const_loads``) to the constants, every other one to the arena; add the
    regions' bases, in one pass over the program (on the address fields' bits)."""
    from hw.soc.isa import address_fields
    consts = set(const_loads)
    for k in range(len(code) // INSN_BYTES):
        word = int.from_bytes(code[k * INSN_BYTES:(k + 1) * INSN_BYTES], "little")
        fields = address_fields(word & 0xF)
        if not fields:
            continue
        base = consts_addr if k in consts else arena_addr
        for off, width in fields:
            mask = (1 << width) - 1
            v = (word >> off) & mask
            if v < ACT_BASE:                               # the activation buffer stays put
                v += base
                if v > mask:
                    raise ProgramError(f"address {v:#x} does not fit its {width}-bit field")
                word = word & ~(mask << off) | v << off
        code[k * INSN_BYTES:(k + 1) * INSN_BYTES] = word.to_bytes(INSN_BYTES, "little")


def check_operators(graph: Graph, acfg) -> None:
    """Refuse, in one line, a network whose pooling ``acfg`` has no hardware for (a
    configuration without the vector unit: ``hw.configs.AcceleratorConfig.vector``)."""
    if acfg.vector:
        return
    for n in graph.nodes:
        if isinstance(n, (Pool, GlobalAvgPool)):
            raise ProgramError(f"{n.name}: the {acfg.name} configuration has no vector unit, "
                               f"so no {'global average' if isinstance(n, GlobalAvgPool) else 'max'}"
                               f" pooling (its FPGA is too small); use a network without "
                               f"pooling or another board")


def compile_program(graph: Graph, acfg, plan: Plan | None = None, schedule: str = "layer",
                    until: str | None = None) -> Program:
    """Compile ``graph`` under ``plan`` (default: ``default_plan(graph, schedule)``) for the
    accelerator configuration ``acfg`` (``hw.configs.AcceleratorConfig``).  ``until``: stop
    after that layer (its output becomes the program's)."""
    check_operators(graph, acfg)
    plan = (plan or default_plan(graph, schedule)).check(graph)
    try:
        return _Compiler(graph, plan, acfg).compile(until)
    except UnsupportedModel as e:
        raise ProgramError(str(e)) from e
