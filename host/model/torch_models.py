"""Standard CNNs exported from PyTorch, quantised by ONNX Runtime, imported and measured.

Optional (``pip install -e .[export]``: PyTorch is not needed anywhere else).  The networks are
*torchvision-style re-implementations*: the same modules, operators and forward code as
torchvision's ResNet-18, MobileNetV2, SqueezeNet 1.0/1.1, ShuffleNetV2, GoogLeNet, MNASNet,
AlexNet and VGG-11 (``x.chunk``, ``channel_shuffle`` with ``x.size()``, ``ceil_mode`` pools,
``x.mean([2, 3])``, adaptive pooling, Dropout, BatchNorm), with fewer channels (``width``) so
that they export and run in seconds, and random weights and BatchNorm statistics.

For each network: ``torch.onnx.export`` (the TorchScript exporter, ``dynamo=False``, and the
``torch.export`` one, ``dynamo=True``, which needs ``onnxscript``), ``quantize_static`` in QDQ
form (per-channel int8 weights, int8 or uint8 activations) calibrated on random inputs, then
:func:`host.model.onnx_import.load_onnx` and the golden model against ONNX Runtime: the largest
deviation of any quantised layer fed ONNX Runtime's input codes, the end result under the
``layer`` and ``fused`` schedules in LSB and per requantising layer, and top-1 agreement::

    python -m host.model.torch_models                    # every network, JSON lines on stdout
    python -m host.model.torch_models resnet18 --size 64 --exporter dynamo
"""
from __future__ import annotations

import argparse
import io
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def _nets(width: float):
    """name -> constructor of the torchvision-style modules (imports torch)."""
    import torch
    from torch import nn
    from torch.nn import functional as F

    def ch(c):
        return max(4, int(round(c * width / 4)) * 4)

    def bn_conv(cin, cout, k, s=1, p=0, groups=1, eps=1e-5, act=nn.ReLU):
        layers = [nn.Conv2d(cin, cout, k, s, p, groups=groups, bias=False), nn.BatchNorm2d(cout, eps=eps)]
        return nn.Sequential(*layers, act(inplace=True)) if act else nn.Sequential(*layers)

    # ---- ResNet-18 --------------------------------------------------------------------------
    class BasicBlock(nn.Module):
        def __init__(self, cin, cout, stride):
            super().__init__()
            self.conv1 = bn_conv(cin, cout, 3, stride, 1)
            self.conv2 = bn_conv(cout, cout, 3, 1, 1, act=None)
            self.down = bn_conv(cin, cout, 1, stride, act=None) if stride != 1 or cin != cout else None
            self.relu = nn.ReLU(inplace=True)

        def forward(self, x):
            idt = x if self.down is None else self.down(x)
            return self.relu(self.conv2(self.conv1(x)) + idt)

    class ResNet18(nn.Module):
        def __init__(self, classes=1000):
            super().__init__()
            c = [ch(64), ch(128), ch(256), ch(512)]
            self.stem = nn.Sequential(bn_conv(3, c[0], 7, 2, 3), nn.MaxPool2d(3, 2, 1))
            blocks, cin = [], c[0]
            for i, co in enumerate(c):
                blocks += [BasicBlock(cin, co, 1 if i == 0 else 2), BasicBlock(co, co, 1)]
                cin = co
            self.layers = nn.Sequential(*blocks)
            self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
            self.fc = nn.Linear(cin, classes)

        def forward(self, x):
            x = self.avgpool(self.layers(self.stem(x)))
            return self.fc(torch.flatten(x, 1))

    # ---- MobileNetV2 ------------------------------------------------------------------------
    class InvertedResidual(nn.Module):
        def __init__(self, cin, cout, stride, t):
            super().__init__()
            hid = cin * t
            layers = [bn_conv(cin, hid, 1, act=nn.ReLU6)] if t != 1 else []
            layers += [bn_conv(hid, hid, 3, stride, 1, groups=hid, act=nn.ReLU6),
                       bn_conv(hid, cout, 1, act=None)]
            self.conv = nn.Sequential(*layers)
            self.res = stride == 1 and cin == cout

        def forward(self, x):
            return x + self.conv(x) if self.res else self.conv(x)

    class MobileNetV2(nn.Module):
        def __init__(self, classes=1000):
            super().__init__()
            cfg = [(1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1),
                   (6, 160, 3, 2), (6, 320, 1, 1)]
            cin = ch(32)
            layers = [bn_conv(3, cin, 3, 2, 1, act=nn.ReLU6)]
            for t, c, n, s in cfg:
                for i in range(n):
                    layers.append(InvertedResidual(cin, ch(c), s if i == 0 else 1, t))
                    cin = ch(c)
            layers.append(bn_conv(cin, ch(1280), 1, act=nn.ReLU6))
            self.features = nn.Sequential(*layers)
            self.classifier = nn.Sequential(nn.Dropout(0.2), nn.Linear(ch(1280), classes))

        def forward(self, x):
            x = F.adaptive_avg_pool2d(self.features(x), (1, 1))
            return self.classifier(torch.flatten(x, 1))

    # ---- SqueezeNet -------------------------------------------------------------------------
    class Fire(nn.Module):
        def __init__(self, cin, sq, e1, e3):
            super().__init__()
            self.squeeze = nn.Sequential(nn.Conv2d(cin, sq, 1), nn.ReLU(inplace=True))
            self.e1 = nn.Sequential(nn.Conv2d(sq, e1, 1), nn.ReLU(inplace=True))
            self.e3 = nn.Sequential(nn.Conv2d(sq, e3, 3, padding=1), nn.ReLU(inplace=True))

        def forward(self, x):
            x = self.squeeze(x)
            return torch.cat([self.e1(x), self.e3(x)], 1)

    class SqueezeNet(nn.Module):
        def __init__(self, version="1_0", classes=1000):
            super().__init__()
            f = lambda cin, s, e: Fire(ch(cin), ch(s), ch(e), ch(e))            # noqa: E731
            pool = lambda: nn.MaxPool2d(3, 2, ceil_mode=True)                     # noqa: E731
            if version == "1_0":
                self.features = nn.Sequential(
                    nn.Conv2d(3, ch(96), 7, 2), nn.ReLU(inplace=True), pool(),
                    f(96, 16, 64), f(128, 16, 64), f(128, 32, 128), pool(),
                    f(256, 32, 128), f(256, 48, 192), f(384, 48, 192), f(384, 64, 256), pool(),
                    f(512, 64, 256))
            else:
                self.features = nn.Sequential(
                    nn.Conv2d(3, ch(64), 3, 2), nn.ReLU(inplace=True), pool(),
                    f(64, 16, 64), f(128, 16, 64), pool(), f(128, 32, 128), f(256, 32, 128), pool(),
                    f(256, 48, 192), f(384, 48, 192), f(384, 64, 256), f(512, 64, 256))
            self.classifier = nn.Sequential(nn.Dropout(0.5), nn.Conv2d(2 * ch(256), classes, 1),
                                            nn.ReLU(inplace=True), nn.AdaptiveAvgPool2d((1, 1)))

        def forward(self, x):
            return torch.flatten(self.classifier(self.features(x)), 1)

    # ---- ShuffleNetV2 -----------------------------------------------------------------------
    def channel_shuffle(x, groups):
        b, c, h, w = x.size()
        x = x.view(b, groups, c // groups, h, w)
        x = torch.transpose(x, 1, 2).contiguous()
        return x.view(b, -1, h, w)

    class ShuffleUnit(nn.Module):
        def __init__(self, cin, cout, stride):
            super().__init__()
            self.stride = stride
            bf = cout // 2
            if stride > 1:
                self.branch1 = nn.Sequential(bn_conv(cin, cin, 3, stride, 1, groups=cin, act=None),
                                             bn_conv(cin, bf, 1))
            self.branch2 = nn.Sequential(bn_conv(cin if stride > 1 else bf, bf, 1),
                                         bn_conv(bf, bf, 3, stride, 1, groups=bf, act=None),
                                         bn_conv(bf, bf, 1))

        def forward(self, x):
            if self.stride == 1:
                x1, x2 = x.chunk(2, dim=1)
                out = torch.cat((x1, self.branch2(x2)), dim=1)
            else:
                out = torch.cat((self.branch1(x), self.branch2(x)), dim=1)
            return channel_shuffle(out, 2)

    class ShuffleNetV2(nn.Module):
        def __init__(self, classes=1000):
            super().__init__()
            stages = [ch(48), ch(96), ch(192)]
            self.conv1 = bn_conv(3, ch(24), 3, 2, 1)
            self.maxpool = nn.MaxPool2d(3, 2, 1)
            layers, cin = [], ch(24)
            for c, n in zip(stages, (4, 8, 4)):
                layers += [ShuffleUnit(cin, c, 2)] + [ShuffleUnit(c, c, 1) for _ in range(n - 1)]
                cin = c
            self.stages = nn.Sequential(*layers)
            self.conv5 = bn_conv(cin, ch(1024), 1)
            self.fc = nn.Linear(ch(1024), classes)

        def forward(self, x):
            x = self.conv5(self.stages(self.maxpool(self.conv1(x))))
            return self.fc(x.mean([2, 3]))

    # ---- GoogLeNet --------------------------------------------------------------------------
    def basic(cin, cout, k, s=1, p=0):
        return bn_conv(cin, cout, k, s, p, eps=0.001)

    class Inception(nn.Module):
        def __init__(self, cin, c1, c3r, c3, c5r, c5, pp):
            super().__init__()
            self.b1 = basic(cin, c1, 1)
            self.b2 = nn.Sequential(basic(cin, c3r, 1), basic(c3r, c3, 3, p=1))
            self.b3 = nn.Sequential(basic(cin, c5r, 1), basic(c5r, c5, 3, p=1))
            self.b4 = nn.Sequential(nn.MaxPool2d(3, 1, 1, ceil_mode=True), basic(cin, pp, 1))

        def forward(self, x):
            return torch.cat([self.b1(x), self.b2(x), self.b3(x), self.b4(x)], 1)

    class GoogLeNet(nn.Module):
        def __init__(self, classes=1000):
            super().__init__()
            pool = lambda: nn.MaxPool2d(3, 2, ceil_mode=True)                     # noqa: E731
            i = lambda cin, *cs: Inception(ch(cin), *map(ch, cs))                 # noqa: E731
            self.net = nn.Sequential(
                basic(3, ch(64), 7, 2, 3), pool(), basic(ch(64), ch(64), 1), basic(ch(64), ch(192), 3, p=1),
                pool(), i(192, 64, 96, 128, 16, 32, 32), i(256, 128, 128, 192, 32, 96, 64), pool(),
                i(480, 192, 96, 208, 16, 48, 64), i(512, 160, 112, 224, 24, 64, 64),
                i(512, 128, 128, 256, 24, 64, 64), i(512, 112, 144, 288, 32, 64, 64),
                i(528, 256, 160, 320, 32, 128, 128), nn.MaxPool2d(2, 2, ceil_mode=True),
                i(832, 256, 160, 320, 32, 128, 128), i(832, 384, 192, 384, 48, 128, 128))
            self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
            self.dropout = nn.Dropout(0.2)
            self.fc = nn.Linear(ch(1024), classes)

        def forward(self, x):
            x = torch.flatten(self.avgpool(self.net(x)), 1)
            return self.fc(self.dropout(x))

    # ---- MNASNet ----------------------------------------------------------------------------
    class MnasBlock(nn.Module):
        def __init__(self, cin, cout, k, s, t):
            super().__init__()
            mid = cin * t
            self.res = cin == cout and s == 1
            self.layers = nn.Sequential(bn_conv(cin, mid, 1), bn_conv(mid, mid, k, s, k // 2, groups=mid),
                                        bn_conv(mid, cout, 1, act=None))

        def forward(self, x):
            return self.layers(x) + x if self.res else self.layers(x)

    class MNASNet(nn.Module):
        def __init__(self, classes=1000):
            super().__init__()
            d = [ch(c) for c in (32, 16, 24, 40, 80, 96, 192, 320)]
            layers = [bn_conv(3, d[0], 3, 2, 1), bn_conv(d[0], d[0], 3, 1, 1, groups=d[0]),
                      bn_conv(d[0], d[1], 1, act=None)]
            cin = d[1]
            for cout, k, s, t, n in zip(d[2:], (3, 5, 5, 3, 5, 3), (2, 2, 2, 1, 2, 1), (3, 3, 6, 6, 6, 6),
                                        (3, 3, 3, 2, 4, 1)):
                for j in range(n):
                    layers.append(MnasBlock(cin, cout, k, s if j == 0 else 1, t))
                    cin = cout
            layers.append(bn_conv(cin, ch(1280), 1))
            self.layers = nn.Sequential(*layers)
            self.classifier = nn.Sequential(nn.Dropout(0.2), nn.Linear(ch(1280), classes))

        def forward(self, x):
            return self.classifier(self.layers(x).mean([2, 3]))

    # ---- AlexNet, VGG -----------------------------------------------------------------------
    class AlexNet(nn.Module):
        def __init__(self, classes=1000):
            super().__init__()
            c = [ch(v) for v in (64, 192, 384, 256, 256)]
            r = lambda: nn.ReLU(inplace=True)                                     # noqa: E731
            self.features = nn.Sequential(
                nn.Conv2d(3, c[0], 11, 4, 2), r(), nn.MaxPool2d(3, 2), nn.Conv2d(c[0], c[1], 5, padding=2), r(),
                nn.MaxPool2d(3, 2), nn.Conv2d(c[1], c[2], 3, padding=1), r(), nn.Conv2d(c[2], c[3], 3, padding=1),
                r(), nn.Conv2d(c[3], c[4], 3, padding=1), r(), nn.MaxPool2d(3, 2))
            self.avgpool = nn.AdaptiveAvgPool2d((6, 6))
            self.classifier = nn.Sequential(nn.Dropout(0.5), nn.Linear(c[4] * 36, ch(4096)), r(), nn.Dropout(0.5),
                                            nn.Linear(ch(4096), ch(4096)), r(), nn.Linear(ch(4096), classes))

        def forward(self, x):
            return self.classifier(torch.flatten(self.avgpool(self.features(x)), 1))

    class VGG11(nn.Module):
        def __init__(self, classes=1000):
            super().__init__()
            layers, cin = [], 3
            for v in (64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"):
                if v == "M":
                    layers.append(nn.MaxPool2d(2, 2))
                else:
                    layers.append(bn_conv(cin, ch(v), 3, 1, 1))
                    cin = ch(v)
            self.features = nn.Sequential(*layers)
            self.avgpool = nn.AdaptiveAvgPool2d((7, 7))
            self.classifier = nn.Sequential(nn.Linear(cin * 49, ch(4096)), nn.ReLU(True), nn.Dropout(),
                                            nn.Linear(ch(4096), ch(4096)), nn.ReLU(True), nn.Dropout(),
                                            nn.Linear(ch(4096), classes))

        def forward(self, x):
            return self.classifier(torch.flatten(self.avgpool(self.features(x)), 1))

    return {"resnet18": ResNet18, "mobilenet_v2": MobileNetV2, "squeezenet1_0": lambda: SqueezeNet("1_0"),
            "squeezenet1_1": lambda: SqueezeNet("1_1"), "shufflenet_v2": ShuffleNetV2,
            "googlenet": GoogLeNet, "mnasnet": MNASNet, "alexnet": AlexNet, "vgg11": VGG11}


NETWORKS = ("resnet18", "mobilenet_v2", "squeezenet1_0", "squeezenet1_1", "shufflenet_v2", "googlenet",
            "mnasnet", "alexnet", "vgg11")


def build(name: str, width: float = 0.25, seed: int = 0):
    """The network in eval mode with seeded random weights and BatchNorm statistics."""
    import torch

    torch.manual_seed(seed)
    net = _nets(width)[name]().eval()
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.normal_(0, 0.2)
                m.running_var.uniform_(0.5, 2.0)
                m.weight.uniform_(0.5, 1.5)
                m.bias.normal_(0, 0.2)
    return net


def export(net, size: int, exporter: str = "script", opset: int = 17) -> bytes:
    """``torch.onnx.export`` of ``net`` for a 1×3×size×size input (dynamic batch)."""
    import torch

    x = torch.randn(1, 3, size, size)
    f = io.BytesIO()
    if exporter == "dynamo":
        prog = torch.onnx.export(net, (x,), dynamo=True, opset_version=max(opset, 18),
                                 dynamic_shapes=({0: torch.export.Dim("batch")},), verbose=False)
        prog.save(f)
    else:
        torch.onnx.export(net, (x,), f, dynamo=False, opset_version=opset, input_names=["x"],
                          output_names=["logits"], dynamic_axes={"x": {0: "batch"}, "logits": {0: "batch"}})
    return f.getvalue()


def quantize(onnx_bytes: bytes, act: str = "int8", calibration: int = 8, seed: int = 0):
    """``quantize_static`` in QDQ form, per-channel int8 weights, ``act`` activations,
    calibrated on seeded normal inputs; returns the ModelProto."""
    import onnx
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static

    model = onnx.load_from_string(onnx_bytes)
    inp = model.graph.input[0]
    shape = [d.dim_value or 1 for d in inp.type.tensor_type.shape.dim]
    rng = np.random.default_rng(seed)
    data = iter([{inp.name: rng.normal(0, 1, shape).astype(np.float32)} for _ in range(calibration)])

    class Reader(CalibrationDataReader):
        def get_next(self):
            return next(data, None)

    with tempfile.TemporaryDirectory() as d:
        src, dst = Path(d) / "f.onnx", Path(d) / "q.onnx"
        src.write_bytes(onnx_bytes)
        quantize_static(str(src), str(dst), Reader(), quant_format=QuantFormat.QDQ, per_channel=True,
                        weight_type=QuantType.QInt8,
                        activation_type=QuantType.QInt8 if act == "int8" else QuantType.QUInt8)
        return onnx.load(str(dst))


def measure(model, inputs: int = 4, seed: int = 1) -> dict:
    """Import ``model`` and compare the golden model with ONNX Runtime (see the module doc)."""
    from host.runtime import golden
    from host.errors import UserError
    from host.model.onnx_compare import layer_deviations, ort_codes, ort_session, requantising_layers
    from host.model.onnx_import import input_quant, load_onnx, output_dequant

    try:
        g = load_onnx(model)
    except UserError as e:
        return {"imported": False, "declined": str(e)}
    h = load_onnx(model, fold_clamps=False)
    rng = np.random.default_rng(seed)
    sess = ort_session(model)
    layers = requantising_layers(g)
    worst_layer, worst_name, end = 0, None, {"layer": 0.0, "fused": 0.0}
    top1 = 0
    for k in range(inputs):
        x = rng.normal(0, 1, (1,) + g.input_tensor.shape).astype(np.float32)
        if k == 0:
            codes, _ = ort_codes(model, h, x)
            dev, _ = layer_deviations(h, codes)
            worst_name = max(dev, key=dev.get)
            worst_layer = dev[worst_name]
        ref = sess.run(None, {g.onnx_io[0]: x})[0]
        xq = input_quant(g, x)[0]
        for schedule in end:
            y = output_dequant(g, golden.run(g, xq, schedule=schedule))
            end[schedule] = max(end[schedule], float(np.abs(y - ref).max() / g.output_tensor.scale))
            if schedule == "layer":
                top1 += int(np.argmax(y) == np.argmax(ref))
    return {"imported": True, "ops": sorted({n.op for n in g.nodes}), "nodes": len(g.nodes),
            "requantising_layers": layers, "max_layer_lsb": worst_layer, "worst_layer": worst_name,
            "end_lsb": {s: round(v, 3) for s, v in end.items()}, "top1_agree": f"{top1}/{inputs}"}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m host.model.torch_models", description=__doc__.split("\n")[0])
    ap.add_argument("names", nargs="*", default=list(NETWORKS), help=f"networks (default all): {', '.join(NETWORKS)}")
    ap.add_argument("--size", type=int, default=224, help="input height and width (default 224)")
    ap.add_argument("--width", type=float, default=0.25, help="channel multiplier (default 0.25)")
    ap.add_argument("--exporter", choices=["script", "dynamo"], default="script")
    ap.add_argument("--act", choices=["int8", "uint8"], default="uint8")
    ap.add_argument("--inputs", type=int, default=4, help="random inputs for top-1 (default 4)")
    ap.add_argument("--save", type=Path, help="directory to write each quantised model to")
    args = ap.parse_args(argv)
    for name in args.names:
        t0 = time.time()
        row = {"network": name, "size": args.size, "width": args.width, "exporter": args.exporter,
               "act": args.act}
        try:
            model = quantize(export(build(name, args.width), args.size, args.exporter), args.act)
        except Exception as e:                      # an export or quantiser failure is a result too
            row.update(exported=False, error=" ".join(str(e).split())[:300])
            print(json.dumps(row), flush=True)
            continue
        if args.save:
            import onnx
            args.save.mkdir(parents=True, exist_ok=True)
            onnx.save(model, str(args.save / f"{name}_{args.size}_{args.exporter}_{args.act}.onnx"))
        row.update(measure(model, args.inputs))
        row["seconds"] = round(time.time() - t0, 1)
        print(json.dumps(row), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
