"""An on-disk cache of window embeddings, keyed by (model, doc_id, window), outside the immutable index.

Candidate-mode neighbours embed only the windows of the documents an eval set can match; this cache makes
repeated runs, and eval items that share candidate documents, pay for each window once. A window is
``(doc_id, char_start, char_end)`` in the index's stored document text, so within one index the key fixes
the text exactly; the cache directory is keyed by the index's text (a hash of the manifest's content key,
tokenizer, normalization and the checksums of its token and offset files: another build, even at the same
path, gets another directory, while `tag` or `embed`, which leave the text alone, keep it) and by the model.

Layout: ``ROOT/embeddings/<text hash[:16]>/<model key>/part-<unique>.keys.npy`` (int64 rows doc_id, char_start,
char_end) and ``.vecs.npy`` (float32, one L2-normalized row per key). A writer adds a new part (vectors
first, then keys, each written to a temporary name and renamed), so concurrent processes never see half a
part and never overwrite each other; a part whose keys file is missing is ignored. Many small parts are
merged into one when the cache is opened.

ROOT is ``FREQINDEX_CACHE_DIR`` when set, else ``$XDG_CACHE_HOME/freqindex`` (``~/.cache/freqindex``),
plus ``embeddings/``; pass ``cache_dir`` to choose another, or ``cache_dir=False`` for no cache.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import uuid
from pathlib import Path

import numpy as np

CACHE_ENV = "FREQINDEX_CACHE_DIR"
MERGE_ABOVE_PARTS = 32


def default_cache_root() -> Path:
    if os.environ.get(CACHE_ENV):
        return Path(os.path.expanduser(os.environ[CACHE_ENV]))
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "freqindex"


def text_hash(manifest: dict) -> str:
    """A hash of what fixes an index's stored text (see the module docstring)."""
    files = manifest.get("files", {})
    text = {
        "content_key": manifest.get("content_key"),
        "tokenizer": manifest.get("tokenizer"),
        "normalization": manifest.get("normalization"),
        "files": {k: v for k, v in files.items() if k.startswith(("sa/tokenized.", "sa/offset."))},
    }
    return hashlib.sha256(json.dumps(text, sort_keys=True).encode()).hexdigest()


def model_key(model: str, dim: int) -> str:
    """A directory name for a model: readable, and unique through a hash of the full name."""
    slug = re.sub(r"[^A-Za-z0-9._-]+", "_", model)[-40:]
    return f"{slug}-{dim}-{hashlib.sha256(model.encode()).hexdigest()[:10]}"


class EmbeddingCache:
    """Window vectors of one (index, model). ``lookup`` finds the cached rows of many keys at once; ``add``
    stores new ones. With ``directory=None`` it is an in-memory cache for this process only."""

    def __init__(self, directory: Path | None, dim: int):
        self.directory = directory
        self.dim = dim
        self._rows: dict[tuple[int, int, int], int] = {}
        self._vecs: list[np.ndarray] = []
        self._base: list[int] = []
        self.loaded_parts = 0
        if directory is not None:
            directory.mkdir(parents=True, exist_ok=True)
            self._load()

    @classmethod
    def for_index(
        cls, index, model: str, dim: int, cache_dir: str | Path | None | bool = None
    ) -> EmbeddingCache:
        """The cache of ``model``'s windows of ``index`` (see the module docstring for where it lives)."""
        if cache_dir is False:
            return cls(None, dim)
        root = default_cache_root() if cache_dir in (None, True) else Path(os.path.expanduser(str(cache_dir)))
        return cls(root / "embeddings" / text_hash(index.manifest)[:16] / model_key(model, dim), dim)

    def _parts(self) -> list[Path]:
        return sorted(self.directory.glob("part-*.keys.npy"))

    def _load(self) -> None:
        parts = self._parts()
        if len(parts) > MERGE_ABOVE_PARTS:
            self._merge(parts)
            parts = self._parts()
        for kp in parts:
            vp = kp.with_name(kp.name.replace(".keys.npy", ".vecs.npy"))
            try:
                keys = np.load(kp)
                vecs = np.load(vp, mmap_mode="r")
            except (FileNotFoundError, ValueError):  # merged away by another process, or not ours to read
                continue
            if vecs.shape != (len(keys), self.dim):
                continue
            self._append(keys, vecs)
            self.loaded_parts += 1

    def _append(self, keys: np.ndarray, vecs: np.ndarray) -> None:
        base = sum(len(v) for v in self._vecs)
        self._vecs.append(vecs)
        self._base.append(base)
        for r, k in enumerate(map(tuple, keys.tolist())):
            self._rows.setdefault(k, base + r)

    def _merge(self, parts: list[Path]) -> None:
        keys, vecs = [], []
        for kp in parts:
            try:
                keys.append(np.load(kp))
                vecs.append(np.load(kp.with_name(kp.name.replace(".keys.npy", ".vecs.npy"))))
            except (FileNotFoundError, ValueError):
                continue
        if not keys:
            return
        self._write(np.concatenate(keys), np.concatenate(vecs))
        for kp in parts:
            kp.unlink(missing_ok=True)
            kp.with_name(kp.name.replace(".keys.npy", ".vecs.npy")).unlink(missing_ok=True)

    def _write(self, keys: np.ndarray, vecs: np.ndarray) -> None:
        stem = self.directory / f"part-{uuid.uuid4().hex}"
        for suffix, arr in ((".vecs.npy", vecs), (".keys.npy", keys)):  # keys last: they mark the part done
            tmp = stem.with_name(stem.name + suffix + ".tmp")
            with open(tmp, "wb") as f:
                np.save(f, arr)
            os.replace(tmp, stem.with_name(stem.name + suffix))

    def __len__(self) -> int:
        return len(self._rows)

    def lookup(self, keys: list[tuple[int, int, int]]) -> tuple[np.ndarray, np.ndarray]:
        """(found mask, vectors of the found keys in order)."""
        rows = [self._rows.get(k, -1) for k in keys]
        found = np.asarray([r >= 0 for r in rows], dtype=bool)
        out = np.empty((int(found.sum()), self.dim), dtype=np.float32)
        if not out.shape[0]:
            return found, out
        got = np.asarray([r for r in rows if r >= 0], dtype=np.int64)
        bases = np.asarray(self._base, dtype=np.int64)
        part = np.searchsorted(bases, got, side="right") - 1
        for p in np.unique(part).tolist():
            sel = np.nonzero(part == p)[0]
            out[sel] = self._vecs[p][got[sel] - bases[p]]
        return found, out

    def add(self, keys: list[tuple[int, int, int]], vecs: np.ndarray) -> None:
        if not keys:
            return
        k = np.asarray(keys, dtype=np.int64).reshape(-1, 3)
        v = np.ascontiguousarray(vecs, dtype=np.float32)
        if self.directory is not None:
            self._write(k, v)
        self._append(k, v)
