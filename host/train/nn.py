"""A small float CNN trainer in NumPy: enough to train the digits networks, no framework.

Why NumPy and not PyTorch: the networks are tiny (a few convolutions on 8×8 or 32×32 grey
images, seconds to minutes on a CPU), the whole trainer is a few hundred lines that a reader can
check against the golden model, and a deep-learning framework would add a download of several
hundred MB to an install whose every other dependency is small.  Training is seeded and runs
single-threaded, so a run reproduces its weights.

A network is a list of layer specs (:data:`Spec`): ``("conv", out_channels, kernel, stride)``
(padding ``kernel // 2``, ReLU after it), ``("flatten",)`` and ``("fc", outputs)`` (ReLU after
every FC but the last).  The convolutions before the flatten form the one group that block
convolution cuts into blocks: with ``block=(bh, bw)`` every block of the input runs through them
as its own image, padded with zeros at its own borders, and the output blocks are stitched —
what ``--schedule block`` computes in the golden model (zero is the real value of the zero point
it pads with).  Training with ``block`` set is the fine-tuning of TCAD 2022.
"""
from __future__ import annotations

import numpy as np

Spec = tuple


def _windows(xp: np.ndarray, k: int, s: int, ho: int, wo: int) -> np.ndarray:
    """im2col: (N, C, Hp, Wp) → (N, C·k·k, Ho·Wo)."""
    v = np.lib.stride_tricks.sliding_window_view(xp, (k, k), axis=(2, 3))
    v = v[:, :, :s * (ho - 1) + 1:s, :s * (wo - 1) + 1:s]          # (N, C, Ho, Wo, k, k)
    n, c = xp.shape[:2]
    return np.ascontiguousarray(v.transpose(0, 1, 4, 5, 2, 3)).reshape(n, c * k * k, ho * wo)


def to_blocks(x: np.ndarray, block: tuple) -> np.ndarray:
    """(N, C, H, W) → (N·gh·gw, C, bh, bw): every block becomes an image of its own."""
    n, c, h, w = x.shape
    bh, bw = block
    if h % bh or w % bw:
        raise ValueError(f"{bh}x{bw} blocks do not tile a {h}x{w} map")
    gh, gw = h // bh, w // bw
    return x.reshape(n, c, gh, bh, gw, bw).transpose(0, 2, 4, 1, 3, 5).reshape(n * gh * gw, c, bh, bw)


def from_blocks(x: np.ndarray, grid: tuple) -> np.ndarray:
    """Inverse of :func:`to_blocks` for a ``grid`` of (gh, gw) blocks per image."""
    gh, gw = grid
    nb, c, bh, bw = x.shape
    n = nb // (gh * gw)
    return x.reshape(n, gh, gw, c, bh, bw).transpose(0, 3, 1, 4, 2, 5).reshape(n, c, gh * bh, gw * bw)


class Net:
    """Weights of a :data:`Spec` list for ``in_shape`` (C, H, W), He-initialised from ``seed``."""

    def __init__(self, specs: list, in_shape: tuple, seed: int = 0):
        rng = np.random.default_rng(seed)
        self.specs, self.in_shape = list(specs), tuple(in_shape)
        self.params: list = []          # per spec: {"w": …, "b": …} or {}
        c, h, w = in_shape
        flat = None
        for s in specs:
            if s[0] == "conv":
                _, o, k, st = s
                fan = c * k * k
                self.params.append({"w": rng.normal(0, np.sqrt(2 / fan), (o, c, k, k)).astype(np.float32),
                                    "b": np.zeros(o, np.float32)})
                c, h, w = o, (h - 1) // st + 1, (w - 1) // st + 1
            elif s[0] == "flatten":
                flat = c * h * w
                self.params.append({})
            elif s[0] == "fc":
                self.params.append({"w": rng.normal(0, np.sqrt(2 / flat), (s[1], flat)).astype(np.float32),
                                    "b": np.zeros(s[1], np.float32)})
                flat = s[1]
            else:
                raise ValueError(f"unknown layer spec {s!r}")

    def copy(self) -> "Net":
        new = Net.__new__(Net)
        new.specs, new.in_shape = list(self.specs), self.in_shape
        new.params = [{k: v.copy() for k, v in p.items()} for p in self.params]
        return new

    # ---- forward / backward ------------------------------------------------------------------
    def forward(self, x: np.ndarray, block: tuple | None = None, cache: list | None = None) -> np.ndarray:
        """Logits (N, classes) of images ``x`` (N, C, H, W); ``cache`` (a list) collects what
        :meth:`backward` needs."""
        grid = None
        if block is not None:
            grid = (x.shape[2] // block[0], x.shape[3] // block[1])
            x = to_blocks(x, block)
        last_fc = max(i for i, s in enumerate(self.specs) if s[0] == "fc")
        for i, (s, p) in enumerate(zip(self.specs, self.params)):
            if s[0] == "conv":
                _, o, k, st = s
                pad = k // 2
                n, c, h, w = x.shape
                ho, wo = (h + 2 * pad - k) // st + 1, (w + 2 * pad - k) // st + 1
                cols = _windows(np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad))), k, st, ho, wo)
                y = np.matmul(p["w"].reshape(o, -1), cols) + p["b"][None, :, None]
                y = np.maximum(y, 0).reshape(n, o, ho, wo)
                if cache is not None:
                    cache.append((cols, x.shape, y))
                x = y
            elif s[0] == "flatten":
                if grid is not None:
                    x = from_blocks(x, grid)
                if cache is not None:
                    cache.append(x.shape)
                x = x.reshape(x.shape[0], -1)
            else:
                y = x @ p["w"].T + p["b"]
                if i != last_fc:
                    y = np.maximum(y, 0)
                if cache is not None:
                    cache.append((x, y))
                x = y
        return x

    def backward(self, cache: list, dy: np.ndarray, block: tuple | None = None) -> list:
        """Gradients (one dict per spec, like ``params``) of the loss whose gradient with respect
        to the logits is ``dy``."""
        grads = [{} for _ in self.specs]
        last_fc = max(i for i, s in enumerate(self.specs) if s[0] == "fc")
        for i in reversed(range(len(self.specs))):
            s, p, c = self.specs[i], self.params[i], cache[i]
            if s[0] == "fc":
                x, y = c
                if i != last_fc:
                    dy = dy * (y > 0)
                grads[i] = {"w": dy.T @ x, "b": dy.sum(0)}
                dy = dy @ p["w"]
            elif s[0] == "flatten":
                dy = dy.reshape(c)
                if block is not None:
                    dy = to_blocks(dy, (c[2] // (self.in_shape[1] // block[0]),
                                        c[3] // (self.in_shape[2] // block[1])))
            else:
                cols, xshape, y = c
                _, o, k, st = s
                n, ci, h, w = xshape
                pad = k // 2
                ho, wo = y.shape[2:]
                g = (dy * (y > 0)).reshape(n, o, ho * wo)
                grads[i] = {"w": np.tensordot(g, cols, axes=([0, 2], [0, 2])).reshape(p["w"].shape),
                            "b": g.sum((0, 2))}
                if i == 0:
                    break
                dcols = np.matmul(p["w"].reshape(o, -1).T, g).reshape(n, ci, k, k, ho, wo)
                dxp = np.zeros((n, ci, h + 2 * pad, w + 2 * pad), np.float32)
                for ky in range(k):
                    for kx in range(k):
                        dxp[:, :, ky:ky + st * (ho - 1) + 1:st, kx:kx + st * (wo - 1) + 1:st] += dcols[:, :, ky, kx]
                dy = dxp[:, :, pad:pad + h, pad:pad + w]
        return grads

    def predict(self, x: np.ndarray, block: tuple | None = None, batch: int = 256) -> np.ndarray:
        return np.concatenate([self.forward(x[a:a + batch], block).argmax(1)
                               for a in range(0, len(x), batch)])


def cross_entropy(logits: np.ndarray, labels: np.ndarray) -> tuple:
    """(mean loss, its gradient with respect to the logits)."""
    z = logits - logits.max(1, keepdims=True)
    p = np.exp(z)
    p /= p.sum(1, keepdims=True)
    n = len(labels)
    loss = -np.log(p[np.arange(n), labels] + 1e-12).mean()
    p[np.arange(n), labels] -= 1
    return float(loss), (p / n).astype(np.float32)


def shift_augment(x: np.ndarray, rng, max_shift: int) -> np.ndarray:
    """Every image moved by a random whole-pixel offset in [−max_shift, max_shift]² (zero fill)."""
    if max_shift <= 0:
        return x
    n, c, h, w = x.shape
    m = max_shift
    xp = np.pad(x, ((0, 0), (0, 0), (m, m), (m, m)))
    dy, dx = rng.integers(0, 2 * m + 1, (2, n))
    out = np.empty_like(x)
    for i in range(n):
        out[i] = xp[i, :, dy[i]:dy[i] + h, dx[i]:dx[i] + w]
    return out


def train(net: Net, x: np.ndarray, y: np.ndarray, epochs: int, seed: int, lr: float = 2e-3,
          batch: int = 32, weight_decay: float = 1e-4, max_shift: int = 0,
          block: tuple | None = None, progress=None) -> Net:
    """Adam with a cosine learning-rate decay, seeded mini-batch order and augmentation."""
    rng = np.random.default_rng(seed)
    m = [{k: np.zeros_like(v) for k, v in p.items()} for p in net.params]
    v = [{k: np.zeros_like(a) for k, a in p.items()} for p in net.params]
    b1, b2, step = 0.9, 0.999, 0
    steps = epochs * -(-len(x) // batch)
    for _ in range(epochs):
        order = rng.permutation(len(x))
        for a in range(0, len(x), batch):
            idx = order[a:a + batch]
            xb = shift_augment(x[idx], rng, max_shift)
            cache: list = []
            _, dy = cross_entropy(net.forward(xb, block, cache), y[idx])
            grads = net.backward(cache, dy, block)
            rate = lr * 0.5 * (1 + np.cos(np.pi * step / steps))
            step += 1
            for p, g, mi, vi in zip(net.params, grads, m, v):
                for k in p:
                    gk = g[k] + (weight_decay * p[k] if k == "w" else 0)
                    mi[k] = b1 * mi[k] + (1 - b1) * gk
                    vi[k] = b2 * vi[k] + (1 - b2) * gk * gk
                    p[k] -= (rate * (mi[k] / (1 - b1 ** step))
                             / (np.sqrt(vi[k] / (1 - b2 ** step)) + 1e-8)).astype(np.float32)
        if progress is not None:
            progress()
    return net


# ---------------------------------------------------------------------------------------------
# ONNX
# ---------------------------------------------------------------------------------------------

def to_onnx_float(net: Net, name: str = "digits"):
    """The float network as an ONNX model (Conv/Relu/Flatten/Gemm, dynamic batch) for ONNX
    Runtime and ``quantize_static``.  Layers are named conv1…, flatten, fc1…."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    nodes, inits = [], []
    x = "input"
    count = {"conv": 0, "fc": 0}
    n_fc = sum(s[0] == "fc" for s in net.specs)
    for s, p in zip(net.specs, net.params):
        if s[0] == "flatten":
            nodes.append(helper.make_node("Flatten", [x], ["flatten"], name="flatten", axis=1))
            x = "flatten"
            continue
        count[s[0]] += 1
        lname = f"{s[0]}{count[s[0]]}" if not (s[0] == "fc" and n_fc == 1) else "fc"
        inits += [numpy_helper.from_array(p["w"], f"{lname}.weight"),
                  numpy_helper.from_array(p["b"], f"{lname}.bias")]
        ins = [x, f"{lname}.weight", f"{lname}.bias"]
        if s[0] == "conv":
            _, o, k, st = s
            nodes.append(helper.make_node("Conv", ins, [lname], name=lname, kernel_shape=[k, k],
                                          strides=[st, st], pads=[k // 2] * 4))
        else:
            nodes.append(helper.make_node("Gemm", ins, [lname], name=lname, transB=1))
        x = lname
        if s[0] == "conv" or count["fc"] < n_fc:
            nodes.append(helper.make_node("Relu", [x], [f"{lname}_relu"], name=f"{lname}_relu"))
            x = f"{lname}_relu"
    nodes[-1].output[0] = "logits"
    c, h, w = net.in_shape
    graph = helper.make_graph(
        nodes, name, [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", c, h, w])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", net.specs[-1][1]])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)],
                              producer_name="blockfuse host.train.nn")
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


def quantize_qdq(float_model, calibration: np.ndarray, path: str) -> None:
    """Quantise as a user would: ``onnxruntime.quantization.quantize_static``, QDQ, per-channel
    int8 weights, int8 activations, min/max calibration on ``calibration`` (N, C, H, W)."""
    import logging
    import os
    import tempfile

    import onnx
    from onnxruntime.quantization import (CalibrationDataReader, CalibrationMethod, QuantFormat,
                                          QuantType, quantize_static)

    class Reader(CalibrationDataReader):
        def __init__(self):
            self.it = iter(calibration[i:i + 64] for i in range(0, len(calibration), 64))

        def get_next(self):
            b = next(self.it, None)
            return None if b is None else {"input": b}

    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)        # quantize_static's "consider pre-processing" warnings
    with tempfile.TemporaryDirectory() as d:
        src = os.path.join(d, "float.onnx")
        onnx.save(float_model, src)
        try:
            quantize_static(src, path, Reader(), quant_format=QuantFormat.QDQ, per_channel=True,
                            activation_type=QuantType.QInt8, weight_type=QuantType.QInt8,
                            calibrate_method=CalibrationMethod.MinMax)
        finally:
            root.setLevel(level)
