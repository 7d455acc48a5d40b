"""Limits and defaults, defined once and imported by the library, the CLI, the jobs and the server alike.

A default that a user can change lives here when more than one place needs it (a config class, a CLI help
text, a server request model); everything else lives in its command's config class (freqindex/config.py,
freqindex/commands/).
"""

from __future__ import annotations

MANIFEST_NAME = "manifest.json"
SCHEMA_VERSION = 3  # 2: each shard's ptr_size, the manifest's own sha256 (manifest_sha256), concepts.parts;
# 3: each shard's search sample (sa/sample.N, sample_step), optional per shard
# the oldest schema this freqindex opens (schema 2 indexes lack the samples: made on use)
MIN_SCHEMA_VERSION = 2
INDEX_FORMAT = "freqindex/infini-gram-v4"

# Build
DEFAULT_MASTER = "local[*]"
DEFAULT_TEXT_FIELD = "text"
DEFAULT_ID_FIELD = "id"
CHUNK_BYTES = 64 * 1024 * 1024  # uncompressed line files are split into equal chunks of at most this size ...
MIN_FILE_CHUNKS = 8  # ... and a large one into up to this many chunks of at least MIN_CHUNK_BYTES, so that
MIN_CHUNK_BYTES = 8 * 1024 * 1024  # one big file is tokenized by several tasks side by side
# Default --shard-size: token bytes per shard (the shard count is ceil(token bytes / this), whatever the
# cluster). Every shard costs one more search per query, so shards are as large as one task can sort with
# libdivsufsort's 32-bit entry point (below 2 GiB: 5 bytes of memory per byte, ~9.4 GiB; above: 9 bytes per
# byte); a shard's files (~5 bytes per token byte with u8 tokens) then fit a 16 GiB query host's page cache.
SHARD_SIZE_BYTES = 2_000_000_000
MIN_SHARD_SIZE_BYTES = 1024
# Memory the suffix-array builds running at once on one executor (local mode: this machine) may use. A default
# shard needs ~9.4 GiB with libdivsufsort; a shard that does not fit is built by infini-gram's bounded-memory
# indexer instead, and in local mode fewer shard tasks run side by side.
SA_BUILD_MEM_GIB = 10
SA_HACKSIZE = 100_000  # infini-gram's indexer: overlap between parts, the value its own script uses
TOKENIZE_BATCH = 4096  # documents per Arrow batch handed to the tokenizer
LOCK_LEASE_S = 120.0  # object-store output lock: a holder renews its lease every quarter of this

# Queries
MAX_QUERY_CHARS = 10_000
DEFAULT_DOCS_LIMIT = 10
MAX_DOCS_LIMIT = 10_000
SNIPPET_CONTEXT_CHARS = 80
MAX_DIFF_TOKENS = 100  # AND clauses (occurrences): window around the anchor clause, infini-gram's default
MAX_DOC_PTRS = 50_000_000  # suffix-array entries one query may read (--unit docs, AND, docs look-ups)
COUNT_FILE_BATCH = 10_000  # `count --file`: queries counted (and printed) per batch
MAX_K = 1000  # nearest neighbours per item
MAX_SQL_ROWS = 10_000  # rows a SQL query may return over HTTP
SQL_ROWS = 1000  # the server's default max_rows
CLI_SQL_TABLE_ROWS = 200  # rows `freqindex sql` shows in table format (--max-rows; csv/json/--out print all)
DEFAULT_K = 10  # neighbours per item (`neighbors -k`, the server's k)

# Embedding (`embed`, `build --embed`; `neighbors` reads the model from the index's manifest)
DEFAULT_EMBEDDER = "minilm-v1"  # registered in freqindex/vectors/embedders.py
EMBED_CHUNK_TOKENS = (32, 64, 128)  # window sizes, in model tokens
EMBED_DTYPE = "float32"
EMBED_DEVICES = ("auto", "cpu", "cuda")  # auto: a CUDA GPU when torch sees one, else the CPU
EMBED_DEVICE = "auto"
EMBED_BATCH = 32  # texts per forward pass on the CPU
EMBED_BATCH_GPU = 256  # on a GPU (fp16)

# Contamination policy (`contamination --config policy.toml`, the server's /v1/contamination)
MIN_LEN_BYTES = 50  # minimum match length in tokens with the bytes tokenizer (characters of ASCII text) ...
MIN_LEN_TOKENS = 13  # ... and with a Hugging Face tokenizer
MIN_SHORT_LEN_BYTES = 20  # floor of the whole-item rule for items shorter than min_len (bytes) ...
MIN_SHORT_LEN_TOKENS = 5  # ... and with a Hugging Face tokenizer
CONTAMINATION_SKIP = 0  # mismatching tokens bridged between two matches
CLEAN_BELOW = 0.2  # coverage below this: clean
DIRTY_AT = 0.8  # coverage at or above this: dirty (in between: suspicious)
BOILERPLATE_CEILING = 1000  # a match in more documents than this is boilerplate and does not count
MAX_MIN_LEN = 10_000  # bounds the server accepts
MAX_SKIP = 1000

# Server (`freqindex serve`); the query limits above apply to the CLI and the server alike
DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8000
MAX_BODY_BYTES = 1024 * 1024  # request bodies above this are refused with 413
MAX_QUERIES_PER_REQUEST = 1000  # count/docs queries in one request
MAX_ITEMS_PER_REQUEST = 2000  # contamination / neighbours items in one request
REQUEST_TIMEOUT_S = 30.0  # per request: 504 past it; the work stops at its next step (SQL: interrupted)
GRACEFUL_SHUTDOWN_S = 30  # SIGTERM: in-flight requests get this long to finish
