"""Benchmark routines shared by ``benchmarks/*.py`` and ``mmrank bench``."""
