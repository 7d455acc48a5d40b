"""Typed configs and the one TOML -> config path.

Every command has one frozen config class, the single source of truth from flags or a TOML file to the code
that runs (the build's, tag's and embed's are here, beside the loader, because the build driver and the
Spark jobs need them; the query-side ones live in ``freqindex/commands/``). :func:`load_config` resolves
one: the class's defaults, then the file's values, then the values given on the command line. The same
function serves the CLI, the spark-submit entry points (``jobs/*.py main()``) and the tests.

A TOML file holds a table named after the command (``[build]``, ``[tag]``, ``[embed]``, ``[neighbors]``,
``[contamination]``, ``[analyze]``), so one file can configure several commands; a file meant for one
command may put its keys at the top level instead. An unknown key, or a value of the wrong type, is a
UsageError naming the file and the key.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import re
import tomllib
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

from freqindex import settings
from freqindex.errors import UsageError
from freqindex.fsutil import read_text
from freqindex.storage import filesystem, is_url, parse_storage_options, redact

T = TypeVar("T")
SECTIONS = ("build", "tag", "embed", "neighbors", "contamination", "analyze")
# config fields whose command-line flag is named differently (for error messages)
FLAG_NAMES = {"spark_conf": "--conf", "eval_file": "--eval", "out_dir": "--out", "out_file": "--out"}


@dataclass(frozen=True)
class BuildConfig:
    inputs: tuple[str, ...] = ()
    output: str = ""
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
        if self.append_to and not self.output:  # `--append-to INDEX` names the output too
            object.__setattr__(self, "output", self.append_to)
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
            raise UsageError("give at least one INPUT (file, directory or glob)")
        if not self.output:
            raise UsageError("--output DIR is required")
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
        if self.sa_mem_gib < 1:
            raise UsageError("sa_mem_gib must be at least 1")
        return self

    def check_follow_ups(self, concepts: str | None, embed: bool, overwrite: bool = False) -> None:
        """Tagging and embedding right after the build (``build --concepts/--embed``) need a local output;
        an append extends concept hits and vectors by itself and replaces nothing."""
        if self.append_to and (concepts is not None or embed or overwrite):
            raise UsageError(
                "--append-to extends the index's concept hits and vectors by itself (when it has them); "
                "--concepts, --embed and --overwrite do not apply"
            )
        if is_url(self.output) and (concepts is not None or embed):
            raise UsageError(
                "--concepts and --embed write into a local index: build to a URL, then `freqindex pull` it and "
                "tag or embed the local copy (or build locally)"
            )

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


@dataclass(frozen=True)
class TagConfig:
    """`freqindex tag`: concept tagging of an existing index (a Spark job, jobs/tag_concepts.py)."""

    index_dir: str = ""
    concepts: str = ""
    exact: bool = False
    label_field: str | None = None
    master: str = settings.DEFAULT_MASTER

    def validate(self) -> TagConfig:
        if not self.index_dir:
            raise UsageError("give the index DIR")
        if not self.concepts:
            raise UsageError("--concepts FILE is required")
        return self


@dataclass(frozen=True)
class EmbedConfig:
    """`freqindex embed`: embed every document of an index and build its FAISS index (jobs/embed_index.py).
    ``stride`` None: half of each window; ``faiss_factory`` None: chosen by size (Flat, IVF-Flat, IVF-SQ8)."""

    index_dir: str = ""
    model: str = settings.DEFAULT_EMBEDDER
    chunk_tokens: tuple[int, ...] = settings.EMBED_CHUNK_TOKENS
    stride: int | None = None
    faiss_factory: str | None = None
    dtype: str = settings.EMBED_DTYPE
    precomputed: str | None = None
    vector_field: str = "embedding"
    id_field: str = "id"
    image_root: str | None = None
    master: str = settings.DEFAULT_MASTER
    device: str = settings.EMBED_DEVICE

    def validate(self) -> EmbedConfig:
        if not self.index_dir:
            raise UsageError("give the index DIR")
        if self.dtype not in ("float32", "float16"):
            raise UsageError("--dtype must be float32 or float16")
        if self.device not in settings.EMBED_DEVICES:
            raise UsageError("--device must be auto, cpu or cuda")
        return self


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


# --- the loader ----------------------------------------------------------------------------------------


def read_config_file(path: str, section: str) -> dict:
    """The ``[section]`` table of a TOML file, or (when it has none) its top-level keys, leaving out the
    tables of other commands."""
    try:
        if is_url(path):
            fs, p = filesystem(path)
            text = fs.cat_file(p).decode("utf-8-sig")
        else:
            text = read_text(os.path.expanduser(path))
        data = tomllib.loads(text)
    except FileNotFoundError:
        raise UsageError(f"config file not found: {path}") from None
    except IsADirectoryError:
        raise UsageError(f"config file {path} is a directory") from None
    except tomllib.TOMLDecodeError as exc:
        raise UsageError(f"bad TOML in {path}: {exc}") from None
    if section in data:
        if not isinstance(data[section], dict):
            raise UsageError(f"{path}: [{section}] must be a table")
        return dict(data[section])
    return {k: v for k, v in data.items() if k not in SECTIONS}


def load_config(
    cls: type[T],
    path: str | None = None,
    *,
    section: str | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> T:
    """A ``cls`` config from its defaults, then the TOML file ``path`` (its ``[section]`` table), then
    ``overrides`` (the flags given on the command line; leave out the ones that were not given).

    Values are checked against the field types: lists (or comma-separated strings, as flags give them)
    become tuples, numbers given as text (argparse) become numbers, a ``{KEY = VALUE}`` table or ``KEY=VALUE``
    strings become key/value pairs, a table becomes a nested config. Unknown keys and wrong types raise
    UsageError; the result's ``validate()`` runs when it has one."""
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    values: dict[str, Any] = {}
    if path:
        table = read_config_file(path, section or "")
        unknown = sorted(set(table) - set(names))
        if unknown:
            raise UsageError(
                f"unknown key(s) in {path}: {', '.join(unknown)} (known: {', '.join(sorted(names))})"
            )
        values.update({k: _coerce(k, v, hints[k], path) for k, v in table.items()})
    for k, v in (overrides or {}).items():
        if k not in hints:
            raise TypeError(f"{cls.__name__} has no field {k!r}")  # a programming error, not a user's
        values[k] = _coerce(k, v, hints[k], None)
    cfg = cls(**values)
    validate = getattr(cfg, "validate", None)
    return validate() if callable(validate) else cfg


def config_dict(cfg: Any) -> dict:
    """A config as plain JSON-able data (what ``--dry-run`` prints)."""
    to_dict = getattr(cfg, "to_dict", None)
    if callable(to_dict):
        return to_dict()
    return json.loads(json.dumps(dataclasses.asdict(cfg), default=list))


def _label(name: str, where: str | None) -> str:
    if where is None:
        return FLAG_NAMES.get(name, "--" + name.replace("_", "-"))
    return f"{where}: {name}"


def _bad(name: str, where: str | None, what: str, value: Any) -> UsageError:
    return UsageError(f"{_label(name, where)} takes {what}, got {value!r}")


def _storage_options(value: Any) -> tuple:
    """Storage options keep their TOML types; ``KEY=VALUE`` strings are parsed as the flag's are."""
    if value is None:
        return ()
    return parse_storage_options(value if isinstance(value, dict | list | tuple) else [value])


# fields read by their own parser rather than by their type
FIELD_PARSERS = {
    "shard_size": lambda v: None if v is None else parse_size(v, "--shard-size"),  # "2GB", "512MiB", bytes
    "storage_options": _storage_options,
}


def _coerce(name: str, value: Any, hint: Any, where: str | None) -> Any:
    """``value`` as the type ``hint`` asks for (see :func:`load_config`)."""
    if name in FIELD_PARSERS:
        return FIELD_PARSERS[name](value)
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        (inner,) = [a for a in args if a is not type(None)]
        return _coerce(name, value, inner, where)
    if dataclasses.is_dataclass(hint):
        if isinstance(value, hint):
            return value
        if not isinstance(value, dict):
            raise _bad(name, where, "a table", value)
        return load_config(hint, overrides=value)
    if origin is tuple:
        return _coerce_tuple(name, value, args, where)
    if hint is dict or origin is dict:
        if not isinstance(value, dict):
            raise _bad(name, where, "a table", value)
        return value
    return _coerce_scalar(name, value, hint, where)


def _coerce_scalar(name: str, value: Any, hint: Any, where: str | None) -> Any:
    if hint is bool:
        if isinstance(value, bool):
            return value
        raise _bad(name, where, "true or false", value)
    if hint is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, str) and value.strip().lstrip("-").isdigit():
            return int(value)
        raise _bad(name, where, "an integer", value)
    if hint is float:
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str):
            try:
                return float(value)
            except ValueError:
                pass
        raise _bad(name, where, "a number", value)
    if hint is str:
        if isinstance(value, str):
            return value
        raise _bad(name, where, "a string", value)
    return value


def _coerce_tuple(name: str, value: Any, args: tuple, where: str | None) -> tuple:
    if (
        name == "storage_options"
    ):  # values keep their TOML types; KEY=VALUE strings are parsed like the flag's
        if value is None:
            return ()
        return parse_storage_options(value if isinstance(value, dict | list | tuple) else [value])
    if args and typing.get_origin(args[0]) is tuple:  # key/value pairs (spark_conf)
        return _pairs(name, value, where)
    elem = args[0] if args else str
    what = {int: "comma-separated integers", float: "comma-separated numbers"}.get(elem, "a list")
    if isinstance(value, str):
        value = [x.strip() for x in value.split(",") if x.strip()]
    if not isinstance(value, list | tuple):
        raise _bad(name, where, what, value)
    try:
        return tuple(_coerce_scalar(name, x, elem, where) for x in value)
    except UsageError:
        raise _bad(name, where, what, ",".join(map(str, value))) from None


def _pairs(name: str, value: Any, where: str | None) -> tuple[tuple[str, str], ...]:
    if isinstance(value, dict):
        return tuple((str(k), str(v)) for k, v in value.items())
    out = []
    for item in value if isinstance(value, list | tuple) else [value]:
        if isinstance(item, list | tuple) and len(item) == 2:
            out.append((str(item[0]), str(item[1])))
            continue
        k, sep, v = str(item).partition("=")
        if not sep or not k.strip():
            raise UsageError(f"{_label(name, where)} expects KEY=VALUE, got {item!r}")
        out.append((k.strip(), v.strip()))
    return tuple(out)
