"""Concept vocabularies, inflected forms, the Aho-Corasick matcher and the tagging core."""
