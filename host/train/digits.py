"""Train the digits CNN and write the int8 QDQ model that ``zoo:digits`` ships.

    python -m host.train.digits                     # writes host/model/trained/digits.onnx (seed 0)
    python -m host.train.digits --seed 3 --out /tmp/d3.onnx --float-out /tmp/d3_float.onnx
    python -m host.train.digits --cross-validate    # how the epochs and augmentation were chosen

Steps: the fixed train split of scikit-learn's digits (:mod:`host.model.datasets`), the float network
(the zoo's ``digits`` architecture: 3×3 conv to 16, 3×3 stride-2 conv to 32, FC 10) trained by
:mod:`host.train.nn` (NumPy, seeded, single-threaded: the same seed gives the same file), then
quantised exactly as a user would — ``onnxruntime.quantization.quantize_static``, QDQ,
per-channel int8 weights, int8 activations, calibration on the training split.  Nothing here
runs in the test suite: it takes a few seconds, and the suite tests the shipped file.
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import numpy as np

DIGITS_SPECS = [("conv", 16, 3, 1), ("conv", 32, 3, 2), ("flatten",), ("fc", 10)]
EPOCHS = 60             # chosen by 4-fold cross-validation on the training split (--cross-validate)
MAX_SHIFT = 1           # random ±1 pixel shifts while training (idem)
SHIPPED = Path(__file__).resolve().parents[1] / "model" / "trained" / "digits.onnx"


def train_float(specs, x, y, seed: int, epochs: int = EPOCHS, max_shift: int = MAX_SHIFT,
                block=None, net=None, desc: str = "training", lr: float = 2e-3):
    """A float :class:`host.train.nn.Net` trained on (x, y), with a progress bar per epoch.  ``net``
    continues training a given network (fine-tuning) instead of a fresh one."""
    from tqdm import tqdm

    from host.train import nn

    net = net.copy() if net is not None else nn.Net(specs, x.shape[1:], seed=seed)
    with tqdm(total=epochs, desc=desc, unit="epoch", file=sys.stderr, leave=False) as bar:
        nn.train(net, x, y, epochs=epochs, seed=seed, lr=lr, max_shift=max_shift, block=block,
                 progress=bar.update)
    return net


def cross_validate(folds: int = 4) -> None:
    """Validation accuracy of a few (epochs, shift) settings, on folds of the training split."""
    from sklearn.model_selection import StratifiedKFold

    from host.model import datasets

    d = datasets.load()
    cv = StratifiedKFold(folds, shuffle=True, random_state=0)
    for epochs, shift in [(30, 0), (30, 1), (60, 0), (60, 1), (100, 1)]:
        accs = []
        for k, (tr, va) in enumerate(cv.split(d.x_train, d.y_train)):
            net = train_float(DIGITS_SPECS, d.x_train[tr], d.y_train[tr], k, epochs, shift)
            accs.append(float(np.mean(net.predict(d.x_train[va]) == d.y_train[va])))
        print(f"epochs {epochs:3d}  shift ±{shift}: validation {np.mean(accs):.2%} "
              f"(folds {', '.join(f'{a:.2%}' for a in accs)})")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m host.train.digits", description=__doc__.split("\n\n")[0])
    p.add_argument("--seed", type=int, default=0, help="weight initialisation and batch order (default 0)")
    p.add_argument("--epochs", type=int, default=EPOCHS)
    p.add_argument("--out", default=str(SHIPPED), help=f"QDQ model to write (default {SHIPPED})")
    p.add_argument("--float-out", help="also write the float ONNX model here")
    p.add_argument("--cross-validate", action="store_true",
                   help="only print the cross-validation behind --epochs and the shift augmentation")
    args = p.parse_args(argv)
    from threadpoolctl import threadpool_limits

    with threadpool_limits(1):          # one BLAS thread: the same sums, so the same weights
        return _main(args)


def _main(args) -> int:
    if args.cross_validate:
        cross_validate()
        return 0
    from host.model import datasets
    from host.train import nn

    d = datasets.load()
    net = train_float(DIGITS_SPECS, d.x_train, d.y_train, args.seed, args.epochs)
    acc = np.mean(net.predict(d.x_test) == d.y_test)
    model = nn.to_onnx_float(net, "digits")
    if args.float_out:
        import onnx

        onnx.save(model, args.float_out)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    nn.quantize_qdq(model, d.x_train, args.out)
    from host.cli.eval import onnxruntime_predictions

    ort_float = np.mean(onnxruntime_predictions(model.SerializeToString(), d.x_test) == d.y_test)
    ort_q = np.mean(onnxruntime_predictions(args.out, d.x_test) == d.y_test)
    print(f"{args.out}: seed {args.seed}, {args.epochs} epochs ({os.path.getsize(args.out):,} bytes)\n"
          f"test top-1: float {acc:.2%} (NumPy), float {ort_float:.2%} (ONNX Runtime), "
          f"QDQ int8 {ort_q:.2%} (ONNX Runtime)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
