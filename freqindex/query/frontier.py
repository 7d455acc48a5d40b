"""The learning frontier: keep the candidate texts whose distance from the corpus lies inside the corpus's own
range, reject those too far from it (or too close to it), with the reason and the score.

**The corpus profile** is the same distance measures (:mod:`freqindex.query.distance`) on a reproducible
sample of the index's own documents (``size`` documents of at most ``max_doc_tokens`` tokens, drawn with
``seed``), each measured *leave-one-out*: against the index without that document, exactly as a new document
from the same source would be (a document measured against an index that holds it would match itself
everywhere). It is cached as Parquet beside the index's other derived outputs (``INDEX/evals/_profile/``; a
read-only index falls back to ``~/.cache/freqindex/profiles/``), keyed by the index's content and the sample
settings.

**The band** is given by percentiles of the profile (``(5, 95)`` by default) or by absolute thresholds, on one
measure (``mean_surprisal`` by default; ``zero_prob_share`` and ``mean_context`` also work: per-token means).
**The decision** accounts for the candidate's own sampling error: a candidate is rejected only when its score
lies outside the band by more than ``tolerance`` standard errors (1.645 by default: outside with one-sided 95%
confidence), the standard error being that of the per-token mean over 10 contiguous batches of its tokens
(batch means, so neighbouring tokens may depend on each other). ``tolerance=0`` compares the score itself.
With the default, documents of the corpus's own source that the index does not hold are kept at least 95% of
the time, where a plain two-sided 5-95 band would by construction reject 10% of them. Candidates with fewer
than ``min_tokens`` scored tokens are rejected as ``too_short``.
"""

from __future__ import annotations

import hashlib
import json
import multiprocessing
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from freqindex.contamination.metrics import ItemText, item_text
from freqindex.errors import UsageError
from freqindex.query.distance import MEASURES, Distance, item_distances, per_token
from freqindex.suffix import lm
from freqindex.suffix.index import Index

PROFILE_VERSION = 1
# band measures and their direction: +1 when larger means farther from the corpus
BAND_MEASURES = {
    "mean_surprisal": 1,
    "zero_prob_share": 1,
    "mean_context": -1,
    "novel_5": 1,
    "novel_8": 1,
    "novel_13": 1,
}
BATCHES = 10
PROFILE_BATCH_DOCS = 256


@dataclass(frozen=True)
class ProfileSettings:
    size: int = 500
    seed: int = 0
    max_doc_tokens: int = 4096

    def validate(self) -> ProfileSettings:
        if self.size < 20:
            raise UsageError("--profile-size must be at least 20 documents")
        if self.max_doc_tokens < 2:
            raise UsageError("--profile-max-tokens must be at least 2")
        return self

    def key(self, index: Index) -> str:
        blob = json.dumps(
            [PROFILE_VERSION, index.manifest.get("content_key"), self.size, self.seed, self.max_doc_tokens]
        )
        return hashlib.sha256(blob.encode()).hexdigest()[:16]


def default_profile_dir(index: Index) -> Path:
    """Where the profile of ``index`` is cached by default: among the index's derived outputs."""
    return index.path / "evals" / "_profile"


def _fallback_dir(index: Index) -> Path:
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "freqindex" / "profiles" / str(index.manifest.get("content_key", "index"))[:32]


def sample_documents(index: Index, settings: ProfileSettings) -> np.ndarray:
    """Global doc ids of the profile sample: uniformly without replacement among the documents of 1 to
    ``max_doc_tokens`` tokens, with ``seed``; sorted."""
    w = index.width
    lengths = []
    for sh in index.shards:
        off = sh.offsets.astype(np.int64)
        ends = np.r_[off[1:], sh.ds.shape[0]]
        lengths.append((ends - off) // w - 1)
    n_tok = np.concatenate(lengths) if lengths else np.zeros(0, dtype=np.int64)
    eligible = np.nonzero((n_tok >= 1) & (n_tok <= settings.max_doc_tokens))[0]
    if eligible.size == 0:
        raise UsageError(f"no document of at most {settings.max_doc_tokens} tokens to build a profile from")
    rng = np.random.default_rng(settings.seed)
    take = min(settings.size, eligible.size)
    return np.sort(rng.choice(eligible, size=take, replace=False))


def _stored_item(index: Index, data: bytes) -> ItemText:
    if index.width == 1:
        return item_text(index, data.decode("utf-8", errors="replace"))
    ids = np.frombuffer(data, dtype=index.dtype).tolist()
    text = index.tokenizer.decode(data)
    tok_to_char = np.linspace(0, len(text), len(ids) + 1).astype(np.int64)
    return ItemText(text, ids, tok_to_char, np.searchsorted(tok_to_char, np.arange(len(text) + 1)))


def build_profile(index: Index, settings: ProfileSettings, progress=None) -> list[dict]:
    """The distance measures of the sampled documents, each against the index without it."""
    doc_ids = sample_documents(index, settings)
    rows: list[dict] = []
    for b in range(0, doc_ids.size, PROFILE_BATCH_DOCS):
        batch = doc_ids[b : b + PROFILE_BATCH_DOCS].tolist()
        texts, ex, items = [], [], []
        for d in batch:
            sh, ix = index.doc_location(int(d))
            a, e = sh.doc_bounds(ix, index.width)
            it = _stored_item(index, bytes(sh.ds[a:e]))
            texts.append(it)
            ex.append(lm.Exclusion(sh.shard, a))
            items.append((str(d), it.text))
        for d, dist in zip(batch, item_distances(index, items, exclude=ex, texts=texts)):
            rows.append({"doc_id": int(d), **{k: v for k, v in dist.to_dict().items() if k != "id"}})
        if progress:
            progress(min(b + PROFILE_BATCH_DOCS, doc_ids.size), doc_ids.size)
    return rows


def load_or_build_profile(
    index: Index, settings: ProfileSettings, cache_dir: str | None = None, progress=None
) -> tuple[list[dict], Path | None, bool, str | None]:
    """(profile rows, cache file, whether it was built now, a note for the user when the cache could not be
    written where asked). A cached profile is reused when the index content and the settings match."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    settings.validate()
    name = f"profile-{settings.key(index)}.parquet"
    places = [Path(cache_dir) if cache_dir else default_profile_dir(index), _fallback_dir(index)]
    for place in places:
        if (place / name).is_file():
            return pq.read_table(place / name).to_pylist(), place / name, False, None
    rows = build_profile(index, settings, progress)
    note = None
    for place in places:
        try:
            place.mkdir(parents=True, exist_ok=True)
            tmp = place / f".{name}.tmp"
            table = pa.Table.from_pylist(rows)
            meta = {
                "freqindex.profile": json.dumps(
                    {"version": PROFILE_VERSION, **settings.__dict__, "index": str(index.path)}
                )
            }
            pq.write_table(table.replace_schema_metadata(meta), tmp)
            os.replace(tmp, place / name)
            if place != places[0]:
                note = f"{places[0]} is not writable; the profile is cached in {place}"
            return rows, place / name, True, note
        except OSError:
            continue
    return rows, None, True, "the profile could not be cached (no writable place)"


@dataclass(frozen=True)
class Band:
    """Where a candidate must lie on ``measure`` to be kept (see the module docstring)."""

    measure: str
    lo: float
    hi: float
    lo_pct: float | None
    hi_pct: float | None
    tolerance: float
    min_tokens: int

    def to_dict(self) -> dict:
        d = dict(self.__dict__)
        for k in ("lo", "hi"):
            d[k] = d[k] if np.isfinite(d[k]) else None
        return d


def make_band(
    profile: list[dict],
    measure: str = "mean_surprisal",
    percentiles: tuple[float, float] | None = (5.0, 95.0),
    absolute: tuple[float | None, float | None] | None = None,
    tolerance: float = 1.645,
    min_tokens: int = 16,
) -> Band:
    """The band from profile percentiles, or from absolute thresholds (either end may be open)."""
    if measure not in BAND_MEASURES:
        raise UsageError(f"unknown --measure {measure!r}; choose one of: {', '.join(BAND_MEASURES)}")
    if tolerance < 0:
        raise UsageError("--tolerance must be >= 0")
    if absolute is not None and any(x is not None for x in absolute):
        lo = -np.inf if absolute[0] is None else float(absolute[0])
        hi = np.inf if absolute[1] is None else float(absolute[1])
        if lo > hi:
            raise UsageError("--min must not exceed --max")
        return Band(measure, lo, hi, None, None, tolerance, min_tokens)
    lo_p, hi_p = percentiles or (5.0, 95.0)
    if not 0 <= lo_p < hi_p <= 100:
        raise UsageError("--band takes two percentiles LO,HI with 0 <= LO < HI <= 100")
    vals = np.array([r[measure] for r in profile if r.get(measure) is not None], dtype=np.float64)
    if vals.size < 20:
        raise UsageError("the corpus profile has fewer than 20 scored documents; use a larger --profile-size")
    lo, hi = np.percentile(vals, [lo_p, hi_p])
    return Band(measure, float(lo), float(hi), lo_p, hi_p, tolerance, min_tokens)


def standard_error(x: np.ndarray, batches: int = BATCHES) -> float | None:
    """Standard error of the mean of ``x`` by batch means over ``batches`` contiguous batches (for fewer than
    two values per batch, the plain ``sd / sqrt(n)``); None for fewer than two values."""
    n = x.size
    if n < 2:
        return None
    if n < 2 * batches:
        return float(x.std(ddof=1) / np.sqrt(n))
    means = np.array([b.mean() for b in np.array_split(x, batches)])
    return float(means.std(ddof=1) / np.sqrt(batches))


def decide(value: float | None, se: float | None, n_scored: int, band: Band) -> tuple[bool, str]:
    """(kept, reason): ``inside``, ``too_far``, ``too_close`` or ``too_short``."""
    if value is None or n_scored < band.min_tokens:
        return False, "too_short"
    margin = band.tolerance * (se or 0.0)
    far = BAND_MEASURES[band.measure]
    high, low = value - margin > band.hi, value + margin < band.lo
    if high:
        return False, "too_far" if far > 0 else "too_close"
    if low:
        return False, "too_close" if far > 0 else "too_far"
    return True, "inside"


def percentile_in(values: np.ndarray, x: float | None) -> float | None:
    """Share of the profile (in percent) at or below ``x``."""
    if x is None or not values.size:
        return None
    return float(100.0 * np.searchsorted(values, x, side="right") / values.size)


def _distances_and_errors(index: Index, candidates: list[tuple[str, str]], measure: str) -> list[tuple]:
    """(distance measures, standard error of the band measure) per candidate."""
    dists, stats = item_distances(index, candidates, with_stats=True)
    return [(d, standard_error(per_token(st, measure))) for d, st in zip(dists, stats)]


_FORKED: tuple | None = None  # (index, candidates, measure), inherited by forked workers


def _score_chunk(bounds: tuple[int, int]) -> list[tuple]:
    index, candidates, measure = _FORKED
    lm.THREADS = 1  # the processes share the cores already
    return _distances_and_errors(index, candidates[bounds[0] : bounds[1]], measure)


def score_candidates(
    index: Index,
    candidates: list[tuple[str, str]],
    band: Band,
    profile: list[dict],
    workers: int | None = None,
) -> list[dict]:
    """Per candidate: every distance measure, its percentile in the profile, the score on the band measure
    with its standard error, and the decision with its reason. Large batches are split over ``workers``
    forked processes (default: one per core; they share the memory-mapped index and its sample keys)."""
    global _FORKED
    if workers is None:  # worth a process from about a thousand candidates each
        workers = min(os.cpu_count() or 1, len(candidates) // 1000)
    workers = min(workers, len(candidates))
    if workers > 1 and "fork" in multiprocessing.get_all_start_methods():
        lm.shard_views(index)  # built once here, inherited by every worker
        step = -(-len(candidates) // (4 * workers))
        chunks = [(a, min(a + step, len(candidates))) for a in range(0, len(candidates), step)]
        _FORKED = (index, candidates, band.measure)
        try:
            with multiprocessing.get_context("fork").Pool(workers) as pool:
                scored = [x for part in pool.map(_score_chunk, chunks) for x in part]
        finally:
            _FORKED = None
    else:
        scored = _distances_and_errors(index, candidates, band.measure)
    sorted_prof = {
        m: np.sort(np.array([r[m] for r in profile if r.get(m) is not None], dtype=np.float64))
        for m in MEASURES
    }
    out = []
    for (cid, _), (d, se) in zip(candidates, scored):
        value = getattr(d, band.measure)
        kept, reason = decide(value, se, d.scored_tokens, band)
        out.append(
            {
                "id": cid,
                "kept": kept,
                "reason": reason,
                "measure": band.measure,
                "score": value,
                "se": se,
                "percentile": percentile_in(sorted_prof[band.measure], value),
                "measures": _measures_dict(d),
                "percentiles": {m: percentile_in(sorted_prof[m], getattr(d, m)) for m in MEASURES},
            }
        )
    return out


def _measures_dict(d: Distance) -> dict:
    return {k: v for k, v in d.to_dict().items() if k != "id"}


def summarize(records: list[dict], band: Band, profile: list[dict], settings: ProfileSettings) -> dict:
    reasons: dict[str, int] = {}
    for r in records:
        reasons[r["reason"]] = reasons.get(r["reason"], 0) + 1
    vals = np.array([r[band.measure] for r in profile if r.get(band.measure) is not None], dtype=np.float64)
    return {
        "schema_version": 1,
        "n_candidates": len(records),
        "kept": sum(1 for r in records if r["kept"]),
        "rejected": sum(1 for r in records if not r["kept"]),
        "reasons": reasons,
        "band": band.to_dict(),
        "profile": {
            **settings.__dict__,
            "documents": len(profile),
            "measure_median": float(np.median(vals)) if vals.size else None,
        },
    }


__all__ = [
    "BAND_MEASURES",
    "Band",
    "ProfileSettings",
    "build_profile",
    "decide",
    "default_profile_dir",
    "load_or_build_profile",
    "make_band",
    "sample_documents",
    "score_candidates",
    "standard_error",
    "summarize",
]
