"""`freqindex tag` as a Spark job: Aho-Corasick concept tagging of an existing index, one task per block
of about 32 MiB of documents. Runnable with spark-submit::

    spark-submit --master URL jobs/tag_concepts.py INDEX_DIR CONCEPTS_FILE [--exact]
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable

from freqindex.concepts.stage import require_taggable, run_tagging
from freqindex.concepts.vocab import load_vocabulary
from freqindex.settings import DEFAULT_MASTER
from freqindex.suffix.index import Index
from jobs.spark import run_entry, spark_runner


def run_tag(
    index_dir: str,
    concepts: str,
    *,
    exact: bool = False,
    label_field: str | None = None,
    master: str = DEFAULT_MASTER,
    on_progress: Callable | None = None,
    keep_spark: bool = False,
) -> dict:
    idx = Index.open(index_dir, replacing="concepts")  # refuses a damaged index before Spark starts
    require_taggable(idx.manifest)
    vocab = load_vocabulary(concepts, idx.normalizer, exact, label_field)
    with spark_runner(master, "freqindex-tag", on_progress, keep_spark=keep_spark) as runner:
        return run_tagging(index_dir, vocab, runner, concepts)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("index_dir")
    ap.add_argument("concepts")
    ap.add_argument("--exact", action="store_true")
    ap.add_argument("--master", default=DEFAULT_MASTER)
    a = ap.parse_args(argv)
    return run_entry(lambda: run_tag(a.index_dir, a.concepts, exact=a.exact, master=a.master))


if __name__ == "__main__":
    sys.exit(main())
