-- Views over an index's Parquet tables, created by `freqindex sql` and `freqindex sql --export`.
-- Each {placeholder} becomes a read_parquet over exactly the files the index's manifest lists (docs, quarantine,
-- concept tables) or its evals/catalog.json declares (eval outputs), by absolute path; a table the index does
-- not have (not tagged, no eval outputs yet) becomes an empty typed table.

CREATE VIEW docs AS
SELECT * FROM {docs};

CREATE VIEW quarantine AS
SELECT * FROM {quarantine};

CREATE VIEW concept_vocab AS
SELECT * FROM {concept_vocab};

CREATE VIEW concept_hits AS
SELECT * FROM {concept_hits};

-- One row per concept: occurrences and document frequency in the text (caption), log10(1 + doc frequency),
-- rank within its benchmark; for image-caption corpora tagged with --tags-field also the documents whose
-- image tags hold the concept (tag_doc_frequency) and those where caption and tags both do (matched).
CREATE VIEW concept_freq AS
SELECT
    v.concept_id,
    v.concept,
    v.benchmark,
    coalesce(sum(h.occurrences), 0)::BIGINT AS occurrences,
    count(h.doc_id) FILTER (WHERE h.occurrences > 0)::BIGINT AS doc_frequency,
    log10(1 + count(h.doc_id) FILTER (WHERE h.occurrences > 0)) AS log10_doc_frequency,
    rank() OVER (PARTITION BY v.benchmark ORDER BY count(h.doc_id) FILTER (WHERE h.occurrences > 0) DESC) AS rank,
    count(h.doc_id) FILTER (WHERE h.in_tags)::BIGINT AS tag_doc_frequency,
    count(h.doc_id) FILTER (WHERE h.in_tags AND h.occurrences > 0)::BIGINT AS matched_doc_frequency
FROM concept_vocab v
LEFT JOIN concept_hits h USING (concept_id)
GROUP BY v.concept_id, v.concept, v.benchmark;

-- Nearest pretraining neighbours of eval items (`freqindex neighbors`, declared in evals/catalog.json).
CREATE VIEW neighbors AS
SELECT * FROM {neighbors};

-- Per eval item: its best neighbour's similarity and document.
CREATE VIEW neighbor_max AS
SELECT eval, item_id, max(similarity) AS max_similarity, arg_max(doc_id, similarity) AS doc_id
FROM neighbors
GROUP BY eval, item_id;

-- Per eval item: contamination bucket, coverage, the classic definitions' flags (`freqindex contamination`).
CREATE VIEW contamination AS
SELECT * FROM {contamination};

-- Per eval item and model: concepts, frequency, pruned frequency, similarity, correctness (`freqindex analyze`).
CREATE VIEW analysis_items AS
SELECT * FROM {analysis};

-- Per eval item: how far it sits from the corpus (`freqindex distance`): mean / max per-token ∞-gram surprisal
-- (bits), zero-probability share, mean effective context, novel 5/8/13-gram shares, longest match.
CREATE VIEW distance AS
SELECT * FROM {distance};

-- Per model and concept: per-class accuracy (percent), concept count, its bin, pruned count, the model's verdict
-- (`freqindex analyze DIR --concepts VOCAB --concept-results RESULTS`).
CREATE VIEW concept_analysis AS
SELECT * FROM {concept_analysis};
