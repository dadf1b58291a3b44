"""Test-wide settings.

One BLAS thread per test process: pytest-xdist already runs one worker per core, and the golden
model's many small matrix products only lose to threading on a 2-core machine.  This must happen
before NumPy is first imported, hence here.
"""
import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
