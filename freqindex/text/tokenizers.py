"""Tokenizers: ``bytes`` (UTF-8 bytes, u8 tokens) or any Hugging Face tokenizer (fast Rust ``tokenizers``).

Token ids are laid out exactly as infini-gram stores them: little-endian u8/u16/u32, with the all-ones value of
the width (0xff, 0xffff, 0xffffffff) reserved as the document separator.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np

from freqindex.errors import UsageError

WIDTH_DTYPES = {1: np.dtype("<u1"), 2: np.dtype("<u2"), 4: np.dtype("<u4")}
DTYPE_NAMES = {1: "u8", 2: "u16", 4: "u32"}


def separator(width: int) -> bytes:
    return b"\xff" * width


class BytesTokenizer:
    """UTF-8 bytes of the text. Valid UTF-8 never contains 0xff, so the separator cannot occur in a document."""

    name = "bytes"
    width = 1
    vocab_size = 255

    def encode_batch(self, texts: list[str]) -> list[bytes]:
        return [t.encode("utf-8") for t in texts]

    def encode(self, text: str) -> bytes:
        return text.encode("utf-8")

    def decode(self, data: bytes) -> str:
        return data.decode("utf-8", errors="replace")

    def describe(self) -> dict:
        # 255 ids (0..254): 0xff is the separator, never a token; the engine is opened with the same number
        return {"name": "bytes", "width": 1, "dtype": "u8", "vocab_size": self.vocab_size}


class HFTokenizer:
    """A Hugging Face fast tokenizer loaded from a tokenizer.json (a local file or a directory holding one),
    or from the hub by name only when hub access is allowed (``allow_hub`` or ``FREQINDEX_ALLOW_HUB=1``,
    see :mod:`freqindex.hub`); otherwise a name that is not a local path fails at once, naming the forms
    accepted offline."""

    def __init__(self, spec: str, tokenizer_json: str | None = None, allow_hub: bool | None = None):
        from tokenizers import Tokenizer

        from freqindex.hub import ALLOW_HUB_ENV, hub_allowed

        self.spec = spec
        self.tokenizer_json = tokenizer_json or resolve_tokenizer_json(spec)
        if self.tokenizer_json is not None:
            self._tok = Tokenizer.from_file(self.tokenizer_json)
        elif not hub_allowed(allow_hub):
            raise UsageError(
                f"tokenizer {spec!r} is not a local path (offline: give a tokenizer.json file or a directory "
                f"holding one; hub names need {ALLOW_HUB_ENV}=1)"
            )
        else:
            try:
                self._tok = Tokenizer.from_pretrained(spec)
            except Exception as exc:  # the hub's own errors vary by version: report any of them in one line
                raise UsageError(
                    f"cannot load tokenizer {spec!r} from the hub ({type(exc).__name__}: {exc}); "
                    "pass a local tokenizer.json or directory"
                ) from None
        self._tok.no_padding()
        self._tok.no_truncation()
        self.vocab_size = self._tok.get_vocab_size(with_added_tokens=True)
        self.width = 2 if self.vocab_size < 0xFFFF else 4
        self.dtype = WIDTH_DTYPES[self.width]
        self.name = spec

    def encode_batch(self, texts: list[str]) -> list[bytes]:
        encs = (
            self._tok.encode_batch_fast(texts, add_special_tokens=False)
            if hasattr(self._tok, "encode_batch_fast")
            else self._tok.encode_batch(texts, add_special_tokens=False)
        )
        return [np.asarray(e.ids, dtype=self.dtype).tobytes() for e in encs]

    def encode(self, text: str) -> bytes:
        return np.asarray(self._tok.encode(text, add_special_tokens=False).ids, dtype=self.dtype).tobytes()

    def decode(self, data: bytes) -> str:
        ids = np.frombuffer(data, dtype=self.dtype).tolist()
        return self._tok.decode(ids, skip_special_tokens=False)

    def to_json_str(self) -> str:
        return self._tok.to_str()

    def describe(self) -> dict:
        return {
            "name": self.spec,
            "width": self.width,
            "dtype": DTYPE_NAMES[self.width],
            "vocab_size": self.vocab_size,
            "sha256": hashlib.sha256(self.to_json_str().encode()).hexdigest(),
        }


def resolve_tokenizer_json(spec: str) -> str | None:
    """A local tokenizer.json for ``spec`` (a file, or a directory holding one), else None."""
    p = Path(os.path.expanduser(spec))
    if p.is_file():
        return str(p.resolve())
    if p.is_dir() and (p / "tokenizer.json").is_file():
        return str((p / "tokenizer.json").resolve())
    return None


def load_tokenizer(
    spec: str, tokenizer_json: str | None = None, allow_hub: bool | None = None
) -> BytesTokenizer | HFTokenizer:
    if spec == "bytes":
        return BytesTokenizer()
    return HFTokenizer(spec, tokenizer_json, allow_hub)
