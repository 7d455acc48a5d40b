"""Aho-Corasick tagging (pyahocorasick) of stored documents, and concept counts from the suffix arrays.

A concept occurs where any of its forms appears as whole words in the normalized text: a form ``f`` is
matched as ``" f "`` inside the stored document ``" " + normalized + " "``. Occurrences = the number of such
matches (overlapping matches each count; a match of every form counts); document frequency = the number of
documents with at least one match. Overlapping concepts each count ("golden retriever" also counts for
"retriever").
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from freqindex.concepts.vocab import Vocabulary


@dataclass
class Matcher:
    automaton: object
    concept_ids: np.ndarray  # index -> concept_id

    @classmethod
    def from_vocabulary(cls, vocab: Vocabulary) -> Matcher:
        import ahocorasick

        a = ahocorasick.Automaton()
        owners: dict[str, list[int]] = {}
        for i, c in enumerate(vocab.concepts):
            for f in c.forms:
                owners.setdefault(f" {f} ", []).append(i)
        for pattern, idx in owners.items():
            a.add_word(pattern, tuple(idx))
        a.make_automaton()
        return cls(a, np.array([c.concept_id for c in vocab.concepts], dtype=np.int64))

    def tag(self, text: str, doc_starts: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Tag a block of documents joined by newlines; ``doc_starts`` are their character offsets.

        Returns (document index within the block, concept_id, occurrences), one row per pair with a match.
        """
        ends: list[int] = []
        owners: list[int] = []
        for end, idx in self.automaton.iter(text):
            for i in idx:
                ends.append(end)
                owners.append(i)
        if not ends:
            return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.int64)
        doc = np.searchsorted(doc_starts, np.asarray(ends, dtype=np.int64), side="right") - 1
        key = doc.astype(np.int64) * len(self.concept_ids) + np.asarray(owners, dtype=np.int64)
        uniq, counts = np.unique(key, return_counts=True)
        return (
            uniq // len(self.concept_ids),
            self.concept_ids[uniq % len(self.concept_ids)],
            counts.astype(np.int64),
        )
