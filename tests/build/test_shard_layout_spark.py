"""The shard stage's layout in real Spark (local[2]): shard tasks share the cores and the memory budget, and
the shards are byte for byte those of the in-process build."""

from __future__ import annotations

import pytest

from freqindex.build import build_index, run_in_process
from freqindex.config import BuildConfig
from tests.conftest import FLICKR, build

pytestmark = pytest.mark.spark


def _sa_bytes(idx) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted((idx / "sa").iterdir())}


def test_local_shard_tasks_use_every_core_and_build_the_same_bytes(tmp_path):
    # one shard (the default size): one task sorting with both cores
    one = build([FLICKR], tmp_path / "one", format="tsv", master="local[2]")
    assert one["shards"] == 1 and one["shard_tasks"] == {
        "threads": 2,
        "concurrent": 1,
        "cpus_per_task": None,
        "spark_task_cpus": [1],  # local mode has no resource profiles: the layout gives the task both cores
    }
    # three small shards: two tasks at a time, one core each; the third shard waits for a free task
    three = build([FLICKR], tmp_path / "three", format="tsv", shard_size="800KB", master="local[2]")
    assert three["shards"] == 3 and three["shard_tasks"]["concurrent"] == 2
    assert three["shard_tasks"]["threads"] == 1
    for name, shards in (("one", None), ("three", "800KB")):
        cfg = BuildConfig(
            inputs=(str(FLICKR),), output=str(tmp_path / f"ref-{name}"), format="tsv", shard_size=shards
        )
        build_index(cfg, run_in_process)
        assert _sa_bytes(tmp_path / name) == _sa_bytes(tmp_path / f"ref-{name}")
