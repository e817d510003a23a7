"""Measurement and figure tooling around the library: benchmarks (benchmark.py: shared
measures; in_process.py: the sections timed in one process; child_processes.py: those that run
commands), the paper's figures, contact sheets. Not part of the algorithm; the commands
benchmark, reproduce-figures and contact-sheet use it."""
