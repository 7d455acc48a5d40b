"""An opened index: manifest, normalizer, tokenizer, the infini-gram engine, and memory-mapped shard arrays."""

from __future__ import annotations

import json
import os
import tempfile
import threading
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np

from freqindex.errors import UsageError
from freqindex.manifest import read_manifest
from freqindex.text.normalize import get_normalizer
from freqindex.text.tokenizers import WIDTH_DTYPES, load_tokenizer

# infini-gram's engine sorts the files of an index directory by substrings of their *full* path, so a
# parent directory named e.g. "stable" or "offsets" would confuse it. Such paths are opened through a
# neutral directory of symbolic links.
_ENGINE_MARKERS = ("tokenized", "table", "offset", "metadata", "metaoff")


@dataclass
class Shard:
    shard: int
    doc_start: int
    n_docs: int
    ds: np.memmap
    offsets: np.ndarray
    table: np.memmap
    ptr_size: int
    metadata: np.memmap
    metaoff: np.ndarray

    def doc_bounds(self, local_ix: int, width: int) -> tuple[int, int]:
        """Byte range of a document's tokens (separator excluded)."""
        start = int(self.offsets[local_ix]) + width
        end = int(self.offsets[local_ix + 1]) if local_ix + 1 < self.n_docs else int(self.ds.shape[0])
        return start, end

    def pointers(self, lo: int, hi: int) -> np.ndarray:
        """Suffix-array entries [lo, hi) as byte offsets into ``tokenized``."""
        ps = self.ptr_size
        raw = np.asarray(self.table[lo * ps : hi * ps]).reshape(-1, ps)
        buf = np.zeros((hi - lo, 8), dtype=np.uint8)
        buf[:, :ps] = raw
        return buf.view("<u8").ravel()

    def doc_of(self, ptrs: np.ndarray) -> np.ndarray:
        """Local document index of every pointer (vectorized)."""
        return np.searchsorted(self.offsets, ptrs, side="right").astype(np.int64) - 1

    def meta(self, local_ix: int) -> dict:
        start = int(self.metaoff[local_ix])
        end = int(self.metaoff[local_ix + 1]) if local_ix + 1 < self.n_docs else int(self.metadata.shape[0])
        return json.loads(bytes(self.metadata[start:end]))


class Index:
    """A complete index directory, opened read-only. Safe to share between threads for queries."""

    def __init__(self, path: str | Path, manifest: dict):
        self.path = Path(path).resolve()
        self.manifest = manifest
        tok = manifest["tokenizer"]
        self.width: int = tok["width"]
        self.dtype = WIDTH_DTYPES[self.width]
        self.normalizer = get_normalizer(manifest["normalization"]["name"])
        self._lock = threading.RLock()  # re-entrant: library calls that lock may run under a caller's lock
        self._engine_tmp: tempfile.TemporaryDirectory | None = None

    @classmethod
    def open(cls, path: str | Path) -> Index:
        return cls(path, read_manifest(path))

    @property
    def name(self) -> str:
        return self.path.name

    @cached_property
    def tokenizer(self):
        tok = self.manifest["tokenizer"]
        if tok["name"] == "bytes":
            return load_tokenizer("bytes")
        return load_tokenizer(tok["name"], str(self.path / tok["file"]))

    @cached_property
    def shards(self) -> list[Shard]:
        out = []
        sa = self.path / "sa"
        for info in self.manifest["shards"]:
            s = info["shard"]
            ds = np.memmap(sa / f"tokenized.{s}", dtype=np.uint8, mode="r")
            table = np.memmap(sa / f"table.{s}", dtype=np.uint8, mode="r")
            tok_cnt = ds.shape[0] // self.width
            out.append(
                Shard(
                    shard=s,
                    doc_start=info["doc_start"],
                    n_docs=info["n_docs"],
                    ds=ds,
                    offsets=np.fromfile(sa / f"offset.{s}", dtype="<u8"),
                    table=table,
                    ptr_size=table.shape[0] // tok_cnt,
                    metadata=np.memmap(sa / f"metadata.{s}", dtype=np.uint8, mode="r"),
                    metaoff=np.fromfile(sa / f"metaoff.{s}", dtype="<u8"),
                )
            )
        return out

    def _engine_dir(self) -> str:
        sa = str(self.path / "sa")
        if not any(m in sa for m in _ENGINE_MARKERS):
            return sa
        while True:
            tmp = tempfile.TemporaryDirectory(prefix="fqx-")
            if not any(m in tmp.name for m in _ENGINE_MARKERS):
                break
            tmp.cleanup()
        for name in os.listdir(sa):
            os.symlink(os.path.join(sa, name), os.path.join(tmp.name, name))
        self._engine_tmp = tmp
        return tmp.name

    @cached_property
    def engine(self):
        from infini_gram.engine import InfiniGramEngine

        eng = self.manifest["engine"]
        return InfiniGramEngine(
            index_dir=self._engine_dir(),
            eos_token_id=eng["eos_token_id"],
            vocab_size=eng["vocab_size"],
            version=eng["version"],
            token_dtype=self.manifest["tokenizer"]["dtype"],
        )

    def encode_query(self, text: str) -> list[int]:
        """Token ids of a query term, after the index's own query normalization."""
        if not text:
            raise UsageError("empty query")
        norm = self.normalizer.query(text)
        if not norm:
            raise UsageError(f"query {text!r} is empty after normalization")
        data = self.tokenizer.encode(norm)
        if not data:
            raise UsageError(f"query {text!r} has no tokens after tokenization")
        if self.width == 1:
            return list(data)
        return np.frombuffer(data, dtype=self.dtype).tolist()

    def doc_location(self, doc_id: int) -> tuple[Shard, int]:
        for sh in self.shards:
            if sh.doc_start <= doc_id < sh.doc_start + sh.n_docs:
                return sh, doc_id - sh.doc_start
        raise UsageError(f"doc_id {doc_id} is out of range")

    def doc_text(self, doc_id: int) -> str:
        sh, ix = self.doc_location(doc_id)
        a, b = sh.doc_bounds(ix, self.width)
        return self.tokenizer.decode(bytes(sh.ds[a:b]))

    @property
    def total_docs(self) -> int:
        return int(self.manifest["counts"]["documents"])
