"""The typed settings of a build: one object, from flags or a TOML file, the single source of truth."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import re
import tomllib
from dataclasses import dataclass, field
from typing import Any

from freqindex import settings
from freqindex.errors import UsageError
from freqindex.fsutil import read_text
from freqindex.storage import filesystem, is_url, parse_storage_options, redact


@dataclass(frozen=True)
class BuildConfig:
    inputs: tuple[str, ...]
    output: str
    format: str = "auto"
    text_field: str = settings.DEFAULT_TEXT_FIELD
    id_field: str | None = None
    text_per_line: bool = False
    tags_field: str | None = None
    tokenizer: str = "bytes"
    normalize: str | None = None  # None: simple with bytes, none with a Hugging Face tokenizer
    shards: int | None = None
    shard_size: int | None = None  # token bytes per shard (None: settings.SHARD_SIZE_BYTES); or "2GB" etc.
    strict: bool = False
    master: str = settings.DEFAULT_MASTER
    chunk_bytes: int = settings.CHUNK_BYTES
    sa_mem_gib: int = settings.SA_BUILD_MEM_GIB
    spark_conf: tuple[tuple[str, str], ...] = field(default_factory=tuple)
    # how inputs and the output given as URLs are reached (never part of the content key; redacted when
    # recorded), and the executor-local directory a task builds in before it uploads (remote outputs)
    storage_options: tuple[tuple[str, Any], ...] = field(default_factory=tuple)
    scratch_dir: str | None = None
    # `--append-to INDEX`: add the inputs to that index as a new generation (it is also the output)
    append_to: str | None = None

    def __post_init__(self) -> None:
        if isinstance(self.shard_size, str):  # a TOML file or a flag may give "2GB", "512MiB", ...
            object.__setattr__(self, "shard_size", parse_size(self.shard_size, "--shard-size"))

    @property
    def shard_size_bytes(self) -> int:
        """The target shard size in bytes of ``tokenized.N`` that plans the shards (when --shards is not given)."""
        return self.shard_size if self.shard_size is not None else settings.SHARD_SIZE_BYTES

    @property
    def normalization(self) -> str:
        if self.normalize:
            return self.normalize
        return "simple" if self.tokenizer == "bytes" else "none"

    def validate(self) -> BuildConfig:
        if not self.inputs:
            raise UsageError("no INPUT given")
        if self.shards is not None and self.shards < 1:
            raise UsageError("--shards must be at least 1")
        if self.shards is not None and self.shard_size is not None:
            raise UsageError("give --shards or --shard-size, not both")
        if self.shard_size is not None and self.shard_size < settings.MIN_SHARD_SIZE_BYTES:
            raise UsageError(f"--shard-size must be at least {settings.MIN_SHARD_SIZE_BYTES} bytes")
        if self.normalization not in ("simple", "none"):
            raise UsageError(f"unknown --normalize {self.normalization!r}; choose simple or none")
        if self.append_to and self.output != self.append_to:
            raise UsageError("--append-to names the index to extend: give it instead of --output, not both")
        if self.chunk_bytes < 1024:
            raise UsageError("chunk size must be at least 1024 bytes")
        return self

    def content_key(self, input_fingerprint: list) -> str:
        """Hash of everything that determines the index's bytes (not the master, not the output path)."""
        d = dataclasses.asdict(self)
        for k in (
            "output",
            "master",
            "spark_conf",
            "strict",
            "sa_mem_gib",
            "storage_options",
            "scratch_dir",
            "append_to",
        ):
            d.pop(k)
        d["normalize"] = self.normalization
        d["shard_size"] = None if self.shards is not None else self.shard_size_bytes
        d["input_fingerprint"] = input_fingerprint
        return hashlib.sha256(json.dumps(d, sort_keys=True).encode()).hexdigest()

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["normalize"] = self.normalization
        d["inputs"] = list(self.inputs)
        d["spark_conf"] = dict(self.spark_conf)
        d["storage_options"] = redact(self.storage_options)
        return d

    @classmethod
    def from_table(cls, table: dict) -> BuildConfig:
        """A config from a TOML ``[build]`` table (lists and tables become the tuples the config holds)."""
        table = dict(table)
        table["inputs"] = tuple(table.get("inputs", ()))
        table["spark_conf"] = tuple(dict(table.get("spark_conf", {})).items())
        table["storage_options"] = parse_storage_options(table.get("storage_options"))
        return cls(**table)


_SIZE_UNITS = {
    "": 1,
    "b": 1,
    "k": 1000,
    "kb": 1000,
    "m": 1000**2,
    "mb": 1000**2,
    "g": 1000**3,
    "gb": 1000**3,
    "t": 1000**4,
    "tb": 1000**4,
    "kib": 1024,
    "mib": 1024**2,
    "gib": 1024**3,
    "tib": 1024**4,
}


def parse_size(text: str | int, what: str = "size") -> int:
    """Bytes from ``2000000000``, ``"2GB"`` (decimal), ``"1.5GiB"`` (binary), ``"512 MiB"``; units are
    case-insensitive (``k``/``m``/``g``/``t`` alone are decimal)."""
    if isinstance(text, int):
        return text
    m = re.fullmatch(r"\s*([0-9]+(?:\.[0-9]*)?)\s*([a-zA-Z]*)\s*", str(text))
    unit = m.group(2).lower() if m else None
    if m is None or unit not in _SIZE_UNITS:
        raise UsageError(f"{what}: cannot read {text!r} as a size (e.g. 2GB, 512MiB, 2000000000)")
    return int(float(m.group(1)) * _SIZE_UNITS[unit])


def load_toml(path: str) -> dict:
    """Read the ``[build]`` table (or the top level) of a TOML config file (a local path, or a URL read with
    its filesystem's usual credentials: spark-submit in cluster mode can take its config from the store)."""
    try:
        if is_url(path):
            fs, p = filesystem(path)
            text = fs.cat_file(p).decode("utf-8-sig")
        else:
            text = read_text(os.path.expanduser(path))
        data = tomllib.loads(text)
    except FileNotFoundError:
        raise UsageError(f"config file not found: {path}") from None
    except tomllib.TOMLDecodeError as exc:
        raise UsageError(f"bad TOML in {path}: {exc}") from None
    table = data.get("build", data)
    known = {f.name for f in dataclasses.fields(BuildConfig)}
    unknown = sorted(set(table) - known)
    if unknown:
        raise UsageError(f"unknown key(s) in {path}: {', '.join(unknown)}")
    return table
