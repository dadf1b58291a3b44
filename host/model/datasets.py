"""Data sets for ``blockfuse eval`` and the training script: real images that ship with a package.

``digits`` is scikit-learn's handwritten digits (``sklearn.datasets.load_digits``: 1,797 8×8
grey images of the digits 0-9, 16 grey levels; the data is inside the scikit-learn wheel, nothing
is downloaded).  The split is fixed: stratified, seeded, 20 % test (360 images), so every figure
in ``docs/accuracy.md`` is measured on the same images.

Images are float32 NCHW in [0, 1] (the 0-16 grey levels divided by 16), the input the trained
``zoo:digits`` expects.  A model with a larger input gets the images resized bilinearly
(:func:`resize`), e.g. the 32×32 variant of the block-convolution study.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from host.errors import UserError

DATASETS = ("digits",)
SPLIT_SEED = 0          # the stratified train/test split (never change: the docs' figures use it)
TEST_FRACTION = 0.2
CLASSES = 10


@dataclass
class Split:
    """Images (N, 1, H, W) float32 in [0, 1] and their labels (N,) int64."""
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray


def load(name: str = "digits") -> Split:
    """The fixed train/test split of data set ``name`` (one-line :class:`UserError` otherwise)."""
    if name not in DATASETS:
        raise UserError(f"unknown dataset {name!r} (available: {', '.join(DATASETS)})")
    try:
        from sklearn.datasets import load_digits
        from sklearn.model_selection import train_test_split
    except ImportError as e:
        raise UserError(f"the digits dataset needs scikit-learn ({e}); pip install scikit-learn")
    d = load_digits()
    x = (d.images.astype(np.float32) / 16.0)[:, None]
    y = d.target.astype(np.int64)
    xtr, xte, ytr, yte = train_test_split(x, y, test_size=TEST_FRACTION, stratify=y,
                                          random_state=SPLIT_SEED)
    return Split(xtr, ytr, xte, yte)


def _interp_matrix(n_in: int, n_out: int) -> np.ndarray:
    """(n_out, n_in) bilinear resampling weights, pixel centres aligned (as ``align_corners=False``)."""
    pos = np.clip((np.arange(n_out) + 0.5) * n_in / n_out - 0.5, 0, n_in - 1)
    lo = np.floor(pos).astype(int)
    hi = np.minimum(lo + 1, n_in - 1)
    f = pos - lo
    m = np.zeros((n_out, n_in))
    m[np.arange(n_out), lo] += 1 - f
    m[np.arange(n_out), hi] += f
    return m


def resize(x: np.ndarray, hw: tuple) -> np.ndarray:
    """Bilinear resize of images (N, C, H, W) to ``hw``; unchanged if already that size."""
    h, w = x.shape[2:]
    if (h, w) == tuple(hw):
        return x
    my, mx = _interp_matrix(h, hw[0]), _interp_matrix(w, hw[1])
    return np.einsum("yh,nchw,xw->ncyx", my, x, mx).astype(np.float32)
