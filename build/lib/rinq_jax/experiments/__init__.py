"""Experiments reproducing the paper's tables and robustness sweeps."""
