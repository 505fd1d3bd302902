"""Evaluation: metrics, figures, exports and comparison with dictionary matching."""
