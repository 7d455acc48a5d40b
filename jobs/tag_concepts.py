"""`freqindex tag` as a Spark job: Aho-Corasick concept tagging of an existing index, one task per block
of about 32 MiB of documents. Runnable with spark-submit (every TagConfig field is a flag)::

    spark-submit --master URL jobs/tag_concepts.py INDEX_DIR CONCEPTS_FILE [--exact] [--config tag.toml]
"""

from __future__ import annotations

import sys
from collections.abc import Callable

from freqindex.concepts.stage import require_taggable, run_tagging
from freqindex.concepts.vocab import load_vocabulary
from freqindex.config import TagConfig
from freqindex.suffix.index import Index
from jobs.spark import config_main, spark_runner


def run_tag(cfg: TagConfig, *, on_progress: Callable | None = None, keep_spark: bool = False) -> dict:
    """Tag the index ``cfg.index_dir`` with the vocabulary ``cfg.concepts`` on ``cfg.master``; writes
    concepts/ and updates the manifest. Returns the tagging summary (with the vocabulary's warnings)."""
    cfg.validate()
    idx = Index.open(cfg.index_dir, replacing="concepts")  # refuses a damaged index before Spark starts
    require_taggable(idx.manifest)
    vocab = load_vocabulary(cfg.concepts, idx.normalizer, cfg.exact, cfg.label_field)
    with spark_runner(cfg.master, "freqindex-tag", on_progress, keep_spark=keep_spark) as runner:
        return run_tagging(cfg.index_dir, vocab, runner, cfg.concepts)


def main(argv: list[str] | None = None) -> int:
    """spark-submit entry point: ``tag_concepts.py INDEX_DIR CONCEPTS_FILE [--FIELD VALUE...]``."""
    return config_main(
        TagConfig, "tag", lambda cfg, _: run_tag(cfg), argv, __doc__, positional=("index_dir", "concepts")
    )


if __name__ == "__main__":
    sys.exit(main())
