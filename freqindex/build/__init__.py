"""The build: plan, run the stage cores through a task runner (Spark or in-process), publish atomically."""

from freqindex.build.driver import TaskRunner, build_index, run_in_process

__all__ = ["TaskRunner", "build_index", "run_in_process"]
