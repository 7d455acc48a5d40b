"""An opened index: the one way into an index directory's files.

``Index.open`` reads the manifest (its seal and the consistency of its sections, see ``freqindex.manifest``)
and compares every file it lists with the disk (presence and size, one ``stat`` each), so a damaged index is
refused with a one-line error naming the file instead of answering wrongly or crashing. Everything else
reads the index through this class: the shard arrays and the infini-gram engine, stored text, the docs table,
the concept tables, the vectors, and the eval outputs declared in ``evals/catalog.json``. What exists is read
from the manifest (file lists, pointer widths, token width, normalization), never guessed from file names or
sizes.
"""

from __future__ import annotations

import json
import math
import os
import re
import tempfile
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np

from freqindex import manifest as _manifest
from freqindex import settings
from freqindex.errors import IndexDamagedError, UsageError
from freqindex.manifest import (
    EVAL_KINDS,
    EVALS_DIR,
    SEAL_KEY,
    eval_name_problem,
    read_evals_catalog,
    read_manifest,
    register_eval_output,
    shard_files,
    stage_parts,
)
from freqindex.text.normalize import get_normalizer
from freqindex.text.tokenizers import WIDTH_DTYPES, load_tokenizer, separator

# infini-gram's engine sorts the files of an index directory by substrings of their *full* path, so a
# parent directory named e.g. "stable" or "offsets" would confuse it. Such paths are opened through a
# neutral directory of symbolic links.
_ENGINE_MARKERS = ("tokenized", "table", "offset", "metadata", "metaoff")


def _map(path: Path, dtype: str) -> np.ndarray:
    """A read-only map of a file of ``dtype`` values (shared page cache, nothing copied per process); an empty
    file, which cannot be mapped, reads as an empty array."""
    if os.path.getsize(path) == 0:
        return np.zeros(0, dtype)
    return np.memmap(path, dtype=dtype, mode="r")


@dataclass
class Shard:
    """One shard's memory-mapped files. Local document indexes run 0 .. n_docs-1; global doc_id =
    doc_start + local index. Pointers are byte offsets into ``ds`` (``tokenized.N``)."""

    shard: int
    doc_start: int
    n_docs: int
    ds: np.memmap
    offsets: np.ndarray
    table: np.memmap
    ptr_size: int
    metadata: np.memmap
    metaoff: np.ndarray
    sample: np.ndarray | None = None  # sa/sample.N (words, then pointers), in an index built with one
    sample_step: int | None = None

    def doc_bounds(self, local_ix: int, width: int) -> tuple[int, int]:
        """Byte range of a document's tokens (separator excluded)."""
        start = int(self.offsets[local_ix]) + width
        end = int(self.offsets[local_ix + 1]) if local_ix + 1 < self.n_docs else int(self.ds.shape[0])
        return start, end

    def pointers(self, lo: int, hi: int) -> np.ndarray:
        """Suffix-array entries [lo, hi) as byte offsets into ``tokenized`` (in suffix order)."""
        ps = self.ptr_size
        raw = np.asarray(self.table[lo * ps : hi * ps]).reshape(-1, ps)
        buf = np.zeros((hi - lo, 8), dtype=np.uint8)
        buf[:, :ps] = raw
        return buf.view("<u8").ravel()

    def doc_of(self, ptrs: np.ndarray) -> np.ndarray:
        """Local document index of every pointer (vectorized)."""
        return np.searchsorted(self.offsets, ptrs, side="right").astype(np.int64) - 1

    def meta(self, local_ix: int) -> dict:
        """The document's JSON metadata: doc_id, source, line, id (the external id)."""
        start = int(self.metaoff[local_ix])
        end = int(self.metaoff[local_ix + 1]) if local_ix + 1 < self.n_docs else int(self.metadata.shape[0])
        return json.loads(bytes(self.metadata[start:end]))


@dataclass(frozen=True)
class Vectors:
    """The FAISS index of an embedded index and, per vector id, its document and window (characters of the
    stored text)."""

    faiss_index: object
    doc_id: np.ndarray
    char_start: np.ndarray
    char_end: np.ndarray


class Index:
    """A complete index directory, opened read-only. Safe to share between threads for queries."""

    def __init__(self, path: str | Path, manifest: dict):
        """Wrap an already read and checked manifest; use ``Index.open`` to open a directory."""
        self.path = Path(path).resolve()
        self.manifest = manifest
        tok = manifest["tokenizer"]
        self.width: int = tok["width"]
        self.dtype = WIDTH_DTYPES[self.width]
        self.normalizer = get_normalizer(manifest["normalization"]["name"])
        self._lock = threading.RLock()  # re-entrant: library calls that lock may run under a caller's lock
        self._engine_tmp: tempfile.TemporaryDirectory | None = None
        self._shards: dict[int, Shard] = {}

    @classmethod
    def open(cls, path: str | Path, *, check_files: bool = True, replacing: str | None = None) -> Index:
        """Open an index: the manifest must be of this schema, match its seal and be consistent, and (with
        ``check_files``) every file it lists must exist with its listed size. ``replacing`` names an add-on
        stage (``concepts``, ``vectors``) that the caller is about to rebuild: its files are not checked.
        Raises ``IndexNotFoundError`` or ``IndexDamagedError`` (one line, naming the file or field)."""
        m = read_manifest(path)
        if check_files:
            _manifest.check_files(path, m, skip_prefix=f"{replacing}/" if replacing else None)
        return cls(path, m)

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def manifest_sha256(self) -> str:
        """The manifest's seal: identifies exactly what this index holds (changes when tag or embed run)."""
        return self.manifest[SEAL_KEY]

    @property
    def total_docs(self) -> int:
        return int(self.manifest["counts"]["documents"])

    # --- files -----------------------------------------------------------------------------------------

    def file(self, rel: str) -> Path:
        """The absolute path of a file the manifest lists (index-relative ``rel``)."""
        if rel not in self.manifest["files"]:
            raise UsageError(f"{self.path} has no {rel} (not in its manifest)")
        return self.path / rel

    def files_under(self, folder: str) -> list[Path]:
        """The manifest-listed files under ``folder`` (e.g. ``docs``), sorted by name."""
        prefix = folder.rstrip("/") + "/"
        return [self.path / rel for rel in sorted(self.manifest["files"]) if rel.startswith(prefix)]

    # --- shards and the engine -------------------------------------------------------------------------

    @cached_property
    def tokenizer(self):
        tok = self.manifest["tokenizer"]
        if tok["name"] == "bytes":
            return load_tokenizer("bytes")
        return load_tokenizer(tok["name"], str(self.file(tok["file"])))

    @cached_property
    def shards(self) -> list[Shard]:
        """The shards in the engine's order: infini-gram sorts shard files by name as strings (0, 1, 10, 11,
        2, ...), so position ``i`` here is ``segment_by_shard[i]`` / ``ptrs_by_shard[i]`` of the engine and of
        ``freqindex.suffix.matching``. Look a shard up by number with ``shard(n)``."""
        return [
            self.shard(s["shard"]) for s in sorted(self.manifest["shards"], key=lambda s: str(s["shard"]))
        ]

    def shard(self, number: int) -> Shard:
        """The shard numbered ``number`` in the manifest, opened on first use (a stage task that reads one
        shard maps only that shard's files)."""
        with self._lock:
            sh = self._shards.get(number)
            if sh is None:
                info = next((s for s in self.manifest["shards"] if s["shard"] == number), None)
                if info is None:
                    raise UsageError(f"{self.path} has no shard {number}")
                step = info.get("sample_step")
                f = shard_files(number, sampled=step is not None)
                sh = self._shards[number] = Shard(
                    shard=number,
                    doc_start=info["doc_start"],
                    n_docs=info["n_docs"],
                    ds=np.memmap(self.file(f["tokenized"]), dtype=np.uint8, mode="r"),
                    offsets=_map(self.file(f["offset"]), "<u8"),
                    table=np.memmap(self.file(f["table"]), dtype=np.uint8, mode="r"),
                    ptr_size=info["ptr_size"],
                    metadata=np.memmap(self.file(f["metadata"]), dtype=np.uint8, mode="r"),
                    metaoff=_map(self.file(f["metaoff"]), "<u8"),
                    sample=_map(self.file(f["sample"]), "<u8") if step is not None else None,
                    sample_step=step,
                )
            return sh

    def _engine_dir(self) -> str:
        sa = str(self.path / "sa")
        if not any(m in sa for m in _ENGINE_MARKERS):
            return sa
        while True:
            tmp = tempfile.TemporaryDirectory(prefix="fqx-")
            if not any(m in tmp.name for m in _ENGINE_MARKERS):
                break
            tmp.cleanup()
        for rel in sorted(self.manifest["files"]):
            if rel.startswith("sa/"):
                os.symlink(self.path / rel, os.path.join(tmp.name, rel.split("/", 1)[1]))
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

    # --- suffix-array ranges -> documents --------------------------------------------------------------

    def _check_ptr_budget(self, ranges: Sequence[tuple[int, int]]) -> None:
        total = sum(max(0, hi - lo) for lo, hi in ranges)
        if total > settings.MAX_DOC_PTRS:
            raise UsageError(
                f"too many occurrences ({total:,}) to collect their documents "
                f"(limit {settings.MAX_DOC_PTRS:,}); narrow the query"
            )

    def docs_per_shard(self, ranges: Sequence[tuple[int, int]]) -> list[np.ndarray]:
        """Per shard (in ``shards`` order), the sorted distinct local document indexes of the suffix-array
        range ``ranges[i] = (lo, hi)`` of that shard (the engine's ``segment_by_shard``). Raises
        ``UsageError`` past ``settings.MAX_DOC_PTRS`` entries in all."""
        from freqindex.suffix import search  # the compiled kernels (numba) behind every range -> documents

        self._check_ptr_budget(ranges)
        return [search.range_doc_ids(self, s, int(lo), int(hi)) for s, (lo, hi) in enumerate(ranges)]

    def doc_ids(self, ranges: Sequence[tuple[int, int]]) -> np.ndarray:
        """The sorted distinct global doc ids of the suffix-array ranges (one per shard, as in
        ``docs_per_shard``)."""
        found = zip(self.shards, self.docs_per_shard(ranges))
        parts = [d + sh.doc_start for sh, d in sorted(found, key=lambda x: x[0].doc_start) if d.size]
        if not parts:
            return np.zeros(0, dtype=np.int64)
        return np.concatenate(parts)  # shards hold disjoint ranges of ids, taken in doc_id order

    def hits_per_shard(self, ranges: Sequence[tuple[int, int]]) -> list[tuple[np.ndarray, np.ndarray]]:
        """Per shard (in ``shards`` order), the byte offsets of its range's suffixes in text order and each
        one's local document index (so both arrays are sorted)."""
        from freqindex.suffix import search

        self._check_ptr_budget(ranges)
        out = []
        for s, (lo, hi) in enumerate(ranges):
            ptrs = search.range_positions(self, s, int(lo), int(hi))
            out.append((ptrs, np.searchsorted(search.doc_starts(self, s), ptrs, side="right") - 1))
        return out

    # --- stored text -----------------------------------------------------------------------------------

    def decode(self, raw: bytes, *, cut: bool = False) -> str:
        """Text of stored token bytes, with the index's own tokenizer. ``cut``: ``raw`` may start or end
        inside a character (a snippet's edges); for byte tokens the partial characters are dropped."""
        if cut and self.width == 1:
            return raw.decode("utf-8", errors="ignore")
        return self.tokenizer.decode(raw)

    def doc_location(self, doc_id: int) -> tuple[Shard, int]:
        """(shard, local index) of a global doc id."""
        for info in self.manifest["shards"]:
            if info["doc_start"] <= doc_id < info["doc_start"] + info["n_docs"]:
                return self.shard(info["shard"]), doc_id - info["doc_start"]
        raise UsageError(f"doc_id {doc_id} is out of range")

    def doc_text(self, doc_id: int) -> str:
        """The stored (normalized, padded) text of one document."""
        sh, ix = self.doc_location(doc_id)
        a, b = sh.doc_bounds(ix, self.width)
        return self.decode(bytes(sh.ds[a:b]))

    def doc_texts(self, shard: Shard, lo: int, hi: int) -> list[str]:
        """The stored text of documents [lo, hi) of a shard."""
        out = []
        for ix in range(lo, hi):
            a, b = shard.doc_bounds(ix, self.width)
            out.append(self.decode(bytes(shard.ds[a:b])))
        return out

    def text_block(self, shard: Shard, lo: int, hi: int) -> tuple[str, np.ndarray]:
        """Documents [lo, hi) of a shard as one string, each preceded by a newline, and the character offsets
        of those newlines. A stored ``simple`` document holds no newline, so no whole-word pattern matches
        across two documents; one bytes read and one decode for the whole block."""
        if self.width == 1 and hi > lo:
            start = int(shard.offsets[lo])
            end = int(shard.offsets[hi]) if hi < shard.n_docs else int(shard.ds.shape[0])
            text = self.decode(bytes(shard.ds[start:end]).replace(separator(1), b"\n"))
            starts = np.fromiter((m.start() for m in re.finditer("\n", text)), dtype=np.int64)
            if starts.size == hi - lo:
                return text, starts
        texts = self.doc_texts(shard, lo, hi)  # documents that hold newlines themselves
        lengths = np.fromiter((len(t) + 1 for t in texts), dtype=np.int64, count=len(texts))
        return "".join("\n" + t for t in texts), np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(
            np.int64
        )

    def plan_blocks(self, block_bytes: int) -> list[tuple[int, int, int]]:
        """(shard number, first local doc, end local doc) blocks of about ``block_bytes`` of stored tokens,
        in doc_id order: the task plan of the tag and embed stages."""
        tasks = []
        for info in self.manifest["shards"]:
            sh = self.shard(info["shard"])
            k = max(1, math.ceil(info["ds_bytes"] / block_bytes))
            targets = np.linspace(0, info["ds_bytes"], k + 1)[1:-1]
            cuts = sorted(set([0, *np.searchsorted(sh.offsets, targets).tolist(), sh.n_docs]))
            tasks.extend((sh.shard, a, b) for a, b in zip(cuts[:-1], cuts[1:]) if b > a)
        return tasks

    # --- tables ----------------------------------------------------------------------------------------

    def docs_table(self, columns: list[str] | None = None, shard: int | None = None):
        """The docs table (doc_id, shard, source, line, ext_id, n_bytes, n_tokens, content_hash, tags) as a
        pyarrow Table, of one shard or of all in doc_id order."""
        import pyarrow as pa
        import pyarrow.parquet as pq

        numbers = [s["shard"] for s in self.manifest["shards"]] if shard is None else [shard]
        parts = [pq.read_table(self.file(shard_files(n)["docs"]), columns=columns) for n in numbers]
        return parts[0] if len(parts) == 1 else pa.concat_tables(parts)

    def doc_tags(self, shard: Shard, lo: int, hi: int) -> list[list[str] | None]:
        """The image tags (``--tags-field``) of documents [lo, hi) of a shard."""
        col = self.docs_table(["tags"], shard.shard).column("tags")
        return col.slice(lo, hi - lo).to_pylist()

    def _stage(self, name: str, command: str) -> dict:
        section = self.manifest.get(name)
        if not section:
            raise UsageError(f"{self.path} has no {name}; run `freqindex {command} {self.path}` first")
        return section

    def concept_files(self) -> tuple[Path, list[Path]]:
        """(``concepts/vocab.parquet``, the hits parts in order) of a tagged index."""
        files = [self.file(rel) for rel in stage_parts(self._stage("concepts", "tag"), "concepts")]
        return files[0], files[1:]

    def concept_hits(self):
        """The concept hits (doc_id, concept_id, occurrences, in_tags) of a tagged index, as a pyarrow Table."""
        import pyarrow.dataset as ds

        _, hits = self.concept_files()
        return ds.dataset([str(p) for p in hits], format="parquet").to_table()

    def vector_files(self) -> tuple[Path, list[Path], list[Path]]:
        """(``vectors/index.faiss``, the vector parts ``.npy``, their window tables ``.parquet``), in order."""
        files = [self.file(rel) for rel in stage_parts(self._stage("vectors", "embed"), "vectors")]
        return files[0], files[1::2], files[2::2]

    @cached_property
    def vectors(self) -> Vectors:
        """The FAISS index and the window table of an embedded index (read once per opened Index)."""
        import pyarrow.dataset as ds

        from freqindex.vectors import ann

        faiss_path, _, metas = self.vector_files()
        faiss_index = ann.faiss_module().read_index(str(faiss_path))
        meta = ds.dataset([str(p) for p in metas], format="parquet").to_table()
        if meta.num_rows != faiss_index.ntotal:
            raise IndexDamagedError(
                f"damaged index {self.path}: vectors/ has {meta.num_rows} windows but {faiss_index.ntotal} vectors"
            )
        return Vectors(
            faiss_index,
            meta.column("doc_id").to_numpy(),
            meta.column("char_start").to_numpy(),
            meta.column("char_end").to_numpy(),
        )

    # --- eval outputs (the declared evals/ area) -------------------------------------------------------

    def eval_dir(self, eval_name: str, kind: str) -> Path:
        """The default folder of one eval command's reports: ``INDEX/evals/NAME/KIND``."""
        problem = eval_name_problem(eval_name)
        if problem:
            raise UsageError(problem)
        if kind not in EVAL_KINDS:
            raise ValueError(kind)
        return self.path / EVALS_DIR / eval_name / kind

    def publish_eval(self, eval_name: str, kind: str, table, report_dir: str | Path | None = None) -> Path:
        """Write ``table`` (pyarrow) as ``INDEX/evals/NAME/KIND.parquet``, the table the ``KIND`` SQL view reads,
        and declare it in ``evals/catalog.json`` together with the files of ``report_dir`` when that lies in
        the evals area (the default report folder). The index's own files and manifest are never touched.
        Returns the table's path."""
        import pyarrow.parquet as pq

        folder = self.eval_dir(eval_name, kind).parent
        path = folder / f"{kind}.parquet"
        try:
            folder.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(path.name + ".tmp")
            pq.write_table(table, tmp)
            os.replace(tmp, path)
        except OSError as exc:
            raise UsageError(
                f"cannot write eval outputs into {self.path / EVALS_DIR}: {exc.strerror} (a read-only index?)"
            ) from None
        paths = [path]
        if report_dir is not None:
            rd = Path(report_dir).resolve()
            if rd.is_relative_to(self.path / EVALS_DIR) and rd.is_dir():
                paths += [p for p in rd.rglob("*") if p.is_file()]
        register_eval_output(self.path, eval_name, kind, path.relative_to(self.path).as_posix(), paths)
        return path

    def eval_tables(self, kind: str) -> list[Path]:
        """The declared tables of one kind of eval output (``neighbors``, ``contamination``, ``analysis``),
        one per eval name; each must still have its catalogued size."""
        cat = read_evals_catalog(self.path)
        out = []
        for _, entry in sorted(cat["outputs"].items()):
            if entry.get("kind") != kind:
                continue
            rel = entry["table"]
            p = self.path / rel
            size = entry["files"][rel]["size"]
            if not p.is_file() or p.stat().st_size != size:
                raise IndexDamagedError(
                    f"{self.path}: eval output {rel} is missing or not the size evals/catalog.json records; "
                    f"rerun the {kind} command for {entry['eval']!r}"
                )
            out.append(p)
        return out
