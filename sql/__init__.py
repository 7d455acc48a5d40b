"""DuckDB view definitions (views.sql) and canned analyses (*.sql), loaded by `freqindex sql`."""
