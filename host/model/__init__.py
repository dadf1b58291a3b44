"""Networks: the IR, the golden model's numerics (quantisation), ONNX import and export, and
the built-in zoo."""
