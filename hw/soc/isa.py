"""The network program's instruction set: one 256-bit word per instruction.

The host compiler (``host.compiler.program``) packs these words with the classes below, the
program emulator (``host.runtime.emulator``) decodes and executes them, and the on-chip
controller will fetch and dispatch them: one definition, no second copy of any width.  The
semantics of every instruction, with the loop nest its unit runs and a worked example, are in
``docs/isa.md``.

Two units execute the program: the **DMA unit** (everything that touches off-chip memory:
``LOAD``, ``STORE``, ``POOL``, ``GAP``) and the **engine** (``CONV``).  Instructions issue in
order; a DMA-unit instruction retires before the next one issues, a CONV issues once the
engine has finished the run before it and the program goes on while it runs.  A DMA-unit
instruction whose ``sync.engine`` bit is set waits until the engine is idle: the compiler sets
it wherever the instruction touches on-chip words the engine's current run uses
(:func:`dma_words`, :func:`clash`; ``docs/isa.md``, "Synchronisation").

Off-chip addresses are byte addresses; maps are stored channel-blocked: word ``(cb, y, x)`` of
``lanes`` bytes (channels ``cb·lanes …``) at ``base + ((cb·H + y)·W + x)·lanes``.
"""
import functools

from amaranth.hdl import Shape, signed, unsigned
from amaranth.lib import data, enum

__all__ = ["WORD_BITS", "ACT_BASE", "Op", "Target", "Sync", "DmaArgs", "PoolArgs", "GapArgs", "Insn",
           "WORD_ALIGN", "target_word_bytes", "act_wide_words", "wide_transfer", "pack", "unpack",
           "decode_fields", "dma_words", "run_desc_words", "clash"]

#: bits per instruction word (the controller fetches 32 bytes per instruction)
WORD_BITS = 256

#: byte address of the activation buffer (``hw.soc.activation_buffer``): addresses from here
#: up are on chip, all others off chip
ACT_BASE = 1 << 31


class Op(enum.Enum, shape=4):
    """Opcodes; 6–15 are unused (they halt with a fault when the controller meets them)."""
    HALT = 0   #: end of the program: DONE rises once both units are idle
    LOAD = 1   #: DMA: off-chip memory → an engine memory (``DmaArgs``)
    STORE = 2  #: DMA: the engine's output memory → off-chip memory (``DmaArgs``)
    CONV = 3   #: engine: one run of the loaded descriptor (no arguments)
    POOL = 4   #: DMA unit: max pooling, off-chip map → off-chip map (``PoolArgs``)
    GAP = 5    #: DMA unit: global average pooling with requantisation (``GapArgs``)


class Target(enum.Enum, shape=3):
    """On-chip memories a ``LOAD`` writes (the engine's load-port ``sel`` for 0–3) or a
    ``STORE`` reads."""
    MAP = 0      #: the engine's input map: ``lanes`` bytes per word
    WEIGHTS = 1  #: the engine's weights: ``rows × cols`` bytes per word (row-major)
    STEPS = 2    #: the engine's step table: ``rows`` step entries per word
    BLOCKS = 3   #: the engine's block table: one block entry per word
    DESC = 4     #: the engine's layer descriptor register (one word)
    OUT = 5      #: the engine's output memory (``STORE`` only): ``cols`` bytes per word


class Sync(data.Struct):
    """Wait, before issuing, until the other unit has retired everything issued earlier."""
    #: (engine instructions) wait for the DMA unit; always true of the controller, whose DMA
    #: instructions retire before the next issues (kept for a DMA queue that runs ahead)
    dma: 1
    engine: 1   #: (DMA unit instructions) wait for the engine


class DmaArgs(data.Struct):
    """A 3-D strided transfer of whole words: for ``i2 < n2, i1 < n1, i0 < n0`` the word at
    off-chip ``ext + i2·s2 + i1·s1 + i0·word`` and on-chip word ``onchip + (i2·n1 + i1)·n0 +
    i0`` (``word`` = the target's word size, :func:`target_word_bytes`).  A LOAD with
    ``dense`` ≠ 0 reads ``dense`` memory words (of 4 bytes) per target word (``word`` = 4 ·
    dense) and fills the rest of the target word with zeros: a map stored with fewer lanes
    than the engine's (a 3-channel image in 4-byte words, not 16-byte ones)."""
    target: Target
    onchip: 16          #: first on-chip word
    ext: 32             #: off-chip byte address of the first word
    n0: 16              #: words per row (contiguous off-chip)
    n1: 16              #: rows per plane
    s1: 24              #: bytes between rows
    n2: 16              #: planes
    s2: 32              #: bytes between planes
    dense: 4            #: (LOAD) memory words read per target word, the rest zero (0: all)


class PoolArgs(data.Struct):
    """Max pooling of ``nb`` channel blocks: output word ``(b, oy, ox)`` = the lane-wise maximum
    over ``ky < kh, kx < kw`` of input word ``(b, oy·sh − pt + ky, ox·sw − pl + kx)`` of the
    ``h × w`` input window, −128 outside it.  Strides in words of ``lanes`` bytes."""
    src: 32             #: off-chip byte address of the window's first word
    dst: 32             #: off-chip byte address of the output's first word
    nb: 12              #: channel blocks
    h: 12
    w: 12               #: input window height and width
    ho: 12
    wo: 12              #: output height and width
    src_row: 16
    src_plane: 24       #: input words between rows / channel blocks
    dst_row: 16
    dst_plane: 24       #: output words between rows / channel blocks
    kh: 4
    kw: 4
    sh: 4
    sw: 4
    pt: 4
    pl: 4


class GapArgs(data.Struct):
    """Global average pooling of ``nb`` channel blocks of ``hw`` contiguous words each: per
    lane, ``clamp(round((Σ(x − zp_in) << headroom) · mult · 2^(shift − 31)) + zp_out)`` —
    the golden model's average with TFLite's fixed-point multiplier; the result word of block
    ``b`` at ``dst + b·lanes``."""
    src: 32
    dst: 32
    nb: 12
    hw: 24              #: words (pixels) per channel block
    zp_in: signed(8)
    zp_out: signed(8)
    mult: unsigned(31)  #: fixed-point multiplier (Q31)
    shift: signed(6)    #: exponent of the multiplier (TFLite's: left shift when positive)
    headroom: 5         #: left shift of the sum before the multiply


class Insn(data.Struct):
    """One instruction: opcode, sync bits, and the arguments of its kind."""
    op: Op
    sync: Sync
    pad: 2
    args: data.UnionLayout({"dma": DmaArgs, "pool": PoolArgs, "gap": GapArgs,
                            "raw": WORD_BITS - 8})


assert Insn.as_shape().size == WORD_BITS


#: the DMA moves whole 32-bit memory words: every target word is a multiple of this many bytes
#: (and every off-chip address the compiler emits is aligned to it)
WORD_ALIGN = 4


def target_word_bytes(engine) -> dict:
    """Bytes per word of each on-chip target of an engine configuration (``EngineConfig``):
    the load port's field widths rounded up to bytes, then to :data:`WORD_ALIGN`."""
    from hw.engine.engine import block_entry_layout, layer_desc_layout, step_word_layout
    A = engine.addr_width

    def aligned(bits):
        return -(-bits // (8 * WORD_ALIGN)) * WORD_ALIGN
    return {
        Target.MAP: aligned(engine.lanes * 8),
        Target.WEIGHTS: aligned(engine.rows * engine.cols * 8),
        Target.STEPS: aligned(step_word_layout(engine).size),
        Target.BLOCKS: aligned(block_entry_layout(A, engine.post_lanes).size),
        Target.DESC: aligned(layer_desc_layout(A).size),
        Target.OUT: aligned(engine.cols * 8),
    }


def act_wide_words(engine, act_bytes: int, mem_width: int = 32) -> int:
    """Memory words (of ``mem_width`` bits) per row of the activation buffer's wide port: a map
    word of ``engine``, when the configuration has a buffer and its map and output words are
    the same whole number (a power of 2, above 1) of memory words; 1 (no wide port) otherwise."""
    wb = target_word_bytes(engine)
    n = wb[Target.MAP] * 8 // mem_width
    if (not act_bytes or wb[Target.MAP] != wb[Target.OUT] or wb[Target.MAP] * 8 % mem_width
            or n < 2 or n & (n - 1) or act_bytes * 8 // mem_width % n):
        return 1
    return n


def wide_transfer(wide: int, op: Op, args: dict) -> bool:
    """Whether the controller moves a LOAD/STORE through the activation buffer's wide port of
    ``wide`` memory words (:func:`act_wide_words`): a LOAD of the map memory from the buffer or
    a STORE of the output memory into it, its address and strides whole map words."""
    if wide == 1 or args["ext"] < ACT_BASE:
        return False
    want = {Op.LOAD: Target.MAP, Op.STORE: Target.OUT}.get(op)
    step = WORD_ALIGN * wide
    return (Target(args["target"]) == want and args["ext"] % step == 0
            and args["s1"] % step == 0 and args["s2"] % step == 0)


_ARG = {Op.LOAD: "dma", Op.STORE: "dma", Op.POOL: "pool", Op.GAP: "gap"}


_FIELDS: dict = {}


def _field_list(layout) -> list:
    """(name, offset, width, enum class or None, signed) of a struct layout's fields, once."""
    key = id(layout)
    hit = _FIELDS.get(key)
    if hit is None or hit[0] is not layout:
        rows = []
        for name, f in layout:
            cls = f.shape if isinstance(f.shape, type) and issubclass(f.shape, enum.Enum) else None
            rows.append((name, f.offset, f.width, cls, Shape.cast(f.shape).signed))
        hit = _FIELDS[key] = (layout, rows)
    return hit[1]


def decode_fields(layout, value: int) -> dict:
    """Decode ``value`` by a struct layout's fields (plain ints; signed fields sign-extended,
    enums as their members)."""
    out = {}
    for name, off, width, cls, signed_ in _field_list(layout):
        v = (value >> off) & ((1 << width) - 1)
        if cls is not None:
            v = cls(v)
        elif signed_ and v >> (width - 1):
            v -= 1 << width
        out[name] = v
    return out


def _encode(layout, values: dict) -> int:
    """Pack ``values`` by a struct layout's fields; a value out of its field's range raises."""
    fields = _field_list(layout)
    if len(values) > len(fields) or not set(values) <= {f[0] for f in fields}:
        unknown = set(values) - {f[0] for f in fields}
        raise ValueError(f"no field {sorted(unknown)[0]!r}")
    word = 0
    for name, off, width, cls, signed_ in fields:
        v = values.get(name, 0)
        v = cls(v).value if cls is not None else int(v)
        lo, hi = (-(1 << width - 1), 1 << width - 1) if signed_ else (0, 1 << width)
        if not lo <= v < hi:
            raise ValueError(f"{name}={v} does not fit its {width}-bit field")
        word |= (v & ((1 << width) - 1)) << off
    return word


_LAYOUTS = {}


def _cast(struct):
    if struct not in _LAYOUTS:
        _LAYOUTS[struct] = data.Layout.cast(struct)
    return _LAYOUTS[struct]


def pack(op: Op, sync: dict | None = None, **args) -> bytes:
    """One instruction word as 32 little-endian bytes."""
    word = op.value | _encode(_cast(Sync), sync or {}) << 4
    if args:
        word |= _encode(_cast(_args_layout(op)), args) << 8
    return word.to_bytes(WORD_BITS // 8, "little")


def _args_layout(op: Op):
    return {"dma": DmaArgs, "pool": PoolArgs, "gap": GapArgs}[_ARG[op]]


def unpack(word: bytes) -> tuple:
    """(op, sync dict, argument dict) of one instruction word; an unused opcode raises."""
    v = int.from_bytes(word, "little")
    op = Op(v & 0xF)
    sync = decode_fields(_cast(Sync), (v >> 4) & 0x3)
    args = decode_fields(_cast(_args_layout(op)), v >> 8) if op in _ARG else {}
    return op, sync, args


@functools.lru_cache(maxsize=None)
def address_fields(opcode: int) -> tuple:
    """(bit offset in the instruction word, width) of the off-chip address fields (``ext``,
    ``src``, ``dst``) of the instruction with ``opcode``; () for one without."""
    try:
        op = Op(opcode)
    except ValueError:
        return ()
    if op not in _ARG:
        return ()
    return tuple((8 + off, width) for name, off, width, _, _ in
                 _field_list(_cast(_args_layout(op))) if name in ("ext", "src", "dst"))


def dma_words(op: Op, args: dict, desc_buffers: int = 2) -> dict:
    """The on-chip words a DMA-unit instruction touches, ``{target: (first, last + 1)}``: what
    it must not share with the engine's current run (``docs/isa.md``, "Synchronisation").
    A LOAD of the descriptor touches nothing the engine reads when the controller has two
    descriptor registers (it copies the loaded one when a CONV starts); with one
    (``desc_buffers=1``) it loads the register the engine reads: word 0 of :data:`Target.DESC`,
    which every run uses (:func:`run_desc_words`).  POOL and GAP touch off-chip memory only."""
    if op in (Op.LOAD, Op.STORE):
        t = Target(args["target"])
        if t == Target.DESC:
            return run_desc_words(desc_buffers)
        return {t: (args["onchip"], args["onchip"] + args["n0"] * args["n1"] * args["n2"])}
    return {}


def run_desc_words(desc_buffers: int) -> dict:
    """The descriptor words an engine run uses, as :func:`dma_words` counts them: none with two
    descriptor registers (the run has its own copy), else the one register."""
    return {} if desc_buffers > 1 else {Target.DESC: (0, 1)}


def clash(a: dict, b: dict) -> list:
    """The targets on which two footprints (``{target: (first, last + 1)}``) overlap."""
    return [t for t, (lo, hi) in a.items()
            if t in b and lo < b[t][1] and b[t][0] < hi and lo < hi and b[t][0] < b[t][1]]
