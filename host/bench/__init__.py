"""Benchmarks that write tables and plots under ``docs/`` (``blockfuse bench``)."""
