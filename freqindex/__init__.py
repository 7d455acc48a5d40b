"""freqindex: pretraining-corpus frequency indexing (suffix arrays via infini-gram, built with Spark)."""

__version__ = "0.1.0"
