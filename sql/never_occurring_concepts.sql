-- Concepts that never occur in the corpus.
SELECT benchmark, concept
FROM concept_freq
WHERE doc_frequency = 0
ORDER BY benchmark, concept;
