"""Corpus readers per format, chunk planning, validation and quarantine reasons."""
