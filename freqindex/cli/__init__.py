"""The `freqindex` command line: thin typer wrappers that parse flags into a command's config, call one
library function, and print (rich progress and summaries on stderr, results and --json on stdout).

Exit codes everywhere: 0 ok, 1 a check or gate failed, 2 bad usage or bad input, 3 a build failed.

One module per command group, each registering its commands on the shared app (``common.app``):
``build`` (build, tag, embed: Spark jobs), ``query`` (count, docs, info, verify, pull, concepts, sql),
``evals`` (neighbors, contamination, analyze), ``lm`` (prob, ntd, distance, priming, frontier), ``serve``,
``demo`` (demo-corpus).
"""

from __future__ import annotations

from . import build, demo, evals, lm, query, serve  # noqa: F401  (each registers its commands)
from .common import app


def main() -> None:
    app()


__all__ = ["app", "main"]
