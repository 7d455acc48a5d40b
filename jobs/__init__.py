"""Spark entry points. Each calls cores in freqindex/, never the reverse."""
