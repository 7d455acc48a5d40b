"""Concept vocabularies: load, normalize, inflect, merge duplicates, assign stable ids.

Sources: (a) a JSON object of benchmark -> class names (CLIP_benchmark's en_classnames.json layout);
(b) a text file with one concept per line; (c) CSV / JSONL / Parquet with a ``concept`` column and optional
``aliases`` (a list, or ``|``-separated) and ``benchmark``; (d) a label field of an eval set.

Forms: the concept and its aliases, each normalized with the index's normalization, plus singular/plural
inflections from the ``inflect`` library (the last word of a multi-word name is inflected) unless ``exact``.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from freqindex.errors import BadInputError, UsageError
from freqindex.fsutil import read_text
from freqindex.text.normalize import Normalizer


@dataclass
class Concept:
    concept_id: int
    concept: str  # as given (first spelling seen)
    benchmark: str | None
    forms: list[str] = field(default_factory=list)  # normalized, deduplicated, sorted


@dataclass
class Vocabulary:
    name: str
    concepts: list[Concept]
    exact: bool
    warnings: list[str]

    @property
    def key(self) -> str:
        """A hash of what the vocabulary matches (ids and forms): tags are reused only for the same key."""
        h = hashlib.sha256()
        for c in self.concepts:
            h.update(json.dumps([c.concept_id, c.forms]).encode())
        return h.hexdigest()[:16]


def concept_id(benchmark: str | None, normalized: str) -> int:
    """Stable id from benchmark and normalized name (63-bit, so it fits DuckDB BIGINT)."""
    digest = hashlib.blake2b(f"{benchmark or ''}\x00{normalized}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") & 0x7FFFFFFFFFFFFFFF


def _inflections(form: str) -> list[str]:
    import inflect

    eng = _ENGINE.get("e")
    if eng is None:
        eng = _ENGINE["e"] = inflect.engine()
    words = form.split(" ")
    last = words[-1]
    out = []
    if not last or not last.isalpha():
        return out
    sing = eng.singular_noun(last)
    if sing:
        out.append(" ".join(words[:-1] + [sing]))
    else:
        out.append(" ".join(words[:-1] + [eng.plural_noun(last)]))
    return [o for o in out if o and o != form]


_ENGINE: dict = {}


def concept_forms(
    normalizer: Normalizer, name: str, aliases: Sequence[str] = (), exact: bool = False
) -> list[str]:
    """The forms a concept is matched by, as whole words: its name and aliases normalized as documents are,
    plus (unless ``exact``) the singular or plural of each from ``inflect``. Sorted, distinct; empty when the
    name normalizes to nothing. The one generator of forms: the vocabulary (``tag``, ``concepts``) and the
    analysis (``analyze``) both use it."""
    forms = {f for f in (normalizer.document(n) if n else "" for n in [name, *aliases]) if f}
    if not exact:
        for f in list(forms):
            forms.update(_inflections(f))
    return sorted(forms)


def _rows_from_file(path: str, label_field: str | None) -> list[tuple[str | None, str, list[str]]]:
    """(benchmark, concept, aliases) rows from any supported file."""
    p = Path(os.path.expanduser(path))
    if not p.is_file():
        raise UsageError(f"concept file not found: {path}")
    name = p.name.lower()
    rows: list[tuple[str | None, str, list[str]]] = []

    def aliases_of(v) -> list[str]:
        if v is None:
            return []
        if isinstance(v, list):
            return [str(x) for x in v]
        return [a for a in str(v).split("|")]

    if label_field is not None:  # an eval set: one concept per distinct label
        from freqindex.evals import load_rows

        for i, row in enumerate(load_rows(str(p)), 1):
            v = row.get(label_field)
            if v is None:
                raise BadInputError(f"{path}: row {i} has no field {label_field!r}")
            for lab in v if isinstance(v, list) else [v]:
                rows.append((None, str(lab), []))
        return rows
    if name.endswith(".json"):
        try:
            data = json.loads(read_text(p))
        except (ValueError, UnicodeDecodeError) as exc:
            raise BadInputError(f"{path}: bad JSON: {exc}") from None
        if isinstance(data, dict):
            for bench, names in data.items():
                if not isinstance(names, list):
                    raise BadInputError(f"{path}: benchmark {bench!r} must map to a list of names")
                for n in names:
                    rows.append((str(bench), n, []))
        elif isinstance(data, list):
            for n in data:
                if isinstance(n, dict):
                    rows.append((n.get("benchmark"), n.get("concept"), aliases_of(n.get("aliases"))))
                else:
                    rows.append((None, n, []))
        else:
            raise BadInputError(f"{path}: expected an object of benchmark -> names, or a list")
        return rows
    if name.endswith((".jsonl", ".ndjson")):
        from freqindex.evals import read_jsonl_objects

        for i, obj in read_jsonl_objects(p, path):
            if "concept" not in obj:
                raise BadInputError(f"{path}:{i}: expected an object with a 'concept' field")
            rows.append((obj.get("benchmark"), obj.get("concept"), aliases_of(obj.get("aliases"))))
        return rows
    if name.endswith(".csv"):
        reader = csv.DictReader(io.StringIO(read_text(p), newline=""))
        if not reader.fieldnames or "concept" not in reader.fieldnames:
            raise BadInputError(f"{path}: CSV needs a 'concept' column")
        for r in reader:
            rows.append((r.get("benchmark") or None, r.get("concept"), aliases_of(r.get("aliases") or None)))
        return rows
    if name.endswith(".parquet"):
        import pyarrow.parquet as pq

        t = pq.read_table(p)
        if "concept" not in t.column_names:
            raise BadInputError(f"{path}: Parquet needs a 'concept' column")
        for r in t.to_pylist():
            rows.append((r.get("benchmark"), r.get("concept"), aliases_of(r.get("aliases"))))
        return rows
    # plain text: one concept per line
    for ln in read_text(p).splitlines():
        if ln.strip():
            rows.append((None, ln.strip(), []))
    return rows


def load_vocabulary(
    path: str, normalizer: Normalizer, exact: bool = False, label_field: str | None = None
) -> Vocabulary:
    """Load, normalize and merge a vocabulary. Empty names are an error; duplicates merge with a warning."""
    return vocabulary_from_rows(_rows_from_file(path, label_field), normalizer, exact, path)


def vocabulary_from_rows(
    rows: list[tuple[str | None, str, list[str]]],
    normalizer: Normalizer,
    exact: bool = False,
    path: str = "request",
) -> Vocabulary:
    """A vocabulary from (benchmark, name, aliases) rows (what the server receives in a request body)."""
    if not rows:
        raise BadInputError(f"{path}: no concepts found")
    by_key: dict[tuple[str | None, str], Concept] = {}
    warnings: list[str] = []
    for i, (bench, name, aliases) in enumerate(rows, 1):
        where = f"#{i}{f' of {bench!r}' if bench else ''}"
        if name is not None and not isinstance(name, str):
            raise BadInputError(f"{path}: concept {where} is not a string ({type(name).__name__})")
        norm = normalizer.document(name) if name else ""
        if not norm:
            # a real class list can hold an empty label (CLEVR's distance classes do): skip it, loudly
            warnings.append(f"skipped concept {where}: empty name {name!r}")
            continue
        key = (bench, norm)
        forms = set(concept_forms(normalizer, name, aliases, exact))
        if key in by_key:
            warnings.append(f"duplicate concept {name!r}{f' in {bench!r}' if bench else ''} merged")
            merged = set(by_key[key].forms) | forms
            by_key[key].forms = sorted(merged)
        else:
            by_key[key] = Concept(concept_id(bench, norm), name, bench, sorted(forms))
    if not by_key:
        raise BadInputError(f"{path}: every concept name is empty")
    concepts = sorted(by_key.values(), key=lambda c: (c.benchmark or "", c.concept_id))
    return Vocabulary(Path(path).name, concepts, exact, warnings)
