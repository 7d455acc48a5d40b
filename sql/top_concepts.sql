-- The 10 most frequent concepts (by document frequency) of every benchmark.
SELECT benchmark, rank, concept, doc_frequency, occurrences
FROM concept_freq
WHERE rank <= 10
ORDER BY benchmark, rank, concept;
