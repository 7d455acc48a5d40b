"""`freqindex embed` as a Spark job: embed every document (every window of a long one) of an existing index,
one task per block of documents loading the model once, then build the FAISS index. spark-submit::

    spark-submit --master URL jobs/embed_index.py INDEX_DIR [--model minilm-v1]
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable

from freqindex.settings import DEFAULT_MASTER
from freqindex.vectors.stage import DEFAULT_CHUNK_TOKENS, DEFAULT_STRIDE, run_embedding
from jobs.spark import run_entry, spark_runner


def run_embed(
    index_dir: str,
    *,
    model: str = "minilm-v1",
    chunk_tokens: tuple[int, ...] = DEFAULT_CHUNK_TOKENS,
    stride: int | None = DEFAULT_STRIDE,
    factory: str | None = None,
    dtype: str = "float32",
    master: str = DEFAULT_MASTER,
    on_progress: Callable | None = None,
    keep_spark: bool = False,
    image_root: str | None = None,
    precomputed: str | None = None,
    vector_field: str = "embedding",
    id_field: str = "id",
) -> dict:
    with spark_runner(master, "freqindex-embed", on_progress, keep_spark=keep_spark) as runner:
        return run_embedding(
            index_dir,
            runner,
            model,
            chunk_tokens,
            stride,
            factory,
            dtype,
            image_root=image_root,
            precomputed=precomputed,
            vector_field=vector_field,
            id_field=id_field,
        )


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("index_dir")
    ap.add_argument("--model", default="minilm-v1")
    ap.add_argument("--master", default=DEFAULT_MASTER)
    a = ap.parse_args(argv)
    return run_entry(lambda: run_embed(a.index_dir, model=a.model, master=a.master))


if __name__ == "__main__":
    sys.exit(main())
