"""infini-gram shard writer, suffix-array build (infini-gram's own indexer binary), and the index reader."""
