"""One module per query-side command: its typed config (a frozen dataclass) and the run function that every
face calls (the CLI, the HTTP server). A run function opens what it needs, checks its input, does the work
through the library (query/, contamination/, analysis/, report/), writes the command's outputs and returns
a typed outcome; the faces only parse, call and print.

| command | config | run function |
| --- | --- | --- |
| count, docs | ``query.CountConfig``, ``query.DocsConfig`` | ``run_count``, ``run_count_file`` (per line), ``run_docs`` |
| info, verify, pull | ``index.IndexConfig``, ``index.PullConfig`` | ``run_info``, ``run_verify``, ``run_pull`` |
| concepts | ``concepts.ConceptsConfig`` | ``run_concepts`` |
| sql | ``sql.SqlConfig`` | ``run_sql`` |
| neighbors | ``neighbors.NeighborsConfig`` | ``run_neighbors`` |
| contamination | ``contamination.ContaminationConfig`` | ``run_contamination`` (records, summary, paths, gate) |
| analyze | ``analyze.AnalyzeConfig`` | ``run_analyze`` (per item, or per concept with ``concept_results``) |
| prob, ntd | ``lm.ProbConfig``, ``lm.NtdConfig`` | ``run_prob``, ``run_ntd`` (a query or a batch file) |
| distance, priming | ``lm.DistanceConfig``, ``lm.PrimingConfig`` | ``run_distance``, ``run_priming`` |
| frontier | ``lm.FrontierConfig`` | ``run_frontier`` |
| infini-gram's HTTP API | the request (server/infinigram_api.py) | ``infinigram.answer`` |

The Spark commands (build, tag, embed) have their configs in ``freqindex/config.py`` (the build driver and
the jobs need them) and their run functions in ``jobs/`` (``run_build``, ``run_tag``, ``run_embed``).
Configs are resolved from defaults, a TOML file and flags by ``freqindex.config.load_config``. Long runs
take a :class:`freqindex.deadline.Deadline`, checked between steps.
"""
