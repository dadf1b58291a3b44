"""The golden model against ONNX Runtime on an imported QDQ model, layer by layer.

ONNX Runtime is the reference (the golden model's gemmlowp fixed-point requantisation may differ
from its float requantisation by 1 LSB per quantised layer).  :func:`ort_codes` runs a model with
every quantised tensor the importer mapped (``graph.onnx_names``) exposed as an output;
:func:`layer_deviations` feeds each IR node ONNX Runtime's codes for its inputs and measures how
far its output is from ONNX Runtime's.  Used by the test suite and by ``host.model.torch_models``.
"""
from __future__ import annotations

import numpy as np

from host.runtime.golden import eval_whole
from host.model.ir import ChannelSlice, Clamp, Flatten, GlobalMaxPool, Permute, Pool


def ort_session(model, optimize: bool = True, threads: int = 1):
    """A CPU session of ``model`` (a ModelProto, its bytes or a file path) on ``threads``
    threads (0: ONNX Runtime's choice); ``optimize=False`` runs every QDQ operator unfused
    (DequantizeLinear → float operator → QuantizeLinear, the graph's ONNX semantics).

    ``session.x64quantprecision``: on an x86 CPU without VNNI (AVX2 only, e.g. the AMD EPYC of
    some machines here) ONNX Runtime's u8×s8 integer matrix kernel adds pairs of products in
    saturating 16-bit lanes, so MatMulInteger, ConvInteger and the fused QDQ convolutions
    drift from the exact int32 sums by up to hundreds of LSB; with the option it takes its exact
    u8×u8 path for constant weights (a model's) on every CPU. Every comparison with ONNX
    Runtime here goes through this."""
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.log_severity_level = 3
    so.add_session_config_entry("session.x64quantprecision", "1")
    if not optimize:
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    if hasattr(model, "SerializeToString"):
        model = model.SerializeToString()
    return ort.InferenceSession(model if isinstance(model, bytes) else str(model), so,
                                providers=["CPUExecutionProvider"])


def ort_codes(model, graph, x: np.ndarray, session=ort_session) -> tuple:
    """Run ``model`` on float ``x`` with every quantised tensor exposed; return
    ({IR tensor: int8 codes without the batch axis}, float output).  ``session(model)`` makes
    the ONNX Runtime session."""
    from onnx import TensorProto, helper

    m = type(model)()
    m.CopyFrom(model)
    elem = TensorProto.UINT8 if graph.activation_dtype == "uint8" else TensorProto.INT8
    names = {ir: name for ir, name in graph.onnx_names.items() if ir in graph.tensors}
    outs = [graph.onnx_io[1]] + list(names.values())
    for name in names.values():
        m.graph.output.append(helper.make_tensor_value_info(name, elem, None))
    res = session(m).run(outs, {graph.onnx_io[0]: x})
    codes = {}
    for ir, arr in zip(names, res[1:]):
        arr = arr.astype(np.int16) - (128 if elem == TensorProto.UINT8 else 0)
        codes[ir] = arr.reshape(graph.tensors[ir].shape).astype(np.int8)
    return codes, res[0]


def requantising_layers(graph) -> int:
    """Layers that round (everything but max pools, flatten, permute, clamp, channel slice)."""
    return sum(not isinstance(n, (Flatten, Permute, Clamp, ChannelSlice, GlobalMaxPool))
               and not (isinstance(n, Pool) and n.kind == "max") for n in graph.nodes)


def layer_deviations(graph, codes: dict) -> tuple:
    """Each node on ONNX Runtime's ``codes`` for its inputs: ({node: largest |difference| in
    LSB from ONNX Runtime's output codes}, every tensor's codes).  Tensors ONNX Runtime does not
    have (e.g. a rescale the importer inserted) come from the node's own result."""
    feed = dict(codes)
    dev = {}
    for n in graph.nodes:
        ours = eval_whole(graph, n, [feed[i] for i in n.inputs])
        if n.output in codes:
            dev[n.name] = int(np.abs(ours.astype(np.int16) - codes[n.output]).max())
        else:
            feed[n.output] = ours
    return dev, feed
