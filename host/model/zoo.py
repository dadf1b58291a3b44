"""Model zoo: well-known CNNs as quantised :class:`host.model.ir.Graph` objects with deterministic int8
weights (seeded, not trained), at their published input size or at any reduced size for tests —
and ``digits``, a trained network (see below).

``names()`` lists the networks, ``get(name, resolution)`` returns a calibrated graph (cached in
memory and on disk), ``info(name, resolution)`` returns MACs, parameters and per-layer entries
from shape inference alone (no weights drawn, no golden run), ``build(...)`` builds uncached.

Counting convention (as ``host.model.ir``): MACs of Conv and FC layers only (pooling, add, concat are
0); parameters = weights + biases of Conv and FC (no batch-norm: it is folded into the biases).

Approximations, each stated where it is made:

* ReLU applied after a concatenation is applied to each concatenated branch instead (identical
  function; each branch gets its own int8 range).
* Average pooling excludes padding from its count (ONNX default; PyTorch's ShuffleNet counts it).
* ``igcv`` is IGCV1-style (no published anchor figures; see :func:`igcv`).
* ``digits`` is *trained*: its graph is the shipped QDQ model ``host/model/trained/digits.onnx``
  (written by ``python -m host.train.digits``; scikit-learn's 8×8 digits, see
  ``docs/accuracy.md``), so it exists at 8×8 only.  ``digits_random`` is the same architecture
  with seeded random weights, at any size (shape tests, the scheduler's reduced plans).

Disk cache: ``$BLOCKFUSE_ZOO_CACHE`` (default ``~/.cache/blockfuse/zoo``; set it to ``off`` to
disable) holds one ``.npz`` per (network, resolution, hash of the code that builds and
calibrates it), written atomically so parallel test workers may share it.
"""
from __future__ import annotations

import copy
import dataclasses
import hashlib
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from host.model import ir
from host.model.builder import W_STD, GraphBuilder
from host.errors import UserError
from host.model.ir import Graph, Tensor


class UnknownModel(UserError):
    """A zoo name that does not exist (one line, lists the valid names)."""


# ---------------------------------------------------------------------------------------------
# Builders: real (chunked, float32 draw: VGG16's 103 M-weight FC layer must not need GBs) and
# shape-only (for MAC/parameter counts without drawing any weights)
# ---------------------------------------------------------------------------------------------

class ZooBuilder(GraphBuilder):
    """:class:`GraphBuilder` drawing weights output-channel chunk by chunk in float32."""

    CHUNK = 1 << 22          # values drawn per step

    def _weights(self, shape, fan_in):
        out = shape[0]
        w = np.empty(shape, dtype=np.int8)
        flat = w.reshape(out, -1)
        step = max(1, self.CHUNK // flat.shape[1])
        for a in range(0, out, step):
            z = self.rng.standard_normal((min(step, out - a), flat.shape[1]), dtype=np.float32)
            z *= W_STD
            np.rint(z, out=z)
            np.clip(z, -127, 127, out=z)
            flat[a:a + z.shape[0]] = z
        w_scale = np.full(out, np.sqrt(2.0 / fan_in) / W_STD) * self.rng.uniform(0.8, 1.2, out)
        bias = np.rint(self.rng.normal(0, 0.2 * np.sqrt(fan_in) * 30 * W_STD, out)).astype(np.int32)
        return w, w_scale, bias


class ShapeBuilder(GraphBuilder):
    """:class:`GraphBuilder` whose weights are read-only zero views: shapes, MACs and parameter
    counts are exact, nothing is drawn or allocated.  Not runnable."""

    def _weights(self, shape, fan_in):
        return (np.broadcast_to(np.int8(0), shape), np.full(shape[0], 1e-3),
                np.broadcast_to(np.int32(0), (shape[0],)))


# ---------------------------------------------------------------------------------------------
# Networks.  Each takes a builder whose input is already set and returns nothing (the last
# node added is the output).
# ---------------------------------------------------------------------------------------------

def vgg16(b: GraphBuilder) -> None:
    """VGG16 (configuration D): 13 3×3 convolutions (pad 1) with ReLU, 5 2×2 max-pools, FC
    4096-4096-1000.  At a reduced input size the first FC takes 512·(H/32)·(W/32) inputs."""
    x = b.input
    cfg = [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"]
    stage, idx = 1, 1
    for v in cfg:
        if v == "M":
            x = b.maxpool(x, 2, name=f"pool{stage}")
            stage, idx = stage + 1, 1
        else:
            x = b.conv(x, v, 3, name=f"conv{stage}_{idx}")
            idx += 1
    x = b.flatten(x, name="flatten")
    x = b.fc(x, 4096, act="relu", name="fc6")
    x = b.fc(x, 4096, act="relu", name="fc7")
    b.fc(x, 1000, act=None, name="fc8")


def mobilenet_v1(b: GraphBuilder) -> None:
    """MobileNetV1 1.0: 3×3 s2 conv to 32, 13 depthwise-separable blocks (depthwise 3×3 + ReLU,
    pointwise 1×1 + ReLU), global average pool, FC 1000."""
    x = b.conv(b.input, 32, 3, stride=2, name="conv1")
    cfg = [(64, 1), (128, 2), (128, 1), (256, 2), (256, 1), (512, 2),
           (512, 1), (512, 1), (512, 1), (512, 1), (512, 1), (1024, 2), (1024, 1)]
    for i, (out, s) in enumerate(cfg, start=2):
        c = b.shape(x)[0]
        x = b.conv(x, c, 3, stride=s, groups=c, name=f"conv{i}_dw")
        x = b.conv(x, out, 1, name=f"conv{i}_pw")
    x = b.gap(x, name="gap")
    x = b.flatten(x, name="flatten")
    b.fc(x, 1000, act=None, name="fc")


def shufflenet_v1(b: GraphBuilder, groups: int = 3) -> None:
    """ShuffleNetV1 1×, g=3: 3×3 s2 conv to 24, 3×3 s2 max-pool, stages of 4/8/4 units with
    240/480/960 channels, global average pool, FC 1000.

    Unit: group 1×1 conv (bottleneck = out/4, ReLU) → channel shuffle → depthwise 3×3 (no ReLU)
    → group 1×1 conv.  Stride 1: residual add, ReLU.  Stride 2 (first unit of a stage): the
    main branch makes ``out − in`` channels and is concatenated with a 3×3 s2 average pool of
    the input, ReLU (applied to the main branch before the concat; the pooled branch is ≥ 0).
    The first 1×1 conv of stage 2 is not grouped (24 input channels), as in the paper.
    """
    g = groups
    x = b.conv(b.input, 24, 3, stride=2, name="conv1")
    x = b.maxpool(x, 3, stride=2, pad=1, name="pool1")
    for stage, (out, reps) in enumerate([(240, 4), (480, 8), (960, 4)], start=2):
        mid = out // 4
        for u in range(1, reps + 1):
            p = f"s{stage}u{u}"
            cin = b.shape(x)[0]
            stride = 2 if u == 1 else 1
            g1 = 1 if (stage == 2 and u == 1) else g
            y = b.conv(x, mid, 1, groups=g1, name=f"{p}_gconv1")
            y = b.shuffle(y, g, name=f"{p}_shuffle")
            y = b.conv(y, mid, 3, stride=stride, groups=mid, act=None, name=f"{p}_dw")
            if stride == 2:
                y = b.conv(y, out - cin, 1, groups=g, act="relu", name=f"{p}_gconv2")
                s = b.avgpool(x, 3, stride=2, pad=1, name=f"{p}_avgpool")
                x = b.concat([s, y], name=f"{p}_concat")
            else:
                y = b.conv(y, out, 1, groups=g, act=None, name=f"{p}_gconv2")
                x = b.add(x, y, act="relu", name=f"{p}_add")
    x = b.gap(x, name="gap")
    x = b.flatten(x, name="flatten")
    b.fc(x, 1000, act=None, name="fc")


def squeezenet1_1(b: GraphBuilder) -> None:
    """SqueezeNet 1.1: 3×3 s2 conv to 64 (no padding), 3×3 s2 max-pools (no padding), 8 Fire
    modules (squeeze 1×1 → expand 1×1 ‖ expand 3×3, concatenated, ReLU), 1×1 conv to 1000 with
    ReLU, global average pool (as torchvision's ``squeezenet1_1``; dropout omitted)."""
    x = b.conv(b.input, 64, 3, stride=2, pad=0, name="conv1")
    fires = {"pool1": None, "fire2": (16, 64), "fire3": (16, 64), "pool3": None,
             "fire4": (32, 128), "fire5": (32, 128), "pool5": None,
             "fire6": (48, 192), "fire7": (48, 192), "fire8": (64, 256), "fire9": (64, 256)}
    for name, cfg in fires.items():
        if cfg is None:
            x = b.maxpool(x, 3, stride=2, name=name)
            continue
        sq, ex = cfg
        s = b.conv(x, sq, 1, name=f"{name}_squeeze")
        e1 = b.conv(s, ex, 1, name=f"{name}_expand1")
        e3 = b.conv(s, ex, 3, name=f"{name}_expand3")
        x = b.concat([e1, e3], name=f"{name}_concat")
    x = b.conv(x, 1000, 1, name="conv10")
    b.gap(x, name="gap")


def resnet18(b: GraphBuilder) -> None:
    """ResNet-18: 7×7 s2 conv to 64, 3×3 s2 max-pool (pad 1), 4 stages of 2 basic blocks
    (64/128/256/512 channels; 3×3 conv + ReLU, 3×3 conv, add, ReLU) with 1×1 s2 projection
    shortcuts where the shape changes, global average pool, FC 1000."""
    x = b.conv(b.input, 64, 7, stride=2, name="conv1")
    x = b.maxpool(x, 3, stride=2, pad=1, name="pool1")
    for stage, out in enumerate([64, 128, 256, 512], start=1):
        for blk in range(2):
            p = f"layer{stage}_{blk}"
            stride = 2 if (stage > 1 and blk == 0) else 1
            y = b.conv(x, out, 3, stride=stride, name=f"{p}_conv1")
            y = b.conv(y, out, 3, act=None, name=f"{p}_conv2")
            if stride != 1 or b.shape(x)[0] != out:
                x = b.conv(x, out, 1, stride=stride, act=None, name=f"{p}_proj")
            x = b.add(x, y, act="relu", name=f"{p}_add")
    x = b.gap(x, name="gap")
    x = b.flatten(x, name="flatten")
    b.fc(x, 1000, act=None, name="fc")


IGCV_L = 32       # primary partitions (3×3 group conv)
IGCV_M = 2        # channels per primary partition at the stage width


def interleave_perm(channels: int, primary_groups: int) -> np.ndarray:
    """IGCV1's interleave: secondary partition j takes the j-th channel of every primary
    partition.  Output channel ``j·L + i`` is input channel ``i·P + j`` (P = channels/L)."""
    return ir.shuffle_perm(channels, primary_groups)


def igcv(b: GraphBuilder) -> None:
    """IGCV1-style CIFAR network (32×32×3 → 10 classes), a ResNet-20 layout whose 3×3
    convolutions are interleaved group convolution blocks:

    primary 3×3 group conv with L=32 partitions (ReLU) → interleave permutation → secondary 1×1
    group conv with M partitions of L channels each (no ReLU) → residual add, ReLU.  Each output
    channel reaches each input channel through exactly one path (IGCV1's complementary
    condition).  Widths 64/128/256 (M = 2/4/8), 3 blocks per stage; the first block of stages 2
    and 3 has stride 2 in its primary conv and a 1×1 s2 projection shortcut.  Stem: plain 3×3
    conv to 64.  Head: global average pool, FC 10.  No published figures are claimed for it.
    """
    x = b.conv(b.input, 64, 3, name="conv1")
    for stage, width in enumerate([64, 128, 256], start=1):
        for blk in range(3):
            p = f"s{stage}b{blk}"
            stride = 2 if (stage > 1 and blk == 0) else 1
            y = b.conv(x, width, 3, stride=stride, groups=IGCV_L, name=f"{p}_primary")
            y = b.permute(y, interleave_perm(width, IGCV_L), name=f"{p}_interleave")
            y = b.conv(y, width, 1, groups=width // IGCV_L, act=None, name=f"{p}_secondary")
            if stride != 1 or b.shape(x)[0] != width:
                x = b.conv(x, width, 1, stride=stride, act=None, name=f"{p}_proj")
            x = b.add(x, y, act="relu", name=f"{p}_add")
    x = b.gap(x, name="gap")
    x = b.flatten(x, name="flatten")
    b.fc(x, 10, act=None, name="fc")


def digits(b: GraphBuilder) -> None:
    """Small CNN for 8×8 grey digits (scikit-learn's ``load_digits``): 3×3 conv to 16 (ReLU),
    3×3 s2 conv to 32 (ReLU), flatten, FC 10.  Trained (host/model/trained/digits.onnx, int8 QDQ)."""
    x = b.conv(b.input, 16, 3, name="conv1")
    x = b.conv(x, 32, 3, stride=2, name="conv2")
    x = b.flatten(x, name="flatten")
    b.fc(x, 10, act=None, name="fc")


def digits_random(b: GraphBuilder) -> None:
    """The ``digits`` architecture (3×3 conv to 16, 3×3 s2 conv to 32, FC 10) with random
    seeded weights, at any input size: a shape stand-in, not a classifier."""
    digits(b)


# name -> (builder function, input channels, default (H, W), seed, published figures)
# Published figures are those of docs/published.md and the original papers (MACs counting
# Conv + FC multiply-accumulates; parameters with FC).
_NETWORKS = {
    "vgg16": (vgg16, 3, (224, 224), 16,
              {"macs": 15.47e9, "params": 138.36e6,
               "source": "Simonyan & Zisserman 2015; published 15.3-15.5 G MACs, 138 M params"}),
    "mobilenet_v1": (mobilenet_v1, 3, (224, 224), 11,
                     {"macs": 569e6, "params": 4.2e6, "source": "Howard et al. 2017, Table 8"}),
    "shufflenet_v1": (shufflenet_v1, 3, (224, 224), 13,
                      {"macs": 140e6, "params": 1.9e6,
                       "source": "Zhang et al. 2018 (1x, g=3: 140 MFLOPs); published ~1.9 M params"}),
    "squeezenet1_1": (squeezenet1_1, 3, (224, 224), 111,
                      {"macs": 352e6, "params": 1.24e6,
                       "source": "SqueezeNet v1.1 release notes / torchvision (1,235,496 params)"}),
    "igcv": (igcv, 3, (32, 32), 17, None),
    "resnet18": (resnet18, 3, (224, 224), 18,
                 {"macs": 1.82e9, "params": 11.7e6, "source": "He et al. 2016, Table 1 (1.8 GFLOPs)"}),
    "digits": (digits, 1, (8, 8), 8, None),
    "digits_random": (digits_random, 1, (8, 8), 8, None),
}

# Trained networks: name -> the shipped QDQ model.  The builder above still gives their
# architecture (shape inference for ``info``/``plan`` at any size); weights come from the file.
TRAINED = {"digits": Path(__file__).resolve().parent / "trained" / "digits.onnx"}


def parse_spec(spec: str) -> tuple:
    """``NAME``, ``NAME@N`` or ``NAME@HxW`` (the part after ``zoo:``) → (name, resolution or
    None), with a one-line :class:`UserError` for a bad size or an unknown name."""
    name, _, res = spec.partition("@")
    resolution = None
    if res:
        try:
            parts = [int(v) for v in res.lower().split("x")]
        except ValueError:
            parts = []
        if len(parts) not in (1, 2) or min(parts) < 1:
            raise UserError(f"bad zoo resolution {res!r} (use zoo:NAME@N or zoo:NAME@HxW)")
        resolution = parts[0] if len(parts) == 1 else tuple(parts)
    if name not in names():
        raise UserError(f"unknown zoo model {name!r} (available: {', '.join(names())})")
    return name, resolution


def names() -> list[str]:
    """Names of the zoo networks, in a fixed order."""
    return list(_NETWORKS)


def _entry(name: str):
    try:
        return _NETWORKS[name]
    except KeyError:
        raise UnknownModel(f"unknown zoo model {name!r} (available: {', '.join(_NETWORKS)})") from None


def input_shape(name: str, resolution=None) -> tuple:
    """(C, H, W) of ``name`` at ``resolution`` (None → published size; int → square; (H, W))."""
    _, c, hw, _, _ = _entry(name)
    if resolution is None:
        h, w = hw
    elif isinstance(resolution, (int, np.integer)):
        h = w = int(resolution)
    else:
        h, w = (int(v) for v in resolution)
    if h < 1 or w < 1:
        raise UserError(f"zoo model {name}: bad resolution {resolution!r}")
    return (c, h, w)


def published(name: str) -> dict | None:
    """The published MACs/parameter figures the zoo is checked against (None if there are none)."""
    return _entry(name)[4]


def _make(name: str, resolution, builder_cls) -> GraphBuilder:
    fn, _, _, seed, _ = _entry(name)
    shape = input_shape(name, resolution)
    b = builder_cls(name, shape, seed=seed)
    try:
        fn(b)
    except ir.UnsupportedModel as e:
        raise UserError(f"zoo model {name} at {shape[1]}x{shape[2]}: {e}") from None
    return b


def build(name: str, resolution=None, calibrate: bool = True) -> Graph:
    """Build ``name`` afresh (no cache).  Deterministic: same weights and scales every call.
    A trained network is read from its shipped model (``calibrate`` does not apply)."""
    if name in TRAINED:
        return _load_trained(name, resolution)
    return _make(name, resolution, ZooBuilder).build(calibrate=calibrate)


def _load_trained(name: str, resolution) -> Graph:
    """The shipped QDQ model of a trained network, at its own input size only."""
    from host.model.onnx_import import load_onnx

    shape = input_shape(name, resolution)
    own = input_shape(name)
    if shape != own:
        raise UserError(f"zoo model {name} is trained for {own[1]}x{own[2]} inputs only "
                        f"(zoo:{name}_random@{shape[1]}x{shape[2]} has random weights at any size)")
    g = load_onnx(TRAINED[name])
    g.name = name
    return g


def shape_graph(name: str, resolution=None) -> Graph:
    """The network's graph with shapes only (weights are zero views): for counting, not running."""
    return _make(name, resolution, ShapeBuilder).build(calibrate=False)


# ---------------------------------------------------------------------------------------------
# Caches
# ---------------------------------------------------------------------------------------------

_MEMORY: dict = {}
_HASH = None


def code_hash() -> str:
    """Hash of the sources that determine a zoo graph's weights and calibration."""
    global _HASH
    if _HASH is None:
        h = hashlib.sha256()
        from host.compiler import plan
        from host.model import builder, ir, quant
        from host.runtime import golden
        for mod in (sys.modules[__name__], builder, ir, quant, golden, plan):
            h.update(Path(mod.__file__).read_bytes())
        h.update(np.__version__.encode())
        _HASH = h.hexdigest()[:16]
    return _HASH


def cache_dir() -> Path | None:
    d = os.environ.get("BLOCKFUSE_ZOO_CACHE", "")
    if d.lower() in ("off", "0", "none"):
        return None
    return Path(d) if d else Path.home() / ".cache" / "blockfuse" / "zoo"


def _jsonable(v):
    if isinstance(v, np.integer):
        return int(v)
    if isinstance(v, np.floating):
        return float(v)
    if isinstance(v, (tuple, list)):
        return [_jsonable(u) for u in v]
    return v


def save_graph(g: Graph, path: Path) -> None:
    """Write a graph to ``.npz`` (arrays as arrays, structure as JSON; no pickle)."""
    arrays, nodes = {}, []
    for k, n in enumerate(g.nodes):
        d = {"cls": type(n).__name__}
        for f in dataclasses.fields(n):
            v = getattr(n, f.name)
            if isinstance(v, np.ndarray):
                arrays[f"n{k}.{f.name}"] = np.ascontiguousarray(v)
                d[f.name] = {"array": f"n{k}.{f.name}"}
            else:
                d[f.name] = _jsonable(v)
        nodes.append(d)
    meta = {"name": g.name, "input": g.input, "output": g.output, "nodes": nodes,
            "tensors": [[t.name, list(t.shape), float(t.scale), int(t.zero_point)]
                        for t in g.tensors.values()]}
    arrays["meta"] = np.array(json.dumps(meta))
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp.npz")
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(f, **arrays)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def load_graph(path: Path) -> Graph:
    """Read a graph written by :func:`save_graph`."""
    with np.load(path, allow_pickle=False) as z:
        meta = json.loads(str(z["meta"]))
        g = Graph(meta["name"], meta["input"], meta["output"])
        for name, shape, scale, zp in meta["tensors"]:
            g.tensors[name] = Tensor(name, tuple(shape), scale, zp)
        for d in meta["nodes"]:
            cls = getattr(ir, d.pop("cls"))
            kw = {}
            for k, v in d.items():
                if isinstance(v, dict) and "array" in v:
                    v = z[v["array"]]
                elif isinstance(v, list) and k != "inputs":
                    v = tuple(v)
                kw[k] = v
            g.nodes.append(cls(**kw))
    return g


def get(name: str, resolution=None) -> Graph:
    """A calibrated graph of ``name`` at ``resolution`` (see :func:`input_shape`).

    Returns a private copy (callers may modify it).  Built once per process and cached on disk
    (see the module docstring), so repeated calls are fast.
    """
    shape = input_shape(name, resolution)
    key = (name, shape)
    g = _MEMORY.get(key)
    if g is None and name in TRAINED:
        g = _MEMORY[key] = build(name, shape[1:])        # a small file: no disk cache
    if g is None:
        d = cache_dir()
        path = d / f"{name}-{shape[1]}x{shape[2]}-{code_hash()}.npz" if d else None
        if path is not None and path.exists():
            try:
                g = load_graph(path)
            except Exception:         # a corrupt or foreign cache file: rebuild it
                g = None
        if g is None:
            g = build(name, shape[1:])
            if path is not None:
                try:
                    save_graph(g, path)
                except OSError:
                    pass              # read-only home: the memory cache still works
        _MEMORY[key] = g
    return copy.deepcopy(g)


def info(name: str, resolution=None) -> dict:
    """Sizes of ``name`` from shape inference: input shape, ``total_macs``, ``params``, the
    published figures, and ``layers`` (name, op, in/out shapes, MACs, params per node)."""
    g = shape_graph(name, resolution)
    layers = [{k: r[k] for k in ("name", "op", "in_shape", "out_shape", "macs", "params")}
              for r in g.layer_stats()]
    return {
        "name": name,
        "input_shape": list(g.input_tensor.shape),
        "output_shape": list(g.output_tensor.shape),
        "total_macs": sum(r["macs"] for r in layers),
        "params": sum(r["params"] for r in layers),
        "layers": layers,
        "published": published(name),
        "description": " ".join((_entry(name)[0].__doc__ or "").strip().split("\n\n")[0].split()),
    }


def timed_build(name: str, resolution=None) -> tuple[Graph, float]:
    """Build uncached and return (graph, seconds) — for benchmarks."""
    t = time.perf_counter()
    g = build(name, resolution)
    return g, time.perf_counter() - t
