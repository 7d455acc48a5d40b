"""Request and response models of the HTTP API. Defaults and bounds come from freqindex.settings, shared with
the CLI and the library (the contamination policy's defaults are the same numbers as ``Policy``'s)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from freqindex import settings
from freqindex.query.count import CountResult
from freqindex.query.docs import DocHit

Query = Annotated[str, Field(min_length=1, max_length=settings.MAX_QUERY_CHARS)]
IndexName = Annotated[
    str, Field(min_length=1, max_length=128, description="Index name, as listed by /v1/indexes.")
]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class CountRequest(Strict):
    index: IndexName
    query: Query | None = Field(None, description="One query (CNF: ' AND ' between clauses, ' OR ' inside).")
    queries: (
        Annotated[list[Query], Field(min_length=1, max_length=settings.MAX_QUERIES_PER_REQUEST)] | None
    ) = None
    unit: Literal["occurrences", "docs"] = "occurrences"
    literal: bool = Field(False, description="Count the string as written (no AND/OR parsing).")


class CountResponse(BaseModel):
    index: str
    results: list[CountResult]  # the library's own result types are the response models


class DocsRequest(Strict):
    index: IndexName
    query: Query
    limit: int = Field(settings.DEFAULT_DOCS_LIMIT, ge=1, le=settings.MAX_DOCS_LIMIT)
    literal: bool = False


class DocsResponse(BaseModel):
    index: str
    query: str
    total_docs: int
    docs: list[DocHit]


class ConceptSpec(Strict):
    concept: Annotated[str, Field(min_length=1, max_length=settings.MAX_QUERY_CHARS)]
    aliases: Annotated[
        list[Annotated[str, Field(max_length=settings.MAX_QUERY_CHARS)]], Field(max_length=100)
    ] = []
    benchmark: str | None = None


class ConceptsRequest(Strict):
    index: IndexName
    concepts: Annotated[
        list[Annotated[str, Field(min_length=1, max_length=settings.MAX_QUERY_CHARS)] | ConceptSpec],
        Field(min_length=1, max_length=settings.MAX_QUERIES_PER_REQUEST),
    ]
    exact: bool = Field(False, description="No singular/plural forms.")
    source: Literal["auto", "tags", "suffix"] = "auto"


class ConceptRow(BaseModel):
    model_config = ConfigDict(extra="allow")
    concept_id: int
    concept: str
    benchmark: str | None
    occurrences: int
    doc_frequency: int


class ConceptsResponse(BaseModel):
    index: str
    source: str
    warnings: list[str]
    concepts: list[ConceptRow]


class Item(Strict):
    id: Annotated[str, Field(min_length=1, max_length=256)]
    text: Annotated[str, Field(min_length=1, max_length=settings.MAX_QUERY_CHARS)]


Items = Annotated[list[Item], Field(min_length=1, max_length=settings.MAX_ITEMS_PER_REQUEST)]


class NeighborsRequest(Strict):
    index: IndexName
    items: Items
    k: int = Field(settings.DEFAULT_K, ge=1, le=settings.MAX_K)


class NeighborRow(BaseModel):
    item_id: str
    rank: int
    doc_id: int
    ext_id: str | None
    char_start: int
    char_end: int
    similarity: float
    snippet: str | None


class NeighborsResponse(BaseModel):
    index: str
    neighbors: list[NeighborRow]


class ContaminationRequest(Strict):
    index: IndexName
    items: Items
    min_len: int | None = Field(None, ge=1, le=settings.MAX_MIN_LEN)
    skip: int = Field(settings.CONTAMINATION_SKIP, ge=0, le=settings.MAX_SKIP)
    clean_below: float = Field(settings.CLEAN_BELOW, ge=0, le=1)
    dirty_at: float = Field(settings.DIRTY_AT, ge=0, le=1)
    boilerplate_ceiling: int = Field(settings.BOILERPLATE_CEILING, ge=1)
    definitions: list[Literal["gpt3", "palm", "ig_mini"]] | None = None


class ContaminationResponse(BaseModel):
    index: str
    items: list[dict]
    summary: dict


class SqlRequest(Strict):
    index: IndexName
    sql: Annotated[str, Field(min_length=1, max_length=settings.MAX_QUERY_CHARS)]
    max_rows: int = Field(settings.SQL_ROWS, ge=1, le=settings.MAX_SQL_ROWS)


class SqlResponse(BaseModel):
    index: str
    columns: list[str]
    rows: list[dict]
    truncated: bool


class IndexInfo(BaseModel):
    name: str
    documents: int
    tokens: int
    shards: int
    tokenizer: str
    normalization: str
    has_vectors: bool
    has_concepts: bool
    manifest_sha256: str


class ErrorBody(BaseModel):
    error: str
    message: str
