"""The storage layer: inputs and indexes addressed by URL, on any fsspec filesystem.

A location is either a local path (also written ``file://PATH``) or a URL of an fsspec filesystem:
``s3://``, ``gs://``, ``hdfs://``, ``abfs://`` and whatever else fsspec knows. Local paths keep using
the operating system directly, exactly as before; only URLs go through fsspec.

Credentials come from each filesystem's own environment and configuration (``AWS_*`` variables, instance
profiles, ``GOOGLE_APPLICATION_CREDENTIALS``, ...). Everything else reaches the filesystem as *storage
options*: ``KEY=VALUE`` pairs (``--storage-option``, or ``storage_options`` in the TOML config). A key
written ``SCHEME.KEY`` (``s3.endpoint_url=...``) applies to that scheme only, so inputs on one store and
the output on another can each get their own settings. Values ``true``/``false``, integers and JSON
objects or lists (``client_kwargs={"region_name": "eu-west-1"}``) are converted; everything else stays a
string. Storage options never enter the manifest or the content key: secrets are redacted wherever a
configuration is printed or recorded.
"""

from __future__ import annotations

import functools
import hashlib
import io
import json
import os
import posixpath
import traceback
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, BinaryIO

from freqindex.errors import UsageError

StorageOptions = tuple[tuple[str, Any], ...]

READ_BLOCK = 8 << 20  # bytes per ranged read from a remote store (one request each)
COPY_BLOCK = 4 << 20
# the extra that installs each scheme's fsspec implementation
_EXTRAS = {
    "s3": "s3",
    "s3a": "s3",
    "gs": "gcs",
    "gcs": "gcs",
    "abfs": "azure",
    "abfss": "azure",
    "az": "azure",
    "adl": "azure",
}
_SECRET_WORDS = ("secret", "password", "token", "credential", "sas", "connection_string", "key")
_NOT_SECRET = {"endpoint_url", "region_name", "anon", "use_ssl", "requester_pays", "project", "account_name"}


def is_url(location: str) -> bool:
    """A URL of a remote filesystem (``file://`` counts as local)."""
    scheme, sep, _ = str(location).partition("://")
    return bool(sep) and scheme.lower() != "file" and scheme.isascii() and scheme.replace("+", "").isalnum()


def scheme_of(location: str) -> str:
    return str(location).split("://", 1)[0].lower() if is_url(location) else "file"


def local_path(location: str) -> str:
    """A local location as a plain path (``file://`` stripped, ``~`` expanded)."""
    loc = str(location)
    if loc.startswith("file://"):
        loc = loc[len("file://") :]
    return os.path.expanduser(loc)


def _coerce(value: Any) -> Any:
    if not isinstance(value, str):
        return value
    low = value.strip().lower()
    if low in ("true", "false"):
        return low == "true"
    if low.lstrip("-").isdigit():
        return int(low)
    if value.strip()[:1] in ("{", "["):
        try:
            return json.loads(value)
        except ValueError:
            raise UsageError(f"storage option value is not valid JSON: {value}") from None
    return value


def parse_storage_options(pairs: Iterable[str] | Mapping[str, Any] | None) -> StorageOptions:
    """``KEY=VALUE`` strings (the CLI) or a mapping (the TOML config) as sorted (key, value) pairs."""
    if not pairs:
        return ()
    if isinstance(pairs, Mapping):
        items = [(str(k), v) for k, v in pairs.items()]
    else:
        items = []
        for raw in pairs:
            k, sep, v = str(raw).partition("=")
            if not sep or not k.strip():
                raise UsageError(f"--storage-option expects KEY=VALUE, got {raw!r}")
            items.append((k.strip(), v.strip()))
    for _k, v in items:
        _coerce(v)  # a bad JSON value is a usage error now, not in a Spark task later
    return tuple(sorted(items, key=lambda kv: kv[0]))


def options_for(location: str, storage_options: StorageOptions | Mapping[str, Any] = ()) -> dict[str, Any]:
    """The keyword arguments for ``location``'s filesystem: unprefixed keys, then ``SCHEME.KEY`` keys of its
    scheme (which win)."""
    items = storage_options.items() if isinstance(storage_options, Mapping) else storage_options
    scheme = scheme_of(location)
    plain, scoped = {}, {}
    for k, v in items:
        head, dot, rest = k.partition(".")
        if dot and head.lower() in _known_schemes():
            if head.lower() == scheme:
                scoped[rest] = _coerce(v)
        else:
            plain[k] = _coerce(v)
    return {**plain, **scoped}


@functools.cache
def _known_schemes() -> frozenset[str]:
    from fsspec.registry import known_implementations

    return frozenset(known_implementations) | frozenset(_EXTRAS)


def redact(storage_options: StorageOptions | Mapping[str, Any]) -> dict[str, Any]:
    """The options as a dict fit to print or record: values of keys that may hold secrets are ``***``."""
    items = storage_options.items() if isinstance(storage_options, Mapping) else storage_options

    def hide(key: str, value: Any) -> Any:
        base = key.rsplit(".", 1)[-1].lower()
        if isinstance(value, Mapping):
            return {k: hide(k, v) for k, v in value.items()}
        if base not in _NOT_SECRET and any(w in base for w in _SECRET_WORDS):
            return "***"
        return value

    return {k: hide(k, _coerce(v)) for k, v in items}


def filesystem(location: str, storage_options: StorageOptions | Mapping[str, Any] = ()):
    """(fsspec filesystem, path inside it) for a URL. A missing implementation names the extra to install."""
    import fsspec.core

    try:
        return fsspec.core.url_to_fs(location, **options_for(location, storage_options))
    except ImportError as exc:
        scheme = scheme_of(location)
        extra = _EXTRAS.get(scheme)
        hint = f"pip install 'freqindex[{extra}]'" if extra else str(exc).splitlines()[0]
        if scheme in ("hdfs", "viewfs"):
            hint = "pyarrow's HadoopFileSystem needs libhdfs and the Hadoop CLASSPATH (see README)"
        raise UsageError(f"cannot reach {scheme}:// ({hint})") from None
    except ValueError as exc:
        if "Protocol not known" in str(exc):
            raise UsageError(f"unknown filesystem in {location!r}: {exc}") from None
        raise
    except TypeError as exc:  # a storage option the filesystem does not take
        raise UsageError(f"bad storage option for {scheme_of(location)}:// ({exc})") from None


def join(base: str, *parts: str) -> str:
    """``base`` (a URL or a local path) joined with ``/``-separated relative parts."""
    if is_url(base):
        return posixpath.join(base.rstrip("/"), *parts)
    return os.path.join(base, *parts)


def url_of(fs, path: str) -> str:
    """The full URL of ``path`` on ``fs`` (``s3://bucket/key``)."""
    return fs.unstrip_protocol(path)


def open_binary(location: str, storage_options: StorageOptions = ()) -> BinaryIO:
    """A seekable binary reader. Local: the OS file. URL: ranged reads of ``READ_BLOCK`` bytes behind an
    ``io.BufferedReader`` (fsspec's own ``readline`` would re-read a whole block per line)."""
    if not is_url(location):
        return open(local_path(location), "rb")
    fs, path = filesystem(location, storage_options)
    raw = fs.open(path, "rb", block_size=READ_BLOCK, cache_type="none")
    return io.BufferedReader(raw, buffer_size=READ_BLOCK)


def arrow_filesystem(location: str, storage_options: StorageOptions = ()):
    """(pyarrow filesystem, path) for reading Parquet from ``location``; (None, path) for local paths."""
    if not is_url(location):
        return None, local_path(location)
    from pyarrow.fs import FSSpecHandler, PyFileSystem

    fs, path = filesystem(location, storage_options)
    return PyFileSystem(FSSpecHandler(fs)), path


def sha256_stream(f: BinaryIO, block: int = COPY_BLOCK) -> tuple[str, int]:
    """(sha256 hex, bytes read) of the rest of a stream."""
    h = hashlib.sha256()
    n = 0
    while chunk := f.read(block):
        h.update(chunk)
        n += len(chunk)
    return h.hexdigest(), n


def store_tag(info: Mapping[str, Any]) -> str | None:
    """The store's own fingerprint of an object's content, when it gives one (S3 and Azure ``ETag``, GCS
    ``md5Hash`` / ``crc32c``): it changes whenever the content does, so a marker that recorded it vouches
    for an object without downloading it."""
    for k in ("ETag", "etag", "md5Hash", "crc32c", "content_md5"):
        v = info.get(k)
        if v:
            return str(v).strip('"')
    return None


def md5_file(path: str | Path) -> str:
    h = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as f:
        while chunk := f.read(COPY_BLOCK):
            h.update(chunk)
    return h.hexdigest()


# what the object-store clients raise when the store cannot be used at all (found along the exception's
# cause chain by class name, so that no client library need be importable here)
_NO_CREDENTIALS = frozenset(
    {"NoCredentialsError", "PartialCredentialsError", "CredentialRetrievalError", "DefaultCredentialsError"}
)
_UNREACHABLE = frozenset(
    {"EndpointConnectionError", "ConnectTimeoutError", "ClientConnectorError", "ServerTimeoutError"}
)
CREDENTIALS_HINT = (
    "credentials come from each store's usual environment (AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY or "
    "AWS_PROFILE for s3://, GOOGLE_APPLICATION_CREDENTIALS for gs://, AZURE_STORAGE_ACCOUNT_NAME and "
    "AZURE_STORAGE_ACCOUNT_KEY for abfs://) or from --storage-option (e.g. key=... and secret=..., or "
    "anon=true for a public bucket)"
)
_CREDENTIALS_SHORT = "credentials come from each store's usual environment"


_CLIENT_PACKAGES = ("fsspec", "s3fs", "gcsfs", "adlfs", "botocore", "aiobotocore", "pyarrow")


def _raised_in_client(exc: BaseException) -> bool:
    """Was ``exc`` raised inside a filesystem client (where storage options end up as keyword arguments)?"""
    frames = traceback.extract_tb(exc.__traceback__)
    return bool(frames) and any(f"{os.sep}{p}{os.sep}" in frames[-1].filename for p in _CLIENT_PACKAGES)


def access_problem(exc: BaseException) -> str | None:
    """One line for an error that says the storage itself cannot be used (no credentials, the store
    unreachable, access denied, a local permission), or None for anything else. The CLI prints it as a
    user error."""
    seen: set[int] = set()
    e: BaseException | None = exc
    while e is not None and id(e) not in seen:
        seen.add(id(e))
        names = {c.__name__ for c in type(e).__mro__}
        first = (str(e).strip().splitlines() or [""])[0]
        if names & _NO_CREDENTIALS:
            return f"no credentials for the object store ({first}): {CREDENTIALS_HINT}"
        if names & _UNREACHABLE:
            return f"cannot reach the object store: {first} (check the endpoint and the network)"
        if isinstance(e, PermissionError) and e.filename:  # a local file or directory
            return f"permission denied: {e.filename}"
        if isinstance(e, PermissionError):
            return f"access denied: {first or type(e).__name__} ({_CREDENTIALS_SHORT})"
        if isinstance(e, TypeError) and "unexpected keyword argument" in first and _raised_in_client(e):
            return f"a storage option is not one the filesystem takes: {first} (see --storage-option)"
        e = e.__cause__ or e.__context__
    return None
