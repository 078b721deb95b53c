"""The sections of benchmarks/run.py, one module each, each with ``measure(run)``."""
