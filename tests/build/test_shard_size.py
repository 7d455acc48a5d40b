"""Shards sized for queries: the shard count follows --shard-size (never the chunks or the cluster), and the
shard stage's layout over cores and memory, in process (no Spark)."""

from __future__ import annotations

import json

import pytest

from freqindex import settings
from freqindex.build import build_index, run_in_process
from freqindex.build.scheduling import shard_build_memory, shard_task_layout
from freqindex.config import BuildConfig, parse_size
from freqindex.errors import UsageError
from freqindex.suffix.sa_build import divsufsort_memory
from freqindex.suffix.stage import default_shards
from tests.conftest import FLICKR

GIB = 1024**3


def test_sizes_parse_in_decimal_and_binary_units():
    assert parse_size("2GB") == 2_000_000_000 == parse_size(" 2 gb ") == parse_size("2g")
    assert parse_size("1.5GiB") == 3 * 2**29 and parse_size("512MiB") == 512 * 2**20
    assert parse_size("2000000000") == 2_000_000_000 == parse_size(2_000_000_000)
    for bad in ("2 GBs", "-1GB", "GB", "1e9", ""):
        with pytest.raises(UsageError, match="cannot read"):
            parse_size(bad, "--shard-size")
    assert BuildConfig(inputs=("x",), output="o", shard_size="1MiB").shard_size == 2**20
    with pytest.raises(UsageError, match="not both"):
        BuildConfig(inputs=("x",), output="o", shards=2, shard_size="1MB").validate()
    with pytest.raises(UsageError, match="at least"):
        BuildConfig(inputs=("x",), output="o", shard_size="10").validate()


def test_the_content_key_follows_the_resolved_shard_size():
    key = lambda **kw: BuildConfig(inputs=("x",), output="o", **kw).content_key([])  # noqa: E731
    assert key() == key(shard_size=settings.SHARD_SIZE_BYTES) != key(shard_size="1GB")
    assert key(shards=3) != key() and key(shards=3) == BuildConfig(("x",), "o2", shards=3).content_key([])


def test_default_shard_count_is_the_fewest_shards_of_at_most_the_size():
    size = settings.SHARD_SIZE_BYTES
    assert [default_shards(b) for b in (1, size, size + 1, 10 * size, 10 * size + 1)] == [1, 1, 2, 10, 11]
    # a default shard is sorted by libdivsufsort's 32-bit entry point within the default memory budget
    assert size < 2**31 - 1 and divsufsort_memory(size) <= settings.SA_BUILD_MEM_GIB * GIB
    assert shard_build_memory(size, settings.SA_BUILD_MEM_GIB) == divsufsort_memory(size)


def _build(tmp_path, name, **kw):
    cfg = BuildConfig(inputs=(str(FLICKR),), output=str(tmp_path / name), format="tsv", **kw)
    summary = build_index(cfg, run_in_process)
    return summary, json.loads((tmp_path / name / "manifest.json").read_text())


def test_shard_count_follows_the_size_not_the_chunks(tmp_path):
    one, m1 = _build(tmp_path, "default")
    assert one["shards"] == 1 and one["chunks"] == 1
    tokens_bytes = m1["shards"][0]["ds_bytes"]
    size = tokens_bytes // 3 + 5000  # just over a third: 3 shards
    a, ma = _build(tmp_path, "a", shard_size=size)
    b, mb = _build(tmp_path, "b", shard_size=size, chunk_bytes=256 * 1024)  # many chunks, the same 3 shards
    assert a["shards"] == b["shards"] == 3 and b["chunks"] > 8 and a["chunks"] == 1
    assert [s["ds_bytes"] for s in ma["shards"]] == [s["ds_bytes"] for s in mb["shards"]]
    assert (
        all(s["ds_bytes"] <= size for s in ma["shards"])
        and sum(s["ds_bytes"] for s in ma["shards"]) == tokens_bytes
    )
    for name in sorted(p.name for p in (tmp_path / "a" / "sa").iterdir()):
        assert (tmp_path / "a" / "sa" / name).read_bytes() == (tmp_path / "b" / "sa" / name).read_bytes()
    # balanced: no shard more than one document's bytes away from the mean
    mean = tokens_bytes / 3
    assert max(abs(s["ds_bytes"] - mean) for s in ma["shards"]) < 2000


def test_local_layout_fits_the_memory_budget_and_uses_every_core():
    small = [100 * 2**20] * 4  # 4 shards of 100 MiB: ~0.5 GiB each
    big = [int(1.9e9)] * 3  # 3 shards near the default size: ~8.9 GiB each
    lay = shard_task_layout(small, 10, local_cores=2)
    assert (lay.concurrent, lay.threads, lay.cpus_per_task) == (2, 1, None)
    lay = shard_task_layout(big, 10, local_cores=8)  # one fits the budget: one at a time, all 8 cores
    assert (lay.concurrent, lay.threads) == (1, 8)
    lay = shard_task_layout(big, 20, local_cores=8)
    assert (lay.concurrent, lay.threads) == (2, 4)
    lay = shard_task_layout([int(1.9e9)], 10, local_cores=16)  # a single shard sorts with all 16 cores
    assert (lay.concurrent, lay.threads) == (1, 16)
    lay = shard_task_layout(small, 10, local_cores=8, task_cpus=4)  # spark.task.cpus is a floor
    assert (lay.concurrent, lay.threads) == (2, 4)
    # a shard above the budget goes to infini-gram's indexer, which is given exactly the budget
    assert shard_build_memory(5 * GIB, 10) == 10 * GIB
    assert shard_task_layout([5 * GIB] * 2, 10, local_cores=4).concurrent == 1


def test_cluster_layout_asks_for_a_whole_executor_when_its_size_is_known():
    lay = shard_task_layout([int(1.9e9)] * 5, 10, executor_cores=16)
    assert (lay.threads, lay.cpus_per_task, lay.concurrent) == (16, 16, None)
    lay = shard_task_layout([int(1.9e9)] * 5, 10, executor_cores=None, task_cpus=4)
    assert (lay.threads, lay.cpus_per_task, lay.concurrent) == (4, None, None)
    lay = shard_task_layout([int(1.9e9)], 10, executor_cores=4, task_cpus=4)  # already whole executors
    assert (lay.threads, lay.cpus_per_task) == (4, None)
