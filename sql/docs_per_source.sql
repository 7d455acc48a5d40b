-- Documents, tokens and quarantined records per source file.
SELECT
    d.source,
    count(*) AS documents,
    sum(d.n_tokens) AS tokens,
    (SELECT count(*) FROM quarantine q WHERE q.source = d.source) AS quarantined
FROM docs d
GROUP BY d.source
ORDER BY d.source;
