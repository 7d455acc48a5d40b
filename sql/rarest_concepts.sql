-- The 10 rarest concepts of every benchmark that occur at least once.
SELECT benchmark, concept, doc_frequency, occurrences
FROM (
    SELECT *, row_number() OVER (PARTITION BY benchmark ORDER BY doc_frequency, concept) AS r
    FROM concept_freq
    WHERE doc_frequency > 0
)
WHERE r <= 10
ORDER BY benchmark, doc_frequency, concept;
