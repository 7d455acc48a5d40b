"""`info`, `verify` and `pull`: what an index holds, whether its files still match the manifest, and a
verified local copy of an index in object storage."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from freqindex import storage
from freqindex.errors import UsageError
from freqindex.manifest import read_manifest, verify


@dataclass(frozen=True)
class IndexConfig:
    """`info` and `verify`: the index directory or URL, and how a URL's filesystem is reached."""

    index_dir: str = ""
    storage_options: tuple[tuple[str, Any], ...] = field(default_factory=tuple)

    def validate(self) -> IndexConfig:
        if not self.index_dir:
            raise UsageError("give the index DIR")
        return self


@dataclass(frozen=True)
class InfoOutcome:
    manifest: dict
    rows: tuple[tuple[str, str], ...]  # the human summary: (label, value)


def run_info(cfg: IndexConfig) -> InfoOutcome:
    """The manifest, and a readable summary of it (documents, tokens, shards, tokenizer, normalization,
    input, quarantine, skipped files, size, tools). A URL's manifest is read in place: nothing is pulled."""
    remote = storage.is_url(cfg.index_dir)
    if remote:
        from freqindex.remote import remote_manifest

        m, _ = remote_manifest(cfg.index_dir, cfg.storage_options)
    else:
        m = read_manifest(cfg.index_dir)
    c = m["counts"]
    rows = (
        ("index", cfg.index_dir if remote else str(Path(cfg.index_dir).resolve())),
        ("created", m["created"]),
        ("documents", f"{c['documents']:,}"),
        ("tokens", f"{c['tokens']:,} ({m['token_dtype']})"),
        ("shards", str(len(m["shards"]))),
        ("tokenizer", m["tokenizer"]["name"]),
        ("normalization", f"{m['normalization']['name']} v{m['normalization']['version']}"),
        ("input files", f"{c['input_files']:,} ({c['input_bytes']:,} bytes of text)"),
        (
            "quarantined",
            f"{c['quarantined']:,}" + (f" {c['quarantine_by_reason']}" if c["quarantined"] else ""),
        ),
        ("blank lines", f"{c['blank_lines']:,}"),
        ("skipped files", _skipped_row(m.get("skipped_files") or [])),
        ("index bytes", f"{sum(f['size'] for f in m['files'].values()):,}"),
        ("tools", ", ".join(f"{k} {v}" for k, v in m["tools"].items())),
    )
    return InfoOutcome(m, rows)


def _skipped_row(skipped: list) -> str:
    """Input files found and not read: count, then name (reason); older manifests list bare paths."""
    if not skipped:
        return "0"
    from freqindex.corpus.readers import describe_skipped

    pairs = [(s["path"], s["reason"]) if isinstance(s, dict) else (s, "unknown format") for s in skipped]
    return f"{len(pairs):,}: {describe_skipped(pairs)}"


def run_verify(cfg: IndexConfig) -> dict:
    """The manifest (checksum, consistency), every file's size and sha256 against it, and the eval outputs
    declared in evals/catalog.json: ``{ok, files_checked, bytes_checked, eval_outputs_checked, ...}``; a
    mismatch raises CheckFailedError naming the first problem. A URL is checked in place (sizes, then sha256
    streamed from the store)."""
    if storage.is_url(cfg.index_dir):
        from freqindex.remote import verify_remote

        return verify_remote(cfg.index_dir, cfg.storage_options)
    return verify(cfg.index_dir)


@dataclass(frozen=True)
class PullConfig:
    """`pull`: copy the index at ``url`` into the local directory ``dest``, ``workers`` files at a time."""

    url: str = ""
    dest: str = ""
    workers: int = 8
    storage_options: tuple[tuple[str, Any], ...] = field(default_factory=tuple)

    def validate(self) -> PullConfig:
        if not storage.is_url(self.url):
            raise UsageError(f"pull takes an index URL (s3://, gs://, hdfs://, abfs://), got {self.url!r}")
        if self.workers < 1:
            raise UsageError("--workers must be at least 1")
        return self


def run_pull(cfg: PullConfig) -> dict:
    """Pull (parallel, resumable, every file checked against the manifest, the manifest written last):
    ``{index, dir, files, downloaded, kept}``."""
    from freqindex.remote import pull

    return pull(cfg.url, cfg.dest, cfg.storage_options, workers=cfg.workers)
