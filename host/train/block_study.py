"""What block convolution costs in accuracy, small-scale: the digits at 32×32.

    python -m host.train.block_study --seeds 0 1 2        # trains, quantises, evaluates (~13 min a seed)
    python -m host.train.block_study --report             # table and plot from the saved runs

8×8 digits are too small for a block sweep: 2×2 blocks of an 8×8 image are 4×4 pixels, and the
shipped ``zoo:digits`` falls to 59 % under them with its plain weights.  The study therefore
upsamples the images bilinearly to 32×32 (:func:`host.model.datasets.resize`) and trains a deeper
network on them (:data:`SPECS`: 3×3 convolutions to 16, 32 (stride 2), 32, 32 (stride 2), FC 10),
whose four convolutions form the one fused group that ``--schedule block`` cuts into blocks.

Per seed: the plain network is trained (:mod:`host.train.nn`), quantised with ``quantize_static``
like the shipped model, and evaluated on the test split by the golden model under ``layer`` and
under ``block`` with 16×16, 8×8 and 4×4 blocks — grids of 2×2, 4×4 and 8×8 blocks, as TCAD 2022's
F112/F56/F28 on 224×224 — with (a) the plain weights; (b) the plain network fine-tuned with the
blocks (each padded with zeros at its own borders, as the golden model pads them) and quantised
again; (c) the network trained with the blocks from scratch.  Calibration runs the float model
without blocks (ONNX has no block convolution); the int8 figures show what that costs.

Each seed's figures go to ``docs/block_study/seed<N>.json`` (written when the seed is done, so
seeds can run in parallel processes); ``--report`` writes ``docs/block_study.json`` (mean and
spread) and ``docs/block_study.png``, and prints the Markdown table of ``docs/accuracy.md``.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

import numpy as np

SIZE = 32
SPECS = [("conv", 16, 3, 1), ("conv", 32, 3, 2), ("conv", 32, 3, 1), ("conv", 32, 3, 2),
         ("flatten",), ("fc", 10)]
BLOCKS = (16, 8, 4)             # block edge on the 32×32 input: grids of 2×2, 4×4, 8×8 blocks
EPOCHS = 40                     # plain and from-scratch training
FT_EPOCHS = 15                  # fine-tuning with blocks
FT_LR = 5e-4
MAX_SHIFT = 4                   # ±4 pixels at 32×32: the ±1 of the shipped 8×8 model
DOCS = Path(__file__).resolve().parent.parent / "docs"
RUNS = DOCS / "block_study"

#: published VGG16 / ImageNet top-1 (TCAD 2022; DATE 2018), shown beside ours, never computed
PUBLISHED = {
    "source": "Block convolution, TCAD 2022 (VGG16, ImageNet top-1); DATE 2018: VGG16 top-1 72.60 %",
    "baseline": 71.59, "blocked_from_scratch": 70.47, "fine_tuned_28x28": 71.45,
    "sweep": {"F112 (2x2 grid)": 71.81, "F56 (4x4 grid)": 71.74, "F28 (8x8 grid)": 71.45,
              "F14 (16x16 grid)": 70.48},
    "date2018_top1": 72.60,
}


def _int8_accuracy(net, calib: np.ndarray, x: np.ndarray, y: np.ndarray, blocks) -> dict:
    """Quantise ``net`` (QDQ, calibrated on ``calib``) and return the golden model's test
    accuracy under ``layer`` (key ``None``) or ``block`` with each block edge in ``blocks`` —
    the plans ``blockfuse eval --schedule block --block B B`` runs."""
    from host.train import nn
    from host.cli.run import run_batch
    from host.model.onnx_import import load_onnx
    from host.compiler.plan import default_plan

    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "m.onnx")
        nn.quantize_qdq(nn.to_onnx_float(net, "digits32"), calib, path)
        g = load_onnx(path)
    out = {}
    for b in blocks:
        plan = default_plan(g, "layer") if b is None else default_plan(g, "block", (b, b))
        pred = run_batch(g, x, ("golden",), plan.schedule, None, plan=plan).reshape(len(x), -1).argmax(1)
        out[b] = float(np.mean(pred == y))
    return out


def run_seed(seed: int, scratch: bool = True) -> dict:
    """All figures of one seed (accuracies as fractions)."""
    from host.model import datasets
    from host.train.digits import train_float

    d = datasets.load()
    xtr, xte = datasets.resize(d.x_train, (SIZE, SIZE)), datasets.resize(d.x_test, (SIZE, SIZE))
    ytr, yte = d.y_train, d.y_test

    def facc(net, b=None):
        return float(np.mean(net.predict(xte, None if b is None else (b, b)) == yte))

    plain = train_float(SPECS, xtr, ytr, seed, EPOCHS, MAX_SHIFT, desc=f"seed {seed} plain")
    q = _int8_accuracy(plain, xtr, xte, yte, (None,) + BLOCKS)
    res = {"seed": seed, "plain": {"float": facc(plain), "int8": q[None]},
           "plain_weights": {}, "fine_tuned": {}, "from_scratch": {}}
    for b in BLOCKS:
        res["plain_weights"][str(b)] = {"float": facc(plain, b), "int8": q[b]}
        ft = train_float(SPECS, xtr, ytr, seed, FT_EPOCHS, MAX_SHIFT, block=(b, b), net=plain,
                         desc=f"seed {seed} fine-tune {b}x{b}", lr=FT_LR)
        res["fine_tuned"][str(b)] = {"float": facc(ft, b),
                                     "int8": _int8_accuracy(ft, xtr, xte, yte, (b,))[b]}
        if scratch:
            sc = train_float(SPECS, xtr, ytr, seed, EPOCHS, MAX_SHIFT, block=(b, b),
                             desc=f"seed {seed} scratch {b}x{b}")
            res["from_scratch"][str(b)] = {"float": facc(sc, b),
                                           "int8": _int8_accuracy(sc, xtr, xte, yte, (b,))[b]}
    return res


# ---------------------------------------------------------------------------------------------
# Report
# ---------------------------------------------------------------------------------------------

def _stats(values) -> dict:
    v = 100 * np.asarray(values)
    return {"mean": float(v.mean()), "std": float(v.std(ddof=1)) if len(v) > 1 else 0.0,
            "min": float(v.min()), "max": float(v.max()), "n": int(len(v))}


def summarise(runs: list) -> dict:
    """Mean ± spread over seeds of every figure (percent)."""
    out = {"seeds": [r["seed"] for r in runs], "size": SIZE, "blocks": list(BLOCKS),
           "plain": {k: _stats([r["plain"][k] for r in runs]) for k in ("float", "int8")},
           "published": PUBLISHED}
    for kind in ("plain_weights", "fine_tuned", "from_scratch"):
        out[kind] = {}
        for b in map(str, BLOCKS):
            have = [r[kind][b] for r in runs if b in r[kind]]
            if have:
                out[kind][b] = {k: _stats([h[k] for h in have]) for k in ("float", "int8")}
    return out


def _fmt(s: dict | None) -> str:
    return "—" if s is None else f"{s['mean']:.2f} ± {s['std']:.2f}"


def table(summary: dict) -> str:
    """Markdown table: int8 (golden) and float test accuracy per block size and training."""
    p = summary["plain"]
    n = p["int8"]["n"]
    rows = ["| blocks on 32×32 (grid) | plain weights | fine-tuned with blocks | trained with blocks from scratch |",
            "|---|---|---|---|",
            f"| none (plain network) | {_fmt(p['int8'])} (float {_fmt(p['float'])}) | | |"]
    for b in summary["blocks"]:
        cells = []
        for kind in ("plain_weights", "fine_tuned", "from_scratch"):
            s = summary[kind].get(str(b))
            cells.append("—" if s is None else f"{_fmt(s['int8'])} (float {_fmt(s['float'])})")
        rows.append(f"| {b}×{b} ({SIZE // b}×{SIZE // b}) | " + " | ".join(cells) + " |")
    rows.append(f"\nint8 = the golden model on the QDQ model (`--schedule layer` / `--schedule block "
                f"--block B B`), float = the NumPy network; mean ± standard deviation over {n} seeds "
                f"({', '.join(map(str, summary['seeds']))}), % top-1 on the 360 test images.")
    return "\n".join(rows)


def plot(summary: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax, bx) = plt.subplots(1, 2, figsize=(10, 4))
    grids = [SIZE // b for b in summary["blocks"]]
    base = summary["plain"]["int8"]
    ax.axhline(base["mean"], color="grey", ls="--", label="plain network (no blocks)")
    for kind, label, m in [("plain_weights", "plain weights", "o"), ("fine_tuned", "fine-tuned with blocks", "s"),
                           ("from_scratch", "trained with blocks from scratch", "^")]:
        have = [(g, summary[kind][str(b)]["int8"]) for g, b in zip(grids, summary["blocks"])
                if str(b) in summary[kind]]
        if have:
            ax.errorbar([g for g, _ in have], [s["mean"] for _, s in have],
                        yerr=[s["std"] for _, s in have], marker=m, capsize=3, label=label)
    ax.set_xscale("log", base=2)
    ax.set_xticks(grids, [f"{g}×{g}" for g in grids])
    ax.set_xlabel("block grid on the 32×32 input")
    ax.set_ylabel("int8 top-1 on the test split (%)")
    ax.set_title(f"digits at 32×32, golden model, mean ± std of {base['n']} seeds", fontsize=9)
    ax.legend(fontsize=8)
    pub = summary["published"]
    names = list(pub["sweep"])
    bx.plot([2, 4, 8, 16], [pub["sweep"][k] for k in names], "o-", label="fine-tuned with blocks (sweep)")
    bx.axhline(pub["baseline"], color="grey", ls="--", label="baseline")
    bx.plot([8], [pub["blocked_from_scratch"]], "^", label="blocked from scratch (28×28)")
    bx.set_xscale("log", base=2)
    bx.set_xticks([2, 4, 8, 16], [f"{g}×{g}\n{k.split()[0]}" for g, k in zip([2, 4, 8, 16], names)])
    bx.set_xlabel("block grid on the 224×224 input")
    bx.set_ylabel("top-1 (%)")
    bx.set_title("published: VGG16 on ImageNet (TCAD 2022)", fontsize=9)
    bx.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m host.train.block_study", description=__doc__.split("\n\n")[0])
    p.add_argument("--seeds", type=int, nargs="*", default=[], help="train and evaluate these seeds")
    p.add_argument("--no-scratch", action="store_true", help="skip training with blocks from scratch")
    p.add_argument("--report", action="store_true", help="summarise every saved seed")
    args = p.parse_args(argv)
    from threadpoolctl import threadpool_limits

    RUNS.mkdir(parents=True, exist_ok=True)
    for seed in args.seeds:
        with threadpool_limits(1):
            res = run_seed(seed, scratch=not args.no_scratch)
        (RUNS / f"seed{seed}.json").write_text(json.dumps(res, indent=1) + "\n")
        print(f"seed {seed}: {json.dumps(res)}")
    if args.report:
        runs = [json.loads(f.read_text()) for f in sorted(RUNS.glob("seed*.json"))]
        if not runs:
            print("no saved runs: train some seeds first (--seeds 0 1 2)", file=sys.stderr)
            return 1
        summary = summarise(runs)
        (DOCS / "block_study.json").write_text(json.dumps(summary, indent=1) + "\n")
        plot(summary, DOCS / "block_study.png")
        print(table(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
