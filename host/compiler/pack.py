"""A :class:`host.compiler.layer.LayerProgram` as the engine's memory words and back: the words
the load port writes (:func:`pack_program`, in the layouts of ``hw.engine.engine``), their size
(:func:`program_bytes`) and the output words unpacked into a map (:func:`unpack_output`).
"""
from __future__ import annotations

import numpy as np

from host.compiler.layer import LayerProgram, out_words
from hw.engine.engine import EngineConfig, block_entry_layout, layer_desc_layout, step_word_layout

__all__ = ["pack_program", "program_bytes", "unpack_output"]


def put_fields(fields, values: dict) -> int:
    """A word from ``values`` by ``fields``, a list of (name, bit offset, width) looked up
    once per layout (the packers' hot loop)."""
    w = 0
    for name, off, width in fields:
        w |= (int(values[name]) & ((1 << width) - 1)) << off
    return w


class StepCodec:
    """Step-table words (``hw.engine.engine.step_word_layout``) from a step's row entries
    ``(dy, dx, en, lane, delta)`` and back. The rows' elements are grouped by the word they
    read into the read ports (with as many ports as rows, row ``r`` reads through port ``r``);
    a step whose enabled rows read more words than there are ports is an error of the layer
    compiler."""

    def __init__(self, cfg: EngineConfig):
        self.cfg = cfg
        self.R, self.P = cfg.rows, cfg.read_ports
        lay = step_word_layout(cfg)
        self.size = lay.size
        pe, re = lay["ports"].shape.elem_shape, lay["rows"].shape.elem_shape
        self.port_off = [lay["ports"].offset + p * pe.size for p in range(self.P)]
        self.row_off = [lay["rows"].offset + r * re.size for r in range(self.R)]
        self.pf = [(n, f.offset, f.width) for n, f in pe]
        self.rf = [(n, f.offset, f.width) for n, f in re]

    def encode(self, row_entries) -> int:
        ports, word = [], 0
        for r, (dy, dx, en, lane, delta) in enumerate(row_entries):
            if self.P == self.R:
                p = r
                word |= put_fields(self.pf, dict(dy=dy, dx=dx, delta=delta)) << self.port_off[r]
            elif en:
                key = (dy, dx, delta)
                if key not in ports:
                    if len(ports) == self.P:
                        raise ValueError(f"a step reads more than {self.P} input words")
                    word |= put_fields(self.pf, dict(dy=dy, dx=dx, delta=delta)) \
                        << self.port_off[len(ports)]
                    ports.append(key)
                p = ports.index(key)
            else:
                p = 0
            word |= put_fields(self.rf, dict(en=en, port=p, lane=lane)) << self.row_off[r]
        return word

    def decode(self, word: int) -> list:
        def get(fields, base):
            return {name: (word >> (base + off)) & ((1 << width) - 1) for name, off, width in fields}
        ports = [get(self.pf, o) for o in self.port_off]
        out = []
        for r, o in enumerate(self.row_off):
            row = get(self.rf, o)
            if self.P < self.R and not row["en"]:
                out.append((0, 0, 0, 0, 0))            # a disabled row reads no port
                continue
            pt = ports[r if self.P == self.R else row["port"] % self.P]
            out.append((pt["dy"], pt["dx"], row["en"], row["lane"], pt["delta"]))
        return out


def _pack_fields(layout, values: dict) -> int:
    word = 0
    for name, f in layout:
        word |= (int(values[name]) & ((1 << f.width) - 1)) << f.offset
    return word


def pack_program(prog: LayerProgram, cfg: EngineConfig) -> dict:
    """Everything ``sim.tb_engine`` writes, as arrays of hexadecimal strings (npz-friendly)."""
    C, L = cfg.cols, cfg.lanes
    codec = StepCodec(cfg)
    bl = block_entry_layout(cfg.addr_width, cfg.post_lanes)
    desc_layout = layer_desc_layout(cfg.addr_width)

    def bytes_word(a) -> int:
        return int.from_bytes(np.asarray(a, dtype=np.int8).tobytes(), "little")

    in_hex = [format(bytes_word(wd), "x") for wd in prog.in_words]
    w_hex = [format(bytes_word(wd.reshape(-1)), "x") for wd in prog.w_words]   # row-major rows
    step_hex = [format(codec.encode(row), "x") for row in prog.step_words]
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


def program_bytes(prog: LayerProgram, cfg: EngineConfig) -> tuple[int, int]:
    """(bytes written into the engine's memories, bytes read back) for one run of ``prog``:
    input map, weights, step table and block table in; the output words out — what a DMA
    would move between off-chip memory and the engine."""
    step_bytes = -(-step_word_layout(cfg).size // 8)
    blk_bytes = -(-block_entry_layout(cfg.addr_width, cfg.post_lanes).size // 8)
    loaded = (len(prog.in_words) * cfg.lanes + len(prog.w_words) * cfg.rows * cfg.cols
              + len(prog.step_words) * step_bytes + len(prog.blocks) * (1 << cfg.group_bits) * blk_bytes)
    return loaded, out_words(prog) * cfg.cols


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
