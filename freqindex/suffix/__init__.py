"""infini-gram shards: the writer, the suffix-array build (libdivsufsort) and the index reader."""
