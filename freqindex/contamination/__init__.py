"""Contamination metrics of eval items against an index (exact, from the suffix arrays)."""
