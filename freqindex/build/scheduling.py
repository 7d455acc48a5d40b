"""How the shard stage uses an executor's cores and memory.

A shard task sorts one shard's suffix array, which needs far more memory than anything else in a build
(libdivsufsort: 5 bytes per token byte, 9 above 2 GiB) and is the only step that runs on several threads. So
shard tasks should not share an executor with each other, and each should sort with all of the executor's
cores. The layout chosen here says how, for the runner that will run the tasks:

- **local mode** (``local[N]``, this machine is the one executor): at most ``concurrent`` shard tasks run at
  once, as many as fit the suffix-array memory budget (``sa_mem_gib``) and the cores, each with ``N //
  concurrent`` threads. The Spark runner groups the shards into that many tasks, each building its shards
  one after another.
- **a cluster whose executors have a known size** (``spark.executor.cores`` set; standalone, YARN,
  Kubernetes): each shard task asks for all the cores of an executor through stage-level scheduling
  (a task resource profile), so one shard task runs per executor and sorts with every core. The
  tokenize stage keeps its one core per task.
- **otherwise**: the tasks run as Spark schedules them, each with ``spark.task.cpus`` threads.

The layout changes only speed and memory, never a byte of the index (a suffix array does not depend on the
thread count or on which task built it).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from freqindex.suffix.sa_build import DIVSUFSORT, choose_builder, divsufsort_memory


@dataclass(frozen=True)
class ShardTaskLayout:
    """How to run the shard tasks. ``threads``: suffix-array threads per shard task. ``concurrent``: shard
    tasks at once on one executor, when the runner must enforce it (local mode), else None.
    ``cpus_per_task``: cores each shard task asks the cluster for (stage-level scheduling), else None."""

    threads: int
    concurrent: int | None = None
    cpus_per_task: int | None = None

    def describe(self) -> dict:
        return {"threads": self.threads, "concurrent": self.concurrent, "cpus_per_task": self.cpus_per_task}


def shard_build_memory(ds_bytes: int, mem_gib: float) -> int:
    """Bytes of memory the suffix-array build of a shard of ``ds_bytes`` takes: libdivsufsort's need when it
    fits ``mem_gib``, else the budget that infini-gram's bounded-memory indexer is given."""
    if choose_builder(max(ds_bytes, 1), mem_gib) == DIVSUFSORT:
        return divsufsort_memory(ds_bytes)
    return int(mem_gib * 1024**3)


def shard_task_layout(
    shard_bytes: list[int],
    mem_gib: float,
    *,
    local_cores: int | None = None,
    executor_cores: int | None = None,
    task_cpus: int = 1,
) -> ShardTaskLayout:
    """The layout for shards of ``shard_bytes`` bytes (see the module docstring).

    ``local_cores``: the N of ``local[N]`` in local mode (else None). ``executor_cores``: the cores of one
    executor on a cluster when known (``spark.executor.cores``). ``task_cpus``: ``spark.task.cpus``."""
    n = max(1, len(shard_bytes))
    task_cpus = max(1, task_cpus)
    if local_cores is not None:
        cores = max(1, local_cores)
        need = max((shard_build_memory(b, mem_gib) for b in shard_bytes), default=0)
        fit = math.floor(mem_gib * 1024**3 / need) if need else n
        concurrent = max(1, min(cores // task_cpus or 1, n, fit))
        return ShardTaskLayout(threads=max(task_cpus, cores // concurrent), concurrent=concurrent)
    if executor_cores is not None and executor_cores > task_cpus:
        return ShardTaskLayout(threads=executor_cores, cpus_per_task=executor_cores)
    return ShardTaskLayout(threads=task_cpus)
