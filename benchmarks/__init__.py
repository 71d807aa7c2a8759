"""Benchmarks: each compares maskcli with a baseline in the same run; run one with ``python -m benchmarks.NAME``
(``--help`` lists its options), from the repository root. Latest results: ``benchmarks/results/``."""
