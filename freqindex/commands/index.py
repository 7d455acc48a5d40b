"""`info` and `verify`: what an index holds, and whether its files still match the manifest."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from freqindex.errors import UsageError
from freqindex.manifest import read_manifest, verify


@dataclass(frozen=True)
class IndexConfig:
    """`info` and `verify`: the index directory, nothing else."""

    index_dir: str = ""

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
    input, quarantine, size, tools)."""
    m = read_manifest(cfg.index_dir)
    c = m["counts"]
    rows = (
        ("index", str(Path(cfg.index_dir).resolve())),
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
        ("index bytes", f"{sum(f['size'] for f in m['files'].values()):,}"),
        ("tools", ", ".join(f"{k} {v}" for k, v in m["tools"].items())),
    )
    return InfoOutcome(m, rows)


def run_verify(cfg: IndexConfig) -> dict:
    """Sizes and sha256 of every file against the manifest: ``{ok, files_checked, bytes_checked, ...}``;
    a mismatch raises CheckFailedError naming the file."""
    return verify(cfg.index_dir)
