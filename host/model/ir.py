"""Network IR: a graph of quantised int8 operators with shape inference and per-layer costs.

Tensors are CHW int8 maps (or flat int8 vectors after ``Flatten``/``FC``) each with one scale and
zero point.  Nodes are kept in topological order.  The IR is what the ONNX importer and the model
zoo produce, and what the golden model, the scheduler and the engine driver consume.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from host.errors import UserError
from host.model.quant import quantize_multipliers


class UnsupportedModel(UserError):
    """A model, operator, attribute or shape blockfuse cannot run. Its text is one line for users."""


@dataclass
class Tensor:
    name: str
    shape: tuple            # (C, H, W) for maps, (N,) for vectors
    scale: float
    zero_point: int

    @property
    def size(self) -> int:
        return int(np.prod(self.shape))

    @property
    def is_map(self) -> bool:
        return len(self.shape) == 3


@dataclass
class Node:
    """Base class. ``inputs``/``output`` are tensor names; subclasses add attributes."""
    name: str
    inputs: list
    output: str

    op = "node"
    spatial = False          # works on windows of a CHW map (can be tiled into blocks)

    def infer(self, ins: list[Tensor]) -> tuple:
        raise NotImplementedError

    def macs(self, ins: list[Tensor], out: Tensor) -> int:
        return 0

    @property
    def params(self) -> int:
        return 0

    def window(self) -> tuple:
        """(kernel_h, kernel_w, stride_h, stride_w, pad_top, pad_left, pad_bottom, pad_right)."""
        return (1, 1, 1, 1, 0, 0, 0, 0)


def _conv_out(size: int, k: int, s: int, p0: int, p1: int) -> int:
    return (size + p0 + p1 - k) // s + 1


@dataclass
class Conv(Node):
    """2-D convolution, int8 weights OIHW (I = Cin/groups), int32 bias, per-channel requant.

    ``bias`` is on the scale ``s_x * s_w[c]`` (as in ONNX QDQ); the input zero point is folded in
    by :meth:`folded_bias`.  ``lo``/``hi`` are the output clamp bounds (ReLU/ReLU6/Clip).
    """
    weight: np.ndarray = None
    bias: np.ndarray = None
    w_scale: np.ndarray = None
    stride: tuple = (1, 1)
    pads: tuple = (0, 0, 0, 0)      # top, left, bottom, right
    groups: int = 1
    lo: int = -128
    hi: int = 127
    mult: np.ndarray = None          # filled by Graph.finalize
    shift: np.ndarray = None

    op = "conv"
    spatial = True

    @property
    def kernel(self) -> tuple:
        return self.weight.shape[2], self.weight.shape[3]

    @property
    def out_channels(self) -> int:
        return self.weight.shape[0]

    @property
    def depthwise(self) -> bool:
        return self.groups > 1 and self.weight.shape[1] == 1

    def window(self):
        kh, kw = self.kernel
        return (kh, kw, *self.stride, *self.pads)

    def infer(self, ins):
        c, h, w = _need_map(self, ins[0])
        o, i, kh, kw = self.weight.shape
        if c % self.groups or o % self.groups or c // self.groups != i:
            raise UnsupportedModel(f"{self.name}: Conv weight {self.weight.shape} does not fit "
                                   f"{c} input channels in {self.groups} groups")
        t, l, b, r = self.pads
        ho, wo = _conv_out(h, kh, self.stride[0], t, b), _conv_out(w, kw, self.stride[1], l, r)
        if ho < 1 or wo < 1:
            raise UnsupportedModel(f"{self.name}: Conv output would be empty for input {h}x{w}")
        return (o, ho, wo)

    def macs(self, ins, out):
        o, i, kh, kw = self.weight.shape
        return int(out.size * i * kh * kw)

    @property
    def params(self):
        return int(self.weight.size + self.bias.size)

    def folded_bias(self, x_zero_point: int) -> np.ndarray:
        """bias' = bias − zx·Σw, so padding with the zero point is exact (`docs/numerics.md`)."""
        wsum = self.weight.reshape(self.weight.shape[0], -1).sum(axis=1, dtype=np.int64)
        return self.bias.astype(np.int64) - int(x_zero_point) * wsum


@dataclass
class FC(Node):
    """Fully connected layer on a flat vector: weight (O, I) int8, bias int32, per-channel requant."""
    weight: np.ndarray = None
    bias: np.ndarray = None
    w_scale: np.ndarray = None
    lo: int = -128
    hi: int = 127
    mult: np.ndarray = None
    shift: np.ndarray = None

    op = "fc"

    def infer(self, ins):
        if len(ins[0].shape) != 1 or ins[0].shape[0] != self.weight.shape[1]:
            raise UnsupportedModel(f"{self.name}: fully connected layer expects {self.weight.shape[1]} "
                                   f"inputs, got shape {ins[0].shape}")
        return (self.weight.shape[0],)

    def macs(self, ins, out):
        return int(self.weight.size)

    @property
    def params(self):
        return int(self.weight.size + self.bias.size)

    def folded_bias(self, x_zero_point: int) -> np.ndarray:
        return self.bias.astype(np.int64) - int(x_zero_point) * self.weight.sum(axis=1, dtype=np.int64)


@dataclass
class Pool(Node):
    """Max or average pooling over a window. Padding: −128 for max.  The average excludes it
    from the count when ``count_include_pad`` is false (ONNX default); otherwise it counts the
    declared padding but not the ``ceil_extra`` rows/columns that ``ceil_mode`` adds at the
    bottom/right (they are part of ``pads``), as ONNX Runtime and PyTorch count."""
    kind: str = "max"               # "max" | "avg"
    kernel: tuple = (2, 2)
    stride: tuple = (2, 2)
    pads: tuple = (0, 0, 0, 0)
    count_include_pad: bool = False
    ceil_extra: tuple = (0, 0)       # bottom, right: padding ceil_mode adds (never counted)
    mult: int = 0                    # avg only: rescale s_in/(s_out·n) handled in golden
    shift: int = 0

    spatial = True

    @property
    def op(self):
        return f"{self.kind}pool"

    def window(self):
        return (*self.kernel, *self.stride, *self.pads)

    def infer(self, ins):
        c, h, w = _need_map(self, ins[0])
        t, l, b, r = self.pads
        ho = _conv_out(h, self.kernel[0], self.stride[0], t, b)
        wo = _conv_out(w, self.kernel[1], self.stride[1], l, r)
        if ho < 1 or wo < 1:
            raise UnsupportedModel(f"{self.name}: pooling output would be empty for input {h}x{w}")
        return (c, ho, wo)

    def macs(self, ins, out):
        return 0


@dataclass
class GlobalAvgPool(Node):
    """Mean over H and W, output (C, 1, 1)."""
    op = "gap"

    def infer(self, ins):
        c, h, w = _need_map(self, ins[0])
        return (c, 1, 1)


@dataclass
class GlobalMaxPool(Node):
    """Maximum over H and W, output (C, 1, 1); exact on int8 (same scale in and out)."""
    op = "gmp"
    infer = GlobalAvgPool.infer


@dataclass
class ChannelSlice(Node):
    """Channels ``start`` to ``stop`` (exclusive) of a map, same scale: a channel split (ONNX
    ``Split``/``Slice`` on axis 1, PyTorch ``chunk``).  In hardware an address offset."""
    start: int = 0
    stop: int = 0
    op = "slice"
    spatial = True

    def infer(self, ins):
        c, h, w = _need_map(self, ins[0])
        if not 0 <= self.start < self.stop <= c:
            raise UnsupportedModel(f"{self.name}: channel range {self.start}..{self.stop} does not "
                                   f"fit {c} channels")
        return (self.stop - self.start, h, w)


@dataclass
class Add(Node):
    """Element-wise residual add of two maps, each rescaled to the output scale; optional ReLU."""
    lo: int = -128
    hi: int = 127
    op = "add"
    spatial = True

    def infer(self, ins):
        if ins[0].shape != ins[1].shape:
            raise UnsupportedModel(f"{self.name}: Add of different shapes {ins[0].shape} and {ins[1].shape}")
        return ins[0].shape


@dataclass
class Concat(Node):
    """Channel concatenation of maps with equal H and W, each rescaled to the output scale."""
    op = "concat"
    spatial = True

    def infer(self, ins):
        shapes = [_need_map(self, t) for t in ins]
        if len({s[1:] for s in shapes}) != 1:
            raise UnsupportedModel(f"{self.name}: Concat of maps of different sizes {shapes}")
        return (sum(s[0] for s in shapes), *shapes[0][1:])


@dataclass
class Permute(Node):
    """Channel permutation: output channel i is input channel ``perm[i]`` (shuffle / interleave)."""
    perm: np.ndarray = None
    op = "permute"
    spatial = True

    def infer(self, ins):
        c = _need_map(self, ins[0])[0]
        if sorted(np.asarray(self.perm).tolist()) != list(range(c)):
            raise UnsupportedModel(f"{self.name}: channel permutation is not a permutation of {c} channels")
        return ins[0].shape


@dataclass
class Clamp(Node):
    """Stand-alone ReLU/Clip on int8 (same scale in and out): clamp to [lo, hi]."""
    lo: int = -128
    hi: int = 127
    op = "clamp"
    spatial = True

    def infer(self, ins):
        return ins[0].shape


@dataclass
class Flatten(Node):
    """CHW map → flat vector in C-major order (as ONNX Flatten of NCHW)."""
    op = "flatten"

    def infer(self, ins):
        return (ins[0].size,)


def shuffle_perm(channels: int, groups: int) -> np.ndarray:
    """ShuffleNet channel shuffle: reshape (g, c/g) → transpose → flatten, as a permutation."""
    return np.arange(channels).reshape(groups, channels // groups).T.ravel()


def _need_map(node: Node, t: Tensor) -> tuple:
    if not t.is_map:
        raise UnsupportedModel(f"{node.name}: {node.op} needs a CHW feature map, got shape {t.shape}")
    return t.shape


@dataclass
class Graph:
    """A quantised network: one input tensor, nodes in topological order, one output tensor."""
    name: str
    input: str
    output: str
    tensors: dict = field(default_factory=dict)    # name -> Tensor
    nodes: list = field(default_factory=list)

    # ---- construction -------------------------------------------------------------------
    def finalize(self) -> "Graph":
        """Check topological order, infer every shape, derive requantisation multipliers."""
        known = {self.input}
        for n in self.nodes:
            for i in n.inputs:
                if i not in known:
                    raise UnsupportedModel(f"{n.name}: input {i!r} is not produced before it")
            ins = [self.tensors[i] for i in n.inputs]
            shape = tuple(int(s) for s in n.infer(ins))
            out = self.tensors[n.output]
            out.shape = shape
            if isinstance(n, (Conv, FC)):
                real = ins[0].scale * np.asarray(n.w_scale, dtype=np.float64) / out.scale
                n.mult, n.shift = quantize_multipliers(real)
            elif isinstance(n, (Pool, GlobalAvgPool, GlobalMaxPool, ChannelSlice, Add, Concat, Clamp,
                                Permute, Flatten)):
                pass
            known.add(n.output)
        if self.output not in known:
            raise UnsupportedModel(f"graph output {self.output!r} is never produced")
        return self

    # ---- queries ------------------------------------------------------------------------
    def producer(self, tensor: str):
        for n in self.nodes:
            if n.output == tensor:
                return n
        return None

    def consumers(self, tensor: str) -> list:
        return [n for n in self.nodes if tensor in n.inputs]

    def node(self, name: str) -> Node:
        for n in self.nodes:
            if n.name == name:
                return n
        raise KeyError(name)

    def layer_stats(self) -> list[dict]:
        rows = []
        for n in self.nodes:
            ins = [self.tensors[i] for i in n.inputs]
            out = self.tensors[n.output]
            rows.append({
                "name": n.name, "op": n.op,
                "in_shape": [list(t.shape) for t in ins], "out_shape": list(out.shape),
                "macs": n.macs(ins, out), "params": n.params,
                "in_bytes": sum(t.size for t in ins), "out_bytes": out.size,
                "weight_bytes": int(n.weight.size) if getattr(n, "weight", None) is not None else 0,
            })
        return rows

    @property
    def total_macs(self) -> int:
        return sum(r["macs"] for r in self.layer_stats())

    @property
    def total_params(self) -> int:
        return sum(n.params for n in self.nodes)

    @property
    def input_tensor(self) -> Tensor:
        return self.tensors[self.input]

    @property
    def output_tensor(self) -> Tensor:
        return self.tensors[self.output]
