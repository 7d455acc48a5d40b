"""Text normalization, versioned. Documents and queries go through the same function.

``simple`` (v1): NFKC, casefold, every Unicode punctuation character (category P*) becomes a space, every run
of whitespace (``str.isspace``) becomes one space, then strip. Indexed documents are stored padded as
``" " + normalized + " "``. Queries get the same treatment except the final strip, so a leading or trailing
space survives as exactly one space: ``" dog "`` asks for the whole word.

``none``: text as given, for documents and queries alike.
"""

from __future__ import annotations

import sys
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass

from freqindex.errors import UsageError


def _tables() -> tuple[dict[int, str], bytes]:
    punct = [cp for cp in range(sys.maxunicode + 1) if unicodedata.category(chr(cp)).startswith("P")]
    # ASCII fast path: NFKC is the identity on ASCII and casefold is lower(); punctuation and every ASCII
    # whitespace character (str.isspace also counts \x1c-\x1f) become spaces in one bytes.translate.
    ascii_table = bytes(
        32 if (unicodedata.category(chr(c)).startswith("P") or chr(c).isspace()) else c for c in range(128)
    ) + bytes(range(128, 256))
    return {cp: " " for cp in punct}, ascii_table


_PUNCT, _ASCII = _tables()


def _simple_core(text: str) -> str:
    """NFKC, casefold, punctuation to spaces (whitespace not yet collapsed)."""
    if text.isascii():
        return text.encode("ascii").lower().translate(_ASCII).decode("ascii")
    return unicodedata.normalize("NFKC", text).casefold().translate(_PUNCT)


def simple_document(text: str) -> str:
    """Normalize a document with ``simple`` v1 (without the padding spaces; see ``stored_document``)."""
    return " ".join(_simple_core(text).split())


def simple_query(text: str) -> str:
    """Normalize a query with ``simple`` v1: like a document, but one leading/trailing space survives."""
    core = _simple_core(text)
    body = " ".join(core.split())
    lead = " " if core[:1].isspace() else ""
    trail = " " if core[-1:].isspace() else ""
    if not body:
        return " " if core else ""
    return lead + body + trail


def _identity(text: str) -> str:
    return text


@dataclass(frozen=True)
class Normalizer:
    """A published normalization. ``name`` and ``version`` are recorded in the manifest and never change meaning."""

    name: str
    version: int
    document: Callable[[str], str]
    query: Callable[[str], str]
    pad: bool  # documents are stored as " " + text + " "

    def stored_document(self, text: str) -> str:
        """What the index stores for ``text`` (normalized, padded when the normalizer pads)."""
        body = self.document(text)
        return f" {body} " if self.pad else body


NORMALIZERS: dict[str, Normalizer] = {
    "simple": Normalizer("simple", 1, simple_document, simple_query, pad=True),
    "none": Normalizer("none", 1, _identity, _identity, pad=False),
}


def get_normalizer(name: str) -> Normalizer:
    try:
        return NORMALIZERS[name]
    except KeyError:
        raise UsageError(
            f"unknown normalization {name!r}; choose one of: {', '.join(sorted(NORMALIZERS))}"
        ) from None
