"""``blockfuse eval MODEL --dataset digits``: accuracy of a quantised model on real data.

Runs the test split of the data set (:mod:`host.model.datasets`) through MODEL on a target, with the
same model loading, plans and targets as ``blockfuse run`` (:mod:`host.cli.run`), and reports:

* top-1 accuracy and the confusion matrix (a table; ``--plot`` draws it);
* agreement with ONNX Runtime's predictions on the *same* QDQ model (the file itself, the
  shipped file of a trained zoo network, or the export of any other zoo network), and — on a
  target other than ``golden`` — with the golden model's under the same plan (bit-exact targets
  agree on every image);
* images per second of the target, steady state (from the first image's end to the last's: the
  first image also pays for the target's set-up, e.g. a Verilator build).

``--json`` writes all of it, with every prediction, so runs on different targets can be compared
image by image.  Every output file is written atomically after the run; a bad option, model or
path exits with one line and writes nothing.
"""
from __future__ import annotations

import io
import json
import sys
import time

import numpy as np

from host.cli.run import (add_execution_options, block_option, check_output_path, choose_plan,
                          engine_config, load_model, parse_target, run_batch, write_bytes_atomic)
from host.errors import UserError


def register(sub):
    p = sub.add_parser("eval", help="accuracy of a model on a data set's test split",
                       description="Top-1 accuracy, confusion matrix, agreement with ONNX Runtime "
                                   "and images/s of MODEL on the test split of a data set.")
    p.add_argument("model", metavar="MODEL", help="quantised ONNX file, or zoo:NAME[@RES]")
    p.add_argument("--dataset", required=True, metavar="NAME", help="data set (digits)")
    add_execution_options(p, "golden|emu|sim|serial:PORT")
    p.add_argument("--limit", type=int, metavar="N", help="only the first N test images")
    p.add_argument("--json", metavar="FILE", help="write the results (and every prediction) as JSON")
    p.add_argument("--plot", metavar="FILE.png", help="draw the confusion matrix")
    p.set_defaults(func=handler)


def handler(args) -> int:
    from host.model import datasets

    target = parse_target(args.target)
    block = block_option(args.block)
    if args.limit is not None and args.limit < 1:
        raise UserError(f"--limit {args.limit}: give a positive number of images")
    if args.plot and not args.plot.lower().endswith(".png"):
        raise UserError(f"--plot {args.plot!r}: the plot is a PNG file (name it FILE.png)")
    for path in (args.json, args.plot):
        if path:
            check_output_path(path)
    data = datasets.load(args.dataset)
    graph = load_model(args.model)
    x, note = _fit_inputs(graph, data.x_test, args.dataset)
    y = data.y_test
    if args.limit is not None:
        x, y = x[:args.limit], y[:args.limit]
    plan, how, _ = choose_plan(graph, args.schedule, block, args.board, None)
    engine = engine_config(args) if target[0] != "golden" else None
    ort_pred = onnxruntime_predictions(_reference(args.model, graph), x)

    from tqdm import tqdm

    stamps = []
    with tqdm(total=len(x), desc=f"eval on {args.target}", unit="image", file=sys.stderr,
              leave=False, disable=None) as bar:          # a bar on a terminal only
        t0 = time.perf_counter()

        def tick():
            stamps.append(time.perf_counter())
            bar.update()
        out = run_batch(graph, x, target, plan.schedule, None, plan=plan, engine=engine,
                        progress=tick)
    pred = out.reshape(len(x), -1).argmax(1)
    golden_pred = pred if target[0] == "golden" else \
        run_batch(graph, x, ("golden",), plan.schedule, None, plan=plan).reshape(len(x), -1).argmax(1)
    seconds = stamps[-1] - t0
    steady = (len(x) - 1) / (stamps[-1] - stamps[0]) if len(x) > 1 and stamps[-1] > stamps[0] \
        else len(x) / seconds

    res = {
        "model": args.model, "dataset": args.dataset, "split": "test", "images": int(len(x)),
        "input_note": note, "target": args.target, "schedule": plan.schedule, "plan": how,
        "board": args.board, "block": list(args.block) if args.block else None,
        "top1": float(np.mean(pred == y)), "correct": int(np.sum(pred == y)),
        "confusion": confusion(y, pred).tolist(),
        "onnxruntime": {"top1": float(np.mean(ort_pred == y)),
                        "agreement": float(np.mean(ort_pred == pred)),
                        "agreed": int(np.sum(ort_pred == pred))},
        "golden_agreement": float(np.mean(golden_pred == pred)),
        "images_per_second": float(steady), "seconds": float(seconds),
        "labels": y.tolist(), "predictions": pred.tolist(), "onnxruntime_predictions": ort_pred.tolist(),
    }
    print(report(res))
    _write_outputs(res, args.json, args.plot)
    return 0


def _fit_inputs(graph, x: np.ndarray, dataset: str):
    """The data set's images at the model's input size (resized bilinearly if it differs), with
    a note saying so; one-line errors for a model that cannot take them or is not a classifier
    of the data set's classes."""
    from host.model.datasets import CLASSES, resize

    c, h, w = graph.input_tensor.shape if len(graph.input_tensor.shape) == 3 else (None, 0, 0)
    if c != x.shape[1]:
        raise UserError(f"model input {tuple(graph.input_tensor.shape)} does not take {dataset} "
                        f"images ({x.shape[1]} channel{'s' * (x.shape[1] > 1)}, CHW)")
    outs = int(np.prod(graph.output_tensor.shape))
    if outs != CLASSES:
        raise UserError(f"model output {tuple(graph.output_tensor.shape)} is not {CLASSES} class "
                        f"scores ({dataset} has {CLASSES} classes)")
    if (h, w) == tuple(x.shape[2:]):
        return x, None
    return resize(x, (h, w)), f"images resized bilinearly from {x.shape[2]}x{x.shape[3]} to {h}x{w}"


def _reference(spec: str, graph):
    """The QDQ model ONNX Runtime runs for MODEL: the file, a trained zoo network's shipped
    file, or the export of any other zoo network (path or serialised bytes)."""
    if not spec.startswith("zoo:"):
        return spec
    from host.model import zoo

    name, resolution = zoo.parse_spec(spec[4:])
    if name in zoo.TRAINED:
        return str(zoo.TRAINED[name])
    from host.model.onnx_export import to_onnx

    return to_onnx(graph).SerializeToString()


def onnxruntime_predictions(model, x: np.ndarray) -> np.ndarray:
    """Top-1 classes ONNX Runtime predicts for float images ``x`` (N, C, H, W); one batch if
    the model's batch axis is dynamic, image by image otherwise."""
    from host.model.onnx_compare import ort_session

    try:
        s = ort_session(model, threads=0)
        inp = s.get_inputs()[0]
        if isinstance(inp.shape[0], int):
            out = np.concatenate([s.run(None, {inp.name: xi[None]})[0] for xi in x])
        else:
            out = s.run(None, {inp.name: x})[0]
    except Exception as e:
        raise UserError(f"ONNX Runtime cannot run the model: {type(e).__name__}: "
                        f"{' '.join(str(e).split())[:200]}")
    return out.reshape(len(x), -1).argmax(1)


def confusion(labels: np.ndarray, pred: np.ndarray, classes: int = 10) -> np.ndarray:
    """Counts (classes, classes): row = true class, column = predicted class."""
    m = np.zeros((classes, classes), dtype=np.int64)
    np.add.at(m, (labels, pred), 1)
    return m


def report(res: dict) -> str:
    """The text report: accuracy, agreement with ONNX Runtime (and golden), speed, confusion table."""
    n, o = res["images"], res["onnxruntime"]
    lines = [f"{res['model']} on {res['dataset']} ({n} test images), target {res['target']}, "
             f"schedule {res['schedule']} ({res['plan']})"]
    if res["input_note"]:
        lines.append(f"  ({res['input_note']})")
    lines += [f"top-1 accuracy: {res['top1']:.2%} ({res['correct']}/{n})",
              f"ONNX Runtime, same QDQ model: top-1 {o['top1']:.2%}; predictions agree on "
              f"{o['agreed']}/{n} ({o['agreement']:.2%})"]
    if res["target"] != "golden":
        lines.append(f"predictions equal to the golden model's (same plan): {res['golden_agreement']:.2%}")
    lines += [f"speed: {res['images_per_second']:,.1f} images/s on {res['target']} "
              f"({res['seconds']:.2f} s in all)",
              "confusion matrix (rows: true class, columns: predicted):",
              "      " + "".join(f"{c:>5}" for c in range(len(res["confusion"])))]
    lines += [f"{r:>5} " + "".join(f"{v:>5}" for v in row) for r, row in enumerate(res["confusion"])]
    return "\n".join(lines)


def _write_outputs(res: dict, json_path: str | None, plot_path: str | None) -> None:
    if plot_path:
        write_bytes_atomic(plot_path, plot_confusion(res))
        print(f"{plot_path}: confusion matrix")
    if json_path:
        write_bytes_atomic(json_path, (json.dumps(res, indent=1) + "\n").encode())
        print(f"{json_path}: results and predictions")


def plot_confusion(res: dict) -> bytes:
    """The confusion matrix as a PNG (counts in the cells)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    m = np.asarray(res["confusion"])
    fig, ax = plt.subplots(figsize=(5.2, 4.6))
    ax.imshow(m, cmap="Blues")
    for (i, j), v in np.ndenumerate(m):
        if v:
            ax.text(j, i, str(v), ha="center", va="center", fontsize=8,
                    color="white" if v > m.max() / 2 else "black")
    ax.set_xticks(range(len(m)))
    ax.set_yticks(range(len(m)))
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(f"{res['model']}, {res['target']}, {res['schedule']}: top-1 {res['top1']:.2%} "
                 f"({res['images']} images)", fontsize=9)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110)
    plt.close(fig)
    return buf.getvalue()
