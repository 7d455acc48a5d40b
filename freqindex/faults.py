"""Injected faults, for the tests of crash, kill and retry behaviour (nothing happens unless they ask).

``FREQINDEX_FAULTS`` holds rules separated by ``;``, each ``POINT[:TASK]=ACTION``:

- ``POINT``: a name a stage passes at a fixed moment (:data:`POINTS`): the build's, and ``tag``'s and
  ``embed``'s last moment before they publish; ``TASK``: only that chunk or shard;
- ``ACTION``: ``kill`` (SIGKILL this very process: the driver, or a task's Python worker), ``fail`` (raise),
  ``fail-once:PATH`` (raise, unless ``PATH`` already exists, which the first failure creates atomically:
  one failure per test, however many attempts and executors run).

The executors see the variable through ``--conf spark.executorEnv.FREQINDEX_FAULTS=...`` (local masters
inherit the driver's environment).
"""

from __future__ import annotations

import os
import signal

from freqindex.errors import BuildError

ENV = "FREQINDEX_FAULTS"
POINTS = (
    "chunk-uploaded",  # a stage-1 task put its files, before its marker
    "shard-built",  # a shard task built its files in scratch, before putting them
    "shard-uploaded",  # a shard task put its files, before its marker
    "driver-tokenized",  # the driver collected stage 1, before planning shards
    "driver-before-publish",  # the driver checked nothing yet, every shard is done
    "driver-before-manifest",  # the driver verified every file and removed strays, before the manifest
    "tag-tasks-done",  # tag: every hits part written in .concepts.partial/, nothing published
    "embed-vectors-written",  # embed: every vector part written, no FAISS index, nothing published
)


def fault_point(point: str, task: int | None = None) -> None:
    """Act on the rules of ``FREQINDEX_FAULTS`` that name ``point`` (and ``task``, when they name one)."""
    spec = os.environ.get(ENV)
    if not spec:
        return
    for rule in filter(None, (r.strip() for r in spec.split(";"))):
        where, _, action = rule.partition("=")
        name, _, which = where.partition(":")
        if name != point or (which and (task is None or int(which) != task)):
            continue
        if action == "kill":
            os.kill(os.getpid(), signal.SIGKILL)
        if action == "fail":
            raise BuildError(f"injected fault at {point}" + (f" (task {task})" if task is not None else ""))
        if action.startswith("fail-once:"):
            try:
                fd = os.open(action.split(":", 1)[1], os.O_CREAT | os.O_EXCL | os.O_WRONLY)
            except FileExistsError:
                continue
            os.close(fd)
            raise BuildError(f"injected fault at {point} (task {task}), once")
