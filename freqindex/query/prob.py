"""∞-gram and n-gram probabilities and next-token distributions, in the index's token space, for many queries
at once (the batched suffix-array search of :mod:`freqindex.suffix.lm`), equal to the infini-gram engine's
``infgram_prob``, ``prob``, ``ntd`` and ``infgram_ntd``.

Definitions (token ids after the index's normalization and tokenizer):

- **n-gram** ``P(y | x) = count(x y) / count(x)`` for the context ``x`` (its last ``n - 1`` tokens with
  ``-n``); undefined (``None``; the engine's -1) when ``x`` never occurs. Counts are occurrences, including
  those at the end of a document (so ``count(x)`` also counts occurrences followed by no token).
- **∞-gram**: the same with the longest suffix of the context that occurs (count > 0) as ``x``; its length is
  ``suffix_len``. A context whose last token never occurs backs off to the empty context, whose count is every
  token position of the index (document separators included, as in the engine).
- A multi-token continuation (``--next`` text, a keyword) is scored token by token, each conditioned on the
  context and the continuation's tokens before it; the chained probability is the product.
- **Next-token distribution**: every token that follows an occurrence of the context, with its count;
  document ends count as the engine's ``eos_token_id``.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from freqindex.errors import UsageError
from freqindex.suffix import lm
from freqindex.suffix.index import Index

ENGINE_MAX_SUPPORT = 1000  # the engine's (and the public API's) default for ntd subsampling


def vocab_size(index: Index) -> int:
    """Valid token ids are ``0 .. vocab_size - 1`` (for ``bytes``: 0..254; 255 is the document separator)."""
    return int(index.tokenizer.vocab_size)


def encode_text(index: Index, text, what: str, allow_blank: bool = True) -> list[int]:
    """Token ids of ``text`` after the index's query normalization (a leading or trailing space survives as one
    space). ``allow_blank``: a text that normalizes to spaces only (e.g. ``"?"`` -> ``" "``) is accepted."""
    if not isinstance(text, str):
        raise UsageError(f"{what} must be a string")
    if text == "":
        raise UsageError(f"empty {what}")
    norm = index.normalizer.query(text)
    if norm == "" or (not allow_blank and not norm.strip()):
        raise UsageError(f"{what} {text!r} normalizes to nothing")
    data = index.tokenizer.encode(norm)
    ids = list(data) if index.width == 1 else np.frombuffer(data, dtype=index.dtype).tolist()
    if not ids:
        raise UsageError(f"{what} {text!r} has no tokens")
    return ids


def check_ids(index: Index, ids, what: str, allow_empty: bool = False) -> list[int]:
    """Token ids given directly: a list of integers inside the vocabulary."""
    if not isinstance(ids, list) or not all(isinstance(i, int) and not isinstance(i, bool) for i in ids):
        raise UsageError(f"{what} must be a list of integer token ids")
    if not ids and not allow_empty:
        raise UsageError(f"empty {what}")
    vs = vocab_size(index)
    bad = [i for i in ids if i < 0 or i >= vs]
    if bad:
        raise UsageError(f"{what}: token id {bad[0]} is outside the vocabulary (0..{vs - 1})")
    return list(ids)


def token_strings(index: Index, ids) -> list[str]:
    """Readable token strings: a byte as its character (``\\xNN`` when not printable ASCII), a Hugging Face
    token as the tokenizer's own string for it; the document end as ``<eos>``."""
    eos = int(index.manifest["engine"]["eos_token_id"])
    out = []
    hf = getattr(index.tokenizer, "_tok", None)
    for i in ids:
        i = int(i)
        if i == eos:
            out.append("<eos>")
        elif index.width == 1:
            out.append(chr(i) if 32 <= i < 127 else f"\\x{i:02x}")
        else:
            s = hf.id_to_token(i) if hf is not None else None
            out.append(s if s is not None else f"<{i}>")
    return out


@dataclass(frozen=True)
class TokenProb:
    """The probability of one continuation token and the counts behind it."""

    token_id: int
    token: str
    prob: float | None  # None: the context never occurs (n-gram only)
    prompt_cnt: int
    cont_cnt: int
    suffix_len: int | None = None  # ∞-gram: tokens of the context actually used

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class ProbQuery:
    """A context and a continuation, as token ids (and the texts they came from, when any)."""

    context_ids: list[int]
    next_ids: list[int]
    context: str | None = None
    next: str | None = None


def chained(tokens: list[TokenProb]) -> float | None:
    """The product of the tokens' probabilities (None when one is undefined)."""
    p = 1.0
    for t in tokens:
        if t.prob is None:
            return None
        p *= t.prob
    return p


def _ratio(cont: int, prompt: int) -> float | None:
    return None if prompt == 0 else cont / prompt


def infgram_probs(index: Index, queries: list[ProbQuery]) -> list[list[TokenProb]]:
    """The ∞-gram probability of every continuation token of every query, all in one batch."""
    seqs = [np.asarray(q.context_ids + q.next_ids, dtype=np.int64) for q in queries]
    pos = [np.arange(len(q.context_ids), len(q.context_ids) + len(q.next_ids)) for q in queries]
    stats = lm.infgram_positions(index, seqs, pos)
    out = []
    for q, st in zip(queries, stats):
        names = token_strings(index, q.next_ids)
        out.append(
            [
                TokenProb(tid, name, _ratio(c, p), p, c, s)
                for tid, name, p, c, s in zip(
                    q.next_ids, names, st.prompt_cnt.tolist(), st.cont_cnt.tolist(), st.suffix_len.tolist()
                )
            ]
        )
    return out


def ngram_probs(index: Index, queries: list[ProbQuery], n: int) -> list[list[TokenProb]]:
    """The n-gram probability (the last ``n - 1`` tokens as the context; the whole context when shorter) of
    every continuation token: the engine's ``prob``."""
    if n < 1:
        raise UsageError("-n must be at least 1")
    seqs = [np.asarray(q.context_ids + q.next_ids, dtype=np.int64) for q in queries]
    qb = lm.QueryBuffer(index, seqs)
    seq, s, e = [], [], []
    for k, q in enumerate(queries):
        for j in range(len(q.next_ids)):
            t = len(q.context_ids) + j
            lo = max(0, t - (n - 1))
            seq += [k, k]
            s += [lo, lo]
            e += [t, t + 1]
    c = lm.counts(index, qb, np.array(seq, dtype=np.int64), np.array(s), np.array(e)) if seq else []
    qb.release()
    out, i = [], 0
    for q in queries:
        names = token_strings(index, q.next_ids)
        row = []
        for tid, name in zip(q.next_ids, names):
            p, cc = int(c[i]), int(c[i + 1])
            cc = cc if p else 0
            row.append(TokenProb(tid, name, _ratio(cc, p), p, cc, None))
            i += 2
        out.append(row)
    return out


@dataclass
class NextTokens:
    """A next-token distribution: ``prompt_cnt`` occurrences of the context, ``counts`` per next token."""

    prompt_cnt: int
    counts: dict[int, int]
    approx: bool
    suffix_len: int | None = None  # ∞-gram: tokens of the context actually used
    context_len: int = 0

    def top(self, k: int | None) -> list[tuple[int, int]]:
        items = sorted(self.counts.items(), key=lambda kv: (-kv[1], kv[0]))
        return items if k is None else items[:k]


def next_tokens(
    index: Index, contexts: list[list[int]], max_support: int | None = None, infgram: bool = False
) -> list[NextTokens]:
    """Next-token distribution of every context (the engine's ``ntd``; with ``infgram``, of the longest suffix
    that occurs: ``infgram_ntd``). ``max_support``: the engine's subsampling (None: exact)."""
    suffix = None
    if infgram:
        suffix = lm.longest_suffixes(index, [np.asarray(c, dtype=np.int64) for c in contexts])
        used = [c[len(c) - int(k) :] if k else [] for c, k in zip(contexts, suffix)]
    else:
        used = contexts
    qb = lm.QueryBuffer(index, [np.asarray(c, dtype=np.int64) for c in used])
    seq = np.arange(len(used), dtype=np.int64)
    off, ln = qb.window(seq, np.zeros(len(used), dtype=np.int64), qb.lengths)
    ranges = lm.count_ranges(index, qb.buf, off, ln)
    qb.release()
    dists, approx = lm.next_token_counts(index, ranges, ln, max_support)
    out = []
    for k, d in enumerate(dists):
        out.append(
            NextTokens(
                prompt_cnt=int(sum(d.values())),
                counts=d,
                approx=bool(approx[k]),
                suffix_len=None if suffix is None else int(suffix[k]),
                context_len=len(contexts[k]),
            )
        )
    return out


def find_ranges(index: Index, contexts: list[list[int]]) -> list[list[list[int]]]:
    """Per context and shard the suffix-array range ``[lo, hi)``: the engine's ``find`` (``segment_by_shard``)."""
    qb = lm.QueryBuffer(index, [np.asarray(c, dtype=np.int64) for c in contexts])
    off, ln = qb.window(np.arange(len(contexts)), np.zeros(len(contexts), dtype=np.int64), qb.lengths)
    r = lm.count_ranges(index, qb.buf, off, ln)
    qb.release()
    return [[[int(a), int(b)] for a, b in row] for row in r.tolist()]


# --- batch files ------------------------------------------------------------------------------------


@dataclass
class BatchLine:
    line: int
    fields: dict = field(default_factory=dict)
    error: str | None = None


def read_batch(path: str, names: tuple[str, ...]) -> list[BatchLine]:
    """The non-blank lines of a batch file: JSONL objects; for ``.tsv`` files tab-separated ``names``; for
    ``.txt`` files the whole line as the first name. Every line is decoded on its own, so a bad line (not
    UTF-8, bad JSON, a missing field) becomes an error for that line only."""
    p = Path(path).expanduser()
    try:
        raw = p.read_bytes()
    except OSError as exc:
        raise UsageError(f"cannot read --file {path}: {exc.strerror or exc}") from None
    tsv = p.name.lower().endswith(".tsv")
    txt = p.name.lower().endswith(".txt")
    out = []
    for i, b in enumerate(raw.split(b"\n"), 1):
        b = b.rstrip(b"\r")
        if not b.strip():
            continue
        try:
            text = b.decode("utf-8")
        except UnicodeDecodeError as exc:
            out.append(BatchLine(i, error=f"not UTF-8 (byte {exc.start + 1})"))
            continue
        if txt:
            out.append(BatchLine(i, {names[0]: text}))
            continue
        if tsv:
            parts = text.split("\t")
            if len(parts) != len(names):
                out.append(
                    BatchLine(i, error=f"expected {len(names)} tab-separated fields ({', '.join(names)})")
                )
                continue
            out.append(BatchLine(i, dict(zip(names, parts))))
            continue
        try:
            obj = json.loads(text)
        except ValueError as exc:
            out.append(BatchLine(i, error=f"bad JSON: {exc}"))
            continue
        if not isinstance(obj, dict):
            out.append(BatchLine(i, error="expected a JSON object"))
            continue
        out.append(BatchLine(i, obj))
    return out


def surprisal_bits(prob: float | None) -> float | None:
    return None if prob is None or prob <= 0 else -math.log2(prob)


__all__ = [
    "ENGINE_MAX_SUPPORT",
    "BatchLine",
    "NextTokens",
    "ProbQuery",
    "TokenProb",
    "chained",
    "check_ids",
    "encode_text",
    "find_ranges",
    "infgram_probs",
    "next_tokens",
    "ngram_probs",
    "read_batch",
    "token_strings",
    "vocab_size",
]
