"""The `freqindex` command line: thin typer wrappers that parse flags into a command's config, call one
library function, and print (rich progress and summaries on stderr, results and --json on stdout).

Exit codes everywhere: 0 ok, 1 a check or gate failed, 2 bad usage or bad input, 3 a build failed.

One module per command group, each registering its commands on the shared app (``common.app``):
``build`` (build, tag, embed: Spark jobs), ``query`` (count, docs, info, verify, pull, concepts, sql),
``evals`` (neighbors, contamination, analyze), ``lm`` (prob, ntd, distance, priming, frontier), ``serve``,
``demo`` (demo-corpus).
"""

from __future__ import annotations

import re

from . import build, demo, evals, lm, query, serve  # noqa: F401  (each registers its commands)
from .common import app


def _one_line_summaries() -> None:
    """The command list shows the first sentence of each command's help, unwrapped (the docstrings are
    hard-wrapped for the source, and the list would otherwise keep their line breaks and whole paragraph);
    ``freqindex COMMAND --help`` shows all of it."""
    for info in app.registered_commands:
        text = info.help or (info.callback.__doc__ if info.callback else None)
        if info.short_help is None and text:
            first = " ".join(text.strip().split("\n\n")[0].split())
            info.short_help = re.split(r"(?<=[.?!])\s+(?=[A-Z])", first)[0]


_one_line_summaries()


def main() -> None:
    app()


__all__ = ["app", "main"]
