"""What the command modules share: opening the index a config names, and where eval outputs go."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from freqindex.suffix.index import Index


def open_index(index_dir: str, index: Index | None = None) -> Index:
    """``index`` when the caller already holds it open (the server), else ``Index.open(index_dir)``."""
    from freqindex.suffix.index import Index

    return index if index is not None else Index.open(index_dir)


def eval_dir(index: Index, eval_name: str) -> Path:
    """Where an eval set's derived outputs go by default (``neighbors``, ``contamination``, ``analyze``), and
    where the SQL views look for them: ``INDEX/evals/NAME/``."""
    return index.path / "evals" / eval_name
