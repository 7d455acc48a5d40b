"""`freqindex embed` as a Spark job: embed every document (every window of a long one) of an existing index,
one task per block of documents loading the model once, then build the FAISS index. spark-submit (every
EmbedConfig field is a flag)::

    spark-submit --master URL jobs/embed_index.py INDEX_DIR [--model minilm-v1] [--config embed.toml]
"""

from __future__ import annotations

import sys
from collections.abc import Callable

from freqindex.config import EmbedConfig
from freqindex.vectors.stage import run_embedding
from jobs.spark import config_main, local_cores, spark_runner


def run_embed(cfg: EmbedConfig, *, on_progress: Callable | None = None, keep_spark: bool = False) -> dict:
    """Embed the index ``cfg.index_dir`` on ``cfg.master`` and build its FAISS index; writes vectors/ and
    updates the manifest. Returns the embedding summary."""
    cfg.validate()
    if cfg.device == "cuda" and local_cores(cfg.master) is not None:
        from freqindex.vectors.embedders import resolve_device

        resolve_device("cuda")  # local mode: the tasks run here, so say now when this machine has no GPU
    with spark_runner(cfg.master, "freqindex-embed", on_progress, keep_spark=keep_spark) as runner:
        return run_embedding(
            cfg.index_dir,
            runner,
            cfg.model,
            cfg.chunk_tokens,
            cfg.stride,
            cfg.faiss_factory,
            cfg.dtype,
            image_root=cfg.image_root,
            precomputed=cfg.precomputed,
            vector_field=cfg.vector_field,
            id_field=cfg.id_field,
            device=cfg.device,
        )


def main(argv: list[str] | None = None) -> int:
    """spark-submit entry point: ``embed_index.py INDEX_DIR [--FIELD VALUE...]``."""
    return config_main(
        EmbedConfig, "embed", lambda cfg, _: run_embed(cfg), argv, __doc__, positional=("index_dir",)
    )


if __name__ == "__main__":
    sys.exit(main())
