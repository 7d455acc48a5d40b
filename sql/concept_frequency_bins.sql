-- How concept document frequencies are distributed per benchmark, in log10 bins (bin 0 = never occurs).
SELECT
    benchmark,
    CASE WHEN doc_frequency = 0 THEN 0 ELSE 1 + floor(log10(doc_frequency))::INT END AS log10_bin,
    CASE WHEN doc_frequency = 0 THEN '0'
         ELSE format('{}-{}', (10 ** floor(log10(doc_frequency)))::BIGINT, (10 ** (1 + floor(log10(doc_frequency))))::BIGINT - 1)
    END AS doc_frequency_range,
    count(*) AS concepts
FROM concept_freq
GROUP BY ALL
ORDER BY benchmark, log10_bin;
