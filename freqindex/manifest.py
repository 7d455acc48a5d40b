"""The index's manifests: ``manifest.json`` (the immutable core) and ``evals/catalog.json`` (the declared area of
derived eval outputs). Read, check, seal, write atomically (last), verify.

Both files carry a sha256 of their own canonical content (``manifest_sha256``), so a hand edit is refused.
Beyond the seal, ``check_manifest`` checks the sections against each other (token width, dtype, engine
parameters, shard sizes and document ranges, every shard file listed): these are the checks that also catch
a tool that writes an inconsistent manifest and seals it. ``check_files`` compares every listed file's
presence and size with the disk (cheap: one ``stat`` each; ``Index.open`` runs it), and ``verify`` adds the
full sha256 of every file and content checks of the document offsets and the docs table.

An index grows by generations (``freqindex build NEW --append-to INDEX``, ``freqindex.build.append``): the
``generations`` section lists them in order, each a contiguous run of shards with its documents, counts,
quarantine file (``generation_quarantine``) and input files (path, size, sha256); the top-level ``counts``
are their sums. A manifest without the section (built before appends existed) is one generation.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import fcntl
import hashlib
import json
import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np

from freqindex import settings
from freqindex.errors import BuildError, CheckFailedError, IndexDamagedError, IndexNotFoundError
from freqindex.fsutil import atomic_write_json, fsync_dir, sha256_file

SEAL_KEY = "manifest_sha256"
SHARD_FILE_KINDS = ("tokenized", "offset", "metadata", "metaoff", "table")
ENGINE_VERSION = 4
WIDTH_DTYPE_NAMES = {1: "u8", 2: "u16", 4: "u32"}
QUARANTINE_FILE = "quarantine/quarantine.parquet"
EVALS_DIR = "evals"
EVALS_CATALOG = "evals/catalog.json"
EVALS_FORMAT = "freqindex/evals"
EVAL_KINDS = ("neighbors", "contamination", "analysis", "concept_analysis", "distance")


# --- names --------------------------------------------------------------------------------------------------


def manifest_path(index_dir: str | Path) -> Path:
    return Path(index_dir) / settings.MANIFEST_NAME


def shard_files(shard: int, sampled: bool = False) -> dict[str, str]:
    """The index-relative paths of one shard's files: infini-gram's five (``tokenized`` ... ``table``), its
    search sample (``sample``, in a shard built with one: ``sampled``) and its part of the docs table
    (``docs``)."""
    out = {k: f"sa/{k}.{shard}" for k in SHARD_FILE_KINDS}
    if sampled:
        out["sample"] = f"sa/sample.{shard}"
    out["docs"] = f"docs/part-{shard:05d}.parquet"
    return out


def generation_quarantine(generation: int) -> str:
    """The quarantine file of one generation: the build's own is ``quarantine/quarantine.parquet``; every
    append adds one (``quarantine/quarantine-g00001.parquet``), so no earlier file is ever rewritten."""
    return QUARANTINE_FILE if generation == 0 else f"quarantine/quarantine-g{generation:05d}.parquet"


def engine_params(width: int) -> dict:
    """The infini-gram engine's settings for a token width: the largest id is the document separator, the
    one below it the engine's end-of-document id."""
    limit = {1: 255, 2: 65535, 4: 2**32 - 1}[width]
    return {"version": ENGINE_VERSION, "vocab_size": limit, "eos_token_id": limit - 1}


def stage_parts(section: dict, name: str) -> list[str]:
    """The index-relative files an add-on stage's manifest section vouches for (``concepts``, ``vectors``)."""
    n = int(section.get("parts", 0))
    if name == "concepts":
        return ["concepts/vocab.parquet"] + [f"concepts/hits/part-{i:05d}.parquet" for i in range(n)]
    if name == "vectors":
        return ["vectors/index.faiss"] + [
            f"vectors/part-{i:05d}{ext}" for i in range(n) for ext in (".npy", ".parquet")
        ]
    raise ValueError(name)


# --- the seal -----------------------------------------------------------------------------------------------


def content_sha256(doc: dict) -> str:
    """sha256 of the canonical JSON of ``doc`` without its seal (sorted keys, no whitespace, UTF-8)."""
    body = {k: v for k, v in doc.items() if k != SEAL_KEY}
    text = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def seal(doc: dict) -> dict:
    """``doc`` with its ``manifest_sha256`` set to the sha256 of its canonical content."""
    return {**doc, SEAL_KEY: content_sha256(doc)}


# --- manifest.json ------------------------------------------------------------------------------------------


def read_manifest(index_dir: str | Path, *, check: bool = True) -> dict:
    """The manifest of a complete index. A directory without one is never treated as an index.

    An older schema is refused with a "rebuild" message (schema 1 recorded neither the pointer width of each
    shard nor the seal). With ``check`` (the default) the seal and the consistency of the sections are checked
    too (``IndexDamagedError`` naming what is wrong); ``check=False`` only parses (the build uses it to decide
    whether an existing output may be replaced)."""
    d = Path(index_dir)
    if not d.is_dir():
        raise IndexNotFoundError(f"no index at {index_dir}: not a directory")
    p = manifest_path(d)
    if not p.is_file():
        raise IndexNotFoundError(
            f"{index_dir} is not a complete freqindex index (no {settings.MANIFEST_NAME})"
        )
    try:
        raw = p.read_bytes()
    except OSError as exc:
        raise IndexDamagedError(f"unreadable manifest in {index_dir}: {exc}") from None
    return parse_manifest(raw, str(index_dir), check=check)


def parse_manifest(raw: bytes, where: str, *, check: bool = True) -> dict:
    """A manifest's bytes (from a local index or a store) parsed, with the checks of ``read_manifest``:
    format and schema, and with ``check`` its seal and the consistency of its sections."""
    try:
        m = json.loads(raw)
    except ValueError as exc:
        raise IndexDamagedError(f"unreadable manifest in {where}: {exc}") from None
    if not isinstance(m, dict) or m.get("format") != settings.INDEX_FORMAT:
        got = m.get("format") if isinstance(m, dict) else type(m).__name__
        raise IndexNotFoundError(f"{where}: manifest format {got!r} is not {settings.INDEX_FORMAT!r}")
    version = m.get("schema_version", 0)
    if not isinstance(version, int) or version > settings.SCHEMA_VERSION:
        raise IndexNotFoundError(
            f"{where}: manifest schema {version!r} is newer than this freqindex understands "
            f"({settings.SCHEMA_VERSION}); upgrade freqindex"
        )
    if version < settings.MIN_SCHEMA_VERSION and check:
        raise IndexNotFoundError(
            f"{where}: manifest schema {version} predates this freqindex (schema {settings.MIN_SCHEMA_VERSION} "
            "records each shard's pointer width and a checksum of the manifest); rebuild the index with "
            "`freqindex build ... --overwrite`"
        )
    if check:
        if m.get(SEAL_KEY) != content_sha256(m):
            raise IndexDamagedError(
                f"damaged index {where}: {settings.MANIFEST_NAME} does not match its {SEAL_KEY} "
                "(edited by hand?); restore it or rebuild the index"
            )
        problem = manifest_problem(m)
        if problem:
            raise IndexDamagedError(f"damaged index {where}: {problem}")
    return m


def write_manifest(index_dir: str | Path, manifest: dict) -> dict:
    """Seal ``manifest`` and write it atomically. Returns the sealed manifest."""
    sealed = seal(manifest)
    atomic_write_json(manifest_path(index_dir), sealed)
    return sealed


def _int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def manifest_problem(m: dict) -> str | None:
    """The first inconsistency between the manifest's sections (one line, naming the field), or None."""
    for key in ("config", "tokenizer", "normalization", "engine", "counts", "shards", "files"):
        if key not in m:
            return f"the manifest has no {key!r} section"
    files = m["files"]
    if not isinstance(files, dict):
        return "the manifest's files is not an object"
    for rel, meta in files.items():
        parts = Path(rel).parts
        if Path(rel).is_absolute() or ".." in parts or not parts:
            return f"the manifest lists a file outside the index: {rel!r}"
        if not isinstance(meta, dict) or not _int(meta.get("size")) or meta["size"] < 0:
            return f"the manifest's entry for {rel} has no valid size"
        if not isinstance(meta.get("sha256"), str) or len(meta["sha256"]) != 64:
            return f"the manifest's entry for {rel} has no valid sha256"
    tok = m["tokenizer"]
    width = tok.get("width")
    if width not in WIDTH_DTYPE_NAMES:
        return f"tokenizer width {width!r} is not 1, 2 or 4"
    if tok.get("dtype") != WIDTH_DTYPE_NAMES[width]:
        return f"tokenizer dtype {tok.get('dtype')!r} does not match its width {width} ({WIDTH_DTYPE_NAMES[width]})"
    if m.get("token_dtype") != tok["dtype"]:
        return f"token_dtype {m.get('token_dtype')!r} does not match the tokenizer's dtype {tok['dtype']!r}"
    if (tok.get("name") == "bytes") != (width == 1):
        return f"tokenizer {tok.get('name')!r} cannot have token width {width}"
    if (tok.get("name") == "bytes") != (m["config"].get("tokenizer") == "bytes"):
        return f"tokenizer {tok.get('name')!r} does not match the build config's {m['config'].get('tokenizer')!r}"
    if tok.get("name") != "bytes" and tok.get("file") not in files:
        return f"the tokenizer file {tok.get('file')!r} is not listed in the manifest's files"
    problem = _normalization_problem(m)
    if problem:
        return problem
    want = engine_params(width)
    for k, v in want.items():
        if m["engine"].get(k) != v:
            return f"engine {k} is {m['engine'].get(k)!r}; a {WIDTH_DTYPE_NAMES[width]} index needs {v}"
    return _shards_problem(m, width) or _stages_problem(m)


def _normalization_problem(m: dict) -> str | None:
    from freqindex.text.normalize import NORMALIZERS

    norm = m["normalization"]
    name = norm.get("name")
    if name not in NORMALIZERS:
        return f"normalization {name!r} is unknown (known: {', '.join(sorted(NORMALIZERS))})"
    if norm.get("version") != NORMALIZERS[name].version:
        return f"normalization {name} version {norm.get('version')!r} is not {NORMALIZERS[name].version}"
    if m["config"].get("normalize") != name:
        return f"normalization {name!r} does not match the build config's {m['config'].get('normalize')!r}"
    return None


def _shards_problem(m: dict, width: int) -> str | None:
    shards = m["shards"]
    files = m["files"]
    if not isinstance(shards, list) or not shards:
        return "the manifest lists no shards"
    next_doc = 0
    docs = tokens = 0
    for i, sh in enumerate(shards):
        if not isinstance(sh, dict):
            return f"shard entry {i} is not an object"
        for k in ("shard", "doc_start", "n_docs", "n_tokens", "ds_bytes", "ptr_size"):
            if not _int(sh.get(k)) or sh[k] < 0:
                return f"shard entry {i} has no valid {k}"
        step = sh.get("sample_step")
        if step is not None and (not _int(step) or step < 1 or step & (step - 1)):
            return f"shard entry {i} has sample_step {step!r}; it must be a power of two"
        s = sh["shard"]
        if s != i:
            return f"shard entry {i} is numbered {s}; shards must be numbered 0, 1, ... in order"
        if sh["doc_start"] != next_doc:
            return f"shard {s} doc_start is {sh['doc_start']}, expected {next_doc} (where the previous shard ends)"
        if sh["n_docs"] < 1:
            return f"shard {s} has n_docs {sh['n_docs']}; every shard holds at least one document"
        if sh["ds_bytes"] != (sh["n_tokens"] + sh["n_docs"]) * width:
            return (
                f"shard {s} ds_bytes {sh['ds_bytes']} is not (n_tokens {sh['n_tokens']} + n_docs {sh['n_docs']}) "
                f"x width {width}"
            )
        if not 1 <= sh["ptr_size"] <= 8 or 256 ** sh["ptr_size"] < sh["ds_bytes"]:  # offsets < ds_bytes
            return f"shard {s} ptr_size {sh['ptr_size']} cannot address its {sh['ds_bytes']} bytes"
        want = {
            "tokenized": sh["ds_bytes"],
            "offset": 8 * sh["n_docs"],
            "metaoff": 8 * sh["n_docs"],
            "table": sh["ptr_size"] * (sh["ds_bytes"] // width),
            "metadata": None,
            "docs": None,
            "sample": 16 * -(-(sh["ds_bytes"] // width) // step) if step else None,
        }
        for kind, rel in shard_files(s, sampled=step is not None).items():
            if rel not in files:
                return f"{rel} (shard {s}) is not listed in the manifest's files"
            if want[kind] is not None and files[rel]["size"] != want[kind]:
                return (
                    f"{rel} is listed with {files[rel]['size']} bytes but shard {s} needs {want[kind]} "
                    f"(n_docs {sh['n_docs']}, ds_bytes {sh['ds_bytes']}, ptr_size {sh['ptr_size']})"
                )
        next_doc += sh["n_docs"]
        docs += sh["n_docs"]
        tokens += sh["n_tokens"]
    counts = m["counts"]
    if counts.get("documents") != docs:
        return f"counts.documents is {counts.get('documents')!r} but the shards hold {docs} documents"
    if counts.get("tokens") != tokens:
        return f"counts.tokens is {counts.get('tokens')!r} but the shards hold {tokens} tokens"
    known = {rel for sh in shards for rel in shard_files(sh["shard"], "sample_step" in sh).values()}
    for rel in files:
        if rel.startswith(("sa/", "docs/")) and rel not in known:
            return f"{rel} is listed in the manifest's files but belongs to no shard"
    if QUARANTINE_FILE not in files:
        return f"{QUARANTINE_FILE} is not listed in the manifest's files"
    return _generations_problem(m)


def _generations_problem(m: dict) -> str | None:
    """``generations`` (absent in an index built before appends existed: one generation) must cover the shards
    in order, each a contiguous run of them, and name its quarantine file."""
    gens = m.get("generations")
    if gens is None:
        return None
    shards, files = m["shards"], m["files"]
    if not isinstance(gens, list) or not gens:
        return "the manifest's generations is not a non-empty list"
    next_shard = 0
    for i, g in enumerate(gens):
        if not isinstance(g, dict):
            return f"generation entry {i} is not an object"
        for k in ("generation", "first_shard", "n_shards", "doc_start", "n_docs"):
            if not _int(g.get(k)) or g[k] < 0:
                return f"generation entry {i} has no valid {k}"
        if g["generation"] != i:
            return f"generation entry {i} is numbered {g['generation']}; generations are numbered 0, 1, ..."
        if g["first_shard"] != next_shard or g["n_shards"] < 1:
            return f"generation {i} starts at shard {g['first_shard']}, expected {next_shard} (at least one shard each)"
        last = g["first_shard"] + g["n_shards"]
        if last > len(shards):
            return f"generation {i} names shards up to {last - 1}; the manifest lists {len(shards)}"
        run = shards[g["first_shard"] : last]
        if g["doc_start"] != run[0]["doc_start"] or g["n_docs"] != sum(sh["n_docs"] for sh in run):
            return f"generation {i} doc_start/n_docs do not match its shards"
        q = g.get("quarantine")
        if q != generation_quarantine(i) or q not in files:
            return f"generation {i} quarantine {q!r} is not {generation_quarantine(i)} listed in the manifest's files"
        next_shard = last
    if next_shard != len(shards):
        return f"the generations cover {next_shard} shards; the manifest lists {len(shards)}"
    return None


def _stages_problem(m: dict) -> str | None:
    files = m["files"]
    for name in ("concepts", "vectors"):
        section = m.get(name)
        listed = {rel for rel in files if rel.startswith(f"{name}/")}
        if section is None:
            if listed:
                return f"{sorted(listed)[0]} is listed but the manifest has no {name!r} section"
            continue
        if not _int(section.get("parts")) or section["parts"] < 0:
            return f"the {name} section has no valid parts count"
        want = stage_parts(section, name)
        for rel in want:
            if rel not in files:
                return f"{rel} ({name}) is not listed in the manifest's files"
        extra = sorted(listed - set(want))
        if extra:
            return f"{extra[0]} is listed in the manifest's files but the {name} section has no such part"
    return None


def check_files(index_dir: str | Path, manifest: dict, skip_prefix: str | None = None) -> None:
    """Every file the manifest lists exists with its listed size, and ``sa/`` holds nothing else (the
    engine opens every file there). One ``stat`` per file. Raises ``IndexDamagedError`` naming the first bad
    file. Files under ``skip_prefix`` are not checked (a stage that is about to replace them)."""
    root = Path(index_dir)
    for rel, meta in manifest["files"].items():
        if skip_prefix and rel.startswith(skip_prefix):
            continue
        try:
            st = os.stat(root / rel)
        except FileNotFoundError:
            raise IndexDamagedError(f"damaged index {root}: {rel} is missing") from None
        except OSError as exc:
            raise IndexDamagedError(f"damaged index {root}: cannot read {rel}: {exc.strerror}") from None
        if st.st_size != meta["size"]:
            raise IndexDamagedError(
                f"damaged index {root}: {rel} has {st.st_size} bytes, the manifest says {meta['size']} "
                "(restore the file or rebuild the index)"
            )
    listed = {rel.split("/", 1)[1] for rel in manifest["files"] if rel.startswith("sa/")}
    try:
        present = os.listdir(root / "sa")
    except OSError as exc:
        raise IndexDamagedError(f"damaged index {root}: cannot list sa/: {exc.strerror}") from None
    for name in sorted(present):
        if name not in listed:
            raise IndexDamagedError(
                f"damaged index {root}: sa/{name} is not in the manifest (the engine would read it); remove it"
            )


def verify(index_dir: str | Path, progress: Callable[[str, int], None] | None = None) -> dict:
    """Check the manifest (seal, consistency), every file it lists (size, then sha256), the content of the
    document offsets and the docs table against the shards, and the eval outputs declared in
    ``evals/catalog.json``. Raises ``CheckFailedError`` naming the first problem."""
    root = Path(index_dir)
    try:
        m = read_manifest(root)
        check_files(root, m)
    except IndexDamagedError as exc:
        raise CheckFailedError(f"verify failed: {exc}") from None
    files = m["files"]
    for rel, meta in sorted(files.items()):
        if sha256_file(root / rel) != meta["sha256"]:
            raise CheckFailedError(f"verify failed: {rel} does not match its sha256 in the manifest")
        if progress:
            progress(rel, meta["size"])
    problem = _content_problem(root, m)
    if problem:
        raise CheckFailedError(f"verify failed: {problem}")
    evals = verify_evals(root)
    return {
        "index": str(root),
        "files_checked": len(files),
        "bytes_checked": sum(v["size"] for v in files.values()),
        "eval_outputs_checked": evals["outputs"],
        "eval_files_checked": evals["files"],
        "ok": True,
    }


def _content_problem(root: Path, m: dict) -> str | None:
    """Checks of file contents the sha256 cannot make (it only proves the files are the ones the manifest
    was written with): offsets start at 0 and rise, every document starts with the separator, a stored search
    sample is the one its suffix array gives, the docs
    table holds each shard's document ids, and sampled stored documents are fixed points of the recorded
    normalization."""
    import pyarrow.parquet as pq

    from freqindex.text.normalize import get_normalizer
    from freqindex.text.tokenizers import load_tokenizer, separator

    width = m["tokenizer"]["width"]
    sep = np.frombuffer(separator(width), dtype=np.uint8)
    norm = get_normalizer(m["normalization"]["name"])
    tok = m["tokenizer"]
    tokenizer = (
        load_tokenizer("bytes")
        if tok["name"] == "bytes"
        else load_tokenizer(tok["name"], str(root / tok["file"]))
    )
    # only bytes + a real normalization can be checked by content: Hugging Face decoding need not round-trip
    sample = tok["name"] == "bytes" and norm.name != "none"
    for sh in m["shards"]:
        f = shard_files(sh["shard"])
        offsets = np.fromfile(root / f["offset"], dtype="<u8")
        ds = np.memmap(root / f["tokenized"], dtype=np.uint8, mode="r")
        if offsets[0] != 0 or np.any(np.diff(offsets.astype(np.int64)) < width):
            return f"{f['offset']} does not hold rising document offsets starting at 0"
        if int(offsets[-1]) + width > ds.shape[0]:
            return f"{f['offset']} points past the end of {f['tokenized']}"
        starts = offsets.astype(np.int64)[:, None] + np.arange(width)[None, :]
        if not np.array_equal(ds[starts], np.broadcast_to(sep, starts.shape)):
            return f"{f['offset']} does not point at a document separator for every document of shard {sh['shard']}"
        if sh.get("sample_step"):
            from freqindex.suffix.search import make_sample

            rel = shard_files(sh["shard"], sampled=True)["sample"]
            table = np.memmap(root / f["table"], dtype=np.uint8, mode="r")
            want = make_sample(table, sh["ptr_size"], ds, sh["sample_step"])
            if not np.array_equal(np.fromfile(root / rel, dtype="<u8"), want):
                return f"{rel} is not the sample of shard {sh['shard']}'s suffix array"
        ids = pq.read_table(root / f["docs"], columns=["doc_id"]).column(0).to_numpy()
        if not np.array_equal(ids, np.arange(sh["doc_start"], sh["doc_start"] + sh["n_docs"])):
            return (
                f"{f['docs']} does not hold doc_id {sh['doc_start']} .. {sh['doc_start'] + sh['n_docs'] - 1}"
            )
        ends = np.append(offsets[1:].astype(np.int64), ds.shape[0])
        for ix in np.unique(np.linspace(0, sh["n_docs"] - 1, num=min(sh["n_docs"], 32)).astype(np.int64)):
            text = tokenizer.decode(bytes(ds[int(offsets[ix]) + width : int(ends[ix])]))
            if sample and norm.stored_document(text) != text:
                return (
                    f"document {sh['doc_start'] + int(ix)} of shard {sh['shard']} is not normalized with "
                    f"{norm.name!r}, the normalization the manifest records"
                )
    return None


def publish_stage(index_dir: str | Path, work: Path, name: str, section: dict) -> dict:
    """Move a finished add-on stage (``work``, a directory inside the index) to ``INDEX/name`` and replace the
    manifest atomically: the stage's files (sizes, sha256) replace any earlier ones under ``name/``, and
    ``section`` (stamped with the time) becomes the manifest's ``name`` entry. Every other file of the index
    stays as it was. The new manifest is checked before it replaces the old one. Returns the new manifest."""
    root = Path(index_dir).resolve()
    m = read_manifest(root)
    final = root / name
    old = root / f".{name}.old"
    files = {k: v for k, v in m["files"].items() if not k.startswith(f"{name}/")}
    for p in sorted(x for x in work.rglob("*") if x.is_file()):
        files[f"{name}/{p.relative_to(work).as_posix()}"] = {
            "size": p.stat().st_size,
            "sha256": sha256_file(p),
        }
    new = {
        **m,
        "files": files,
        name: {**section, "added": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds")},
    }
    problem = manifest_problem(new)
    if problem:
        raise BuildError(f"the {name} stage produced an inconsistent index: {problem}")
    shutil.rmtree(old, ignore_errors=True)
    if final.exists():
        os.replace(final, old)
    os.replace(work, final)
    new = write_manifest(root, new)
    fsync_dir(root)
    shutil.rmtree(old, ignore_errors=True)
    return new


# --- evals/catalog.json -------------------------------------------------------------------------------------


def read_evals_catalog(index_dir: str | Path) -> dict:
    """The catalogue of eval outputs under ``INDEX/evals/`` (empty when nothing was written). Raises
    ``IndexDamagedError`` when it is unreadable or does not match its seal."""
    root = Path(index_dir)
    p = root / EVALS_CATALOG
    if not p.is_file():
        return {"format": EVALS_FORMAT, "schema_version": 1, "outputs": {}}
    try:
        cat = json.loads(p.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise IndexDamagedError(f"unreadable {EVALS_CATALOG} in {root}: {exc}") from None
    if (
        not isinstance(cat, dict)
        or cat.get("format") != EVALS_FORMAT
        or not isinstance(cat.get("outputs"), dict)
    ):
        raise IndexDamagedError(f"{root}: {EVALS_CATALOG} is not a freqindex eval catalogue")
    if cat.get(SEAL_KEY) != content_sha256(cat):
        raise IndexDamagedError(
            f"{root}: {EVALS_CATALOG} does not match its {SEAL_KEY} (edited by hand?); rerun the eval "
            "commands or remove the evals/ directory"
        )
    return cat


def eval_name_problem(eval_name: str) -> str | None:
    if not eval_name or eval_name.startswith(".") or any(c in eval_name for c in "/\\\0"):
        return (
            f"{eval_name!r} cannot name a folder of eval outputs (empty, hidden, or holding a path separator)"
        )
    return None


@contextlib.contextmanager
def _evals_lock(root: Path) -> Iterator[None]:
    lock = root / EVALS_DIR / ".catalog.lock"
    with open(lock, "a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def register_eval_output(
    index_dir: str | Path, eval_name: str, kind: str, table: str, paths: list[Path]
) -> dict:
    """Declare the outputs of one eval command run in ``evals/catalog.json`` (size and sha256 of each file,
    the table the SQL view of ``kind`` reads, the index manifest's seal). A later run of the same eval name and
    kind replaces the entry. Concurrent runs are serialized by a lock file; the catalogue is replaced
    atomically. Returns the entry."""
    root = Path(index_dir).resolve()
    m = read_manifest(root)
    entry = {
        "eval": eval_name,
        "kind": kind,
        "table": table,
        "files": {
            p.relative_to(root).as_posix(): {"size": p.stat().st_size, "sha256": sha256_file(p)}
            for p in sorted(paths)
        },
        "index_manifest_sha256": m[SEAL_KEY],
        "written": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
    }
    with _evals_lock(root):
        cat = read_evals_catalog(root)
        cat["outputs"][f"{eval_name}/{kind}"] = entry
        atomic_write_json(root / EVALS_CATALOG, seal(cat))
    return entry


def verify_evals(index_dir: str | Path) -> dict:
    """sha256 of every file ``evals/catalog.json`` declares. Raises ``CheckFailedError`` naming a bad one."""
    root = Path(index_dir)
    try:
        cat = read_evals_catalog(root)
    except IndexDamagedError as exc:
        raise CheckFailedError(f"verify failed: {exc}") from None
    n = 0
    for key, entry in sorted(cat["outputs"].items()):
        for rel, meta in sorted(entry["files"].items()):
            p = root / rel
            if not p.is_file():
                raise CheckFailedError(f"verify failed: {rel} (eval output {key}) is missing")
            if p.stat().st_size != meta["size"] or sha256_file(p) != meta["sha256"]:
                raise CheckFailedError(
                    f"verify failed: {rel} (eval output {key}) does not match {EVALS_CATALOG}"
                )
            n += 1
    return {"outputs": len(cat["outputs"]), "files": n}
