"""Measurement and figure tooling around the library: benchmarks, the paper's figures, contact
sheets. Not part of the algorithm; the binaries benchmark, reproduce_figures and contact_sheet
use it."""
